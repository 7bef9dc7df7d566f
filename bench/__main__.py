"""``python -m bench`` (``make bench``): every figure a ratio against a baseline, same run.

1. overhead     send jobs/s through certsms ÷ a bare dramatiq actor posting the same
                request with ``requests`` (same Redis, sandbox, processes, threads)
2. enqueue      ``enqueue_send`` calls/s ÷ bare ``actor.send()`` calls/s
3. latency      enqueue → provider received (sandbox log), p50/p99 at low load; certsms ÷ bare
4. concurrency  throughput with 200 ms provider latency ÷ min(limit, P×T÷latency), P = 1, 2, 4
5. rate         achieved ÷ limit, and 1 s windows over the limit (3 processes × 4 threads)
6. memory       RSS per worker process after 10,000 jobs, growth 5,000 → 10,000; certsms ÷ bare
7. evidence     evidence lag (oldest certified send without its stored certificate) under
                sustained sends at the default limits (``bench/evidence_lag.py``)

Prints a table and writes ``bench/results/latest.json`` (machine, versions, settings)
and the profiles ``profile-{enqueue,send}.txt`` next to it.
``--quick`` uses smaller counts (a smoke run, not for docs/benchmarks.md); ``--only`` picks figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import redis

from bench import baseline_actor
from bench.harness import (
    CERTSMS_NAMESPACE,
    SandboxProcess,
    Workers,
    certsms_env,
    pending,
    quantile,
    start_bare,
    start_certsms,
    steady_rate,
    wait_until,
    windows_over,
)
from certsms.worker.embedded_redis import EmbeddedRedis

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_RESULTS = Path(__file__).resolve().parent.parent / "var" / "bench-quick" / "latest.json"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "send-plain.json"
SEND_QUEUE = "certsms.send"
FAR_ABOVE_LOAD = 100_000.0
FIGURES = ("enqueue", "overhead", "concurrency", "rate", "evidence", "profile")


def payload() -> dict[str, Any]:
    """The certified send every job carries (one recipient, no attachment)."""
    return dict(json.loads(EXAMPLE.read_text(encoding="utf-8")))


def bare_params() -> dict[str, Any]:
    """The provider parameters certsms would send for :func:`payload`."""
    from certsms.mensatek.payloads import send_request_from_payload

    return json.loads(json.dumps(send_request_from_payload(payload()).to_params(), default=str))


class Bench:
    """Shared Redis, sandbox, producers and results of one run."""

    def __init__(self, *, quick: bool, processes: int, threads: int, log_dir: Path) -> None:
        self.quick = quick
        self.processes = processes
        self.threads = threads
        self.log_dir = log_dir
        self.results_dir = RESULTS
        self.redis_server = EmbeddedRedis().start()
        try:
            self.sandbox = SandboxProcess(log_dir).start()
        except BaseException:
            self.redis_server.stop()
            raise
        self.client = redis.Redis.from_url(self.redis_server.url)
        self.results: dict[str, Any] = {}
        from certsms.config.logging import configure_logging
        from certsms.config.settings import Settings
        from certsms.worker.runtime import setup

        self.settings = Settings(
            redis_url=self.redis_server.url,
            namespace=CERTSMS_NAMESPACE,
            mensatek_base_url=self.sandbox.base_url,
            mensatek_api_user="demo",
            mensatek_api_token="demo-token",  # type: ignore[arg-type]
            log_level="INFO",
            log_format="json",
        )
        # the producer logs like a deployed one (one line per enqueue), to a file
        self._log = (log_dir / "producer.log").open("a", encoding="utf-8")
        configure_logging(self.settings, stream=self._log)
        setup(self.settings)
        self.bare_broker, self.bare_actor = baseline_actor.build(self.redis_server.url)
        self.payload = payload()
        self.params = bare_params()
        self._counter = itertools.count(1)

    def phone(self) -> str:
        """A distinct recipient per job: the guard never runs identical sends at once."""
        return f"34600{next(self._counter) % 1_000_000:06d}"

    def close(self) -> None:
        self._log.close()
        self.sandbox.stop()
        self.redis_server.stop()

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    # --- producers ----------------------------------------------------------------------
    def enqueue_certsms(self) -> tuple[str, float]:
        """One ``enqueue_send``; (reference, wall time before the call)."""
        from certsms.tasks import enqueue_send

        data = {**self.payload, "Destinatarios": [{"Movil": self.phone()}]}
        started = time.time()
        job_id = enqueue_send(data, settings=self.settings)
        return job_id, started  # the job id is the Referenciausuario

    def enqueue_bare(self) -> tuple[str, float]:
        """One bare ``actor.send``; (reference, wall time before the call)."""
        reference = uuid.uuid4().hex
        data = {
            **self.params,
            "Referenciausuario": reference,
            "Destinatarios": [{"Movil": self.phone()}],
        }
        started = time.time()
        self.bare_actor.send(data)
        return reference, started

    def fresh(self, **sandbox_config: Any) -> None:
        """Empty Redis and a reset sandbox."""
        self.client.flushall()
        self.sandbox.reset(**sandbox_config)

    def certsms_workers(
        self, *, processes: int, threads: int, name: str, **settings: Any
    ) -> Workers:
        limits = {"rate_limit_per_s": FAR_ABOVE_LOAD, "rate_limit_send_per_s": FAR_ABOVE_LOAD}
        env = certsms_env(self.redis_server.url, self.sandbox, **{**limits, **settings})
        return start_certsms(
            env, processes=processes, threads=threads, log_dir=self.log_dir, name=name
        )

    def drained(self, variant: str, *, timeout_s: float) -> None:
        namespace, queue = (
            (f"{CERTSMS_NAMESPACE}:dramatiq", SEND_QUEUE)
            if variant == "certsms"
            else (baseline_actor.NAMESPACE, baseline_actor.QUEUE)
        )
        wait_until(
            lambda: pending(self.client, namespace, queue) == 0,
            timeout_s=timeout_s,
            what=f"{variant} queue drained",
        )

    def warm_up(self, variant: str, enqueue: Callable[[], tuple[str, float]], count: int) -> None:
        """Jobs until every thread has run once; the processes are then all booted."""
        for _ in range(count):
            enqueue()
        self.drained(variant, timeout_s=120)
        time.sleep(1.0)

    # --- 2. enqueue -------------------------------------------------------------------------
    def fig_enqueue(self) -> None:
        count = self.n(3000, 500)
        rates: dict[str, float] = {}
        for variant, enqueue in (("bare", self.enqueue_bare), ("certsms", self.enqueue_certsms)):
            self.fresh()
            for _ in range(50):
                enqueue()
            started = time.perf_counter()
            for _ in range(count):
                enqueue()
            rates[variant] = count / (time.perf_counter() - started)
        self.client.flushall()
        self.results["enqueue"] = {
            "calls": count,
            "certsms_per_s": round(rates["certsms"], 1),
            "bare_per_s": round(rates["bare"], 1),
            "ratio": round(rates["certsms"] / rates["bare"], 3),
            "goal": ">= 0.50",
        }

    # --- 1, 3, 6: one worker session per variant -------------------------------------------------
    def session(self, variant: str) -> dict[str, Any]:
        """Warm-up, low-load latency, backlog throughput, then memory at 5,000 and 10,000 jobs."""
        enqueue = self.enqueue_certsms if variant == "certsms" else self.enqueue_bare
        self.fresh()
        start_workers = (
            (
                lambda: self.certsms_workers(
                    processes=self.processes, threads=self.threads, name="certsms"
                )
            )
            if variant == "certsms"
            else (
                lambda: start_bare(
                    self.redis_server.url,
                    self.sandbox,
                    processes=self.processes,
                    threads=self.threads,
                    log_dir=self.log_dir,
                )
            )
        )
        workers = start_workers()
        done = 0
        try:
            warm = 2 * self.processes * self.threads
            self.warm_up(variant, enqueue, warm)
            done += warm
            # 3. latency at low load: 20 jobs/s, one at a time
            samples = self.n(100, 40)
            sent: dict[str, float] = {}
            for _ in range(samples):
                reference, started = enqueue()
                sent[reference] = started
                time.sleep(0.05)
            self.drained(variant, timeout_s=60)
            done += samples
            arrivals = {
                str(e["params"].get("Referenciausuario")): float(e["epoch_s"])
                for e in self.sandbox.sends()
            }
            latencies_ms = [(arrivals[r] - t) * 1000 for r, t in sent.items() if r in arrivals]
            # 1. throughput from a backlog: queued while the workers are stopped, so the
            # producer's CPU does not compete with them; measured at the steady rate
            # (10 %–90 % of arrivals, leaving out boot and tail) of fresh workers
            workers.stop()
            backlog = self.n(3000, 600)
            self.sandbox.reset()
            for _ in range(backlog):
                enqueue()
            workers = start_workers()
            self.drained(variant, timeout_s=300)
            done = backlog
            log = self.sandbox.sends()
            errors = sum(1 for e in log if e["http_status"] != 200 or (e["res"] or 0) <= 0)
            rate = steady_rate([float(e["epoch_s"]) for e in log])
            # 6. memory after 5,000 and 10,000 jobs
            memory: dict[str, Any] = {}
            for mark in (self.n(5000, 1000), self.n(10000, 2000)):
                self.sandbox.reset()
                for _ in range(mark - done):
                    enqueue()
                self.drained(variant, timeout_s=300)
                done = mark
                time.sleep(0.5)
                memory[str(mark)] = workers.rss_mib()
        finally:
            workers.stop()
        return {
            "latency_ms": latencies_ms,
            "throughput_per_s": rate,
            "errors": errors,
            "backlog": backlog,
            "rss_mib": memory,
        }

    def fig_overhead(self) -> None:
        bare = self.session("bare")
        certsms = self.session("certsms")
        self.results["overhead"] = {
            "processes": self.processes,
            "threads": self.threads,
            "backlog_jobs": certsms["backlog"],
            "certsms_per_s": round(certsms["throughput_per_s"], 1),
            "bare_per_s": round(bare["throughput_per_s"], 1),
            "ratio": round(certsms["throughput_per_s"] / bare["throughput_per_s"], 3),
            "provider_errors": {"certsms": certsms["errors"], "bare": bare["errors"]},
            "goal": ">= 0.90",
        }
        lat: dict[str, Any] = {"samples": len(certsms["latency_ms"]), "load_per_s": 20}
        for name, data in (("certsms", certsms), ("bare", bare)):
            lat[name] = {
                "p50_ms": round(quantile(data["latency_ms"], 0.5), 1),
                "p99_ms": round(quantile(data["latency_ms"], 0.99), 1),
            }
        lat["ratio_p50"] = round(lat["certsms"]["p50_ms"] / lat["bare"]["p50_ms"], 3)
        lat["ratio_p99"] = round(lat["certsms"]["p99_ms"] / lat["bare"]["p99_ms"], 3)
        lat["broker_settings"] = broker_settings()
        self.results["latency"] = lat
        marks = sorted(certsms["rss_mib"], key=int)
        memory: dict[str, Any] = {"jobs": [int(m) for m in marks]}
        for name, data in (("certsms", certsms), ("bare", bare)):
            first, last = data["rss_mib"][marks[0]], data["rss_mib"][marks[-1]]
            memory[name] = {
                f"rss_mib_at_{marks[0]}": [round(v, 1) for v in first],
                f"rss_mib_at_{marks[-1]}": [round(v, 1) for v in last],
                "growth_mib": round(sum(last) / len(last) - sum(first) / len(first), 2),
            }
        mean = {
            n: sum(data["rss_mib"][marks[-1]]) / len(data["rss_mib"][marks[-1]])
            for n, data in (("certsms", certsms), ("bare", bare))
        }
        memory["ratio"] = round(mean["certsms"] / mean["bare"], 3)
        memory["goal"] = "no growth between the marks"
        self.results["memory"] = memory

    # --- 4. concurrency with a 200 ms provider -----------------------------------------------
    def fig_concurrency(self) -> None:
        latency_s, threads, limit = 0.2, 4, 60.0
        runs = []
        for processes in (1, 2, 4):
            ideal = min(limit, processes * threads / latency_s)
            self.fresh(latency_ms=int(latency_s * 1000))
            workers = self.certsms_workers(
                processes=processes,
                threads=threads,
                name=f"concurrency-{processes}",
                rate_limit_per_s=limit,
                rate_limit_send_per_s=limit,
            )
            try:
                self.warm_up("certsms", self.enqueue_certsms, processes * threads)
                self.sandbox.reset(latency_ms=int(latency_s * 1000))
                jobs = int(ideal * self.n(6, 3))
                for _ in range(jobs):
                    self.enqueue_certsms()
                self.drained("certsms", timeout_s=120)
                times = [float(e["epoch_s"]) for e in self.sandbox.sends()]
            finally:
                workers.stop()
            rate = steady_rate(times)
            runs.append(
                {
                    "processes": processes,
                    "threads": threads,
                    "jobs": jobs,
                    "ideal_per_s": ideal,
                    "achieved_per_s": round(rate, 1),
                    "ratio": round(rate / ideal, 3),
                }
            )
        self.results["concurrency"] = {
            "provider_latency_ms": int(latency_s * 1000),
            "limit_per_s": limit,
            "runs": runs,
            "goal": ">= 0.90",
        }

    # --- 5. rate accuracy -------------------------------------------------------------------
    def fig_rate(self) -> None:
        limit, processes, threads = 20.0, 3, 4
        jobs = int(limit * self.n(8, 4))
        self.fresh()
        workers = self.certsms_workers(
            processes=processes,
            threads=threads,
            name="rate",
            rate_limit_per_s=limit,
            rate_limit_send_per_s=limit,
        )
        try:
            for _ in range(jobs):  # the backlog is there before the workers are
                self.enqueue_certsms()
            self.drained("certsms", timeout_s=120)
            times = sorted(float(e["epoch_s"]) for e in self.sandbox.sends())
        finally:
            workers.stop()
        achieved = (len(times) - 1) / (times[-1] - times[0])
        self.results["rate"] = {
            "processes": processes,
            "threads": threads,
            "jobs": jobs,
            "limit_per_s": limit,
            "achieved_per_s": round(achieved, 2),
            "ratio": round(achieved / limit, 3),
            **windows_over(times, limit),
            "goal": "ratio <= 1.0 and close to it; 0 windows over the limit",
            "note": "sandbox log times have 1 ms resolution",
        }

    # --- 7. evidence lag ---------------------------------------------------------------------
    def fig_evidence(self) -> None:
        from bench.evidence_lag import figure

        self.results["evidence"] = figure(self)

    # --- profile -------------------------------------------------------------------------------
    def fig_profile(self) -> None:
        from bench.profile_hot_path import profile

        self.fresh()
        os.environ["BENCH_BASE_URL"] = self.sandbox.base_url  # the bare actor's target
        self.results["profile"] = profile(
            self.settings,
            self.payload,
            jobs=self.n(400, 100),
            out_dir=self.results_dir,
            bare=(self.bare_broker, self.bare_actor),
            bare_params=self.params,
        )


def broker_settings() -> dict[str, Any]:
    """What governs the enqueue → fetch delay of an idle Redis-broker worker."""
    timeout_ms = int(os.environ.get("dramatiq_worker_timeout", 1000))  # noqa: SIM112 (dramatiq's name)
    return {
        "dramatiq_worker_timeout_ms": timeout_ms,
        "idle_poll": "an idle consumer polls Redis with a backoff of 5 ms × 2^misses (jittered), "
        "capped at worker_timeout; a message arriving while it sleeps waits for the next poll",
        "prefetch": "env dramatiq_queue_prefetch; default 2 × threads per process",
        "heartbeat_timeout_s": "certsms 30 (CERTSMS_HEARTBEAT_TIMEOUT_S), bare 60",
        "maintenance_chance_per_million": 1000,
    }


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "platform": platform.platform()}


def versions(client: redis.Redis) -> dict[str, str]:
    info: Any = client.info("server")
    return {
        "python": platform.python_version(),
        "dramatiq": dramatiq.__version__,
        "redis_server": str(info.get("redis_version")),
        "redis_py": redis.__version__,
    }


def table(results: dict[str, Any]) -> list[str]:
    """Markdown rows: figure, certsms, baseline, ratio, goal, met."""
    rows = ["| figure | certsms | baseline | ratio | goal | met |", "|---|---|---|---|---|---|"]

    def row(
        name: str, ours: str, base: str, ratio: float | str, goal: str, met: bool | None
    ) -> None:
        mark = "—" if met is None else ("yes" if met else "**no**")
        rows.append(f"| {name} | {ours} | {base} | {ratio} | {goal} | {mark} |")

    if "overhead" in results:
        r = results["overhead"]
        row(
            f"1. send throughput ({r['processes']}×{r['threads']})",
            f"{r['certsms_per_s']} jobs/s",
            f"{r['bare_per_s']} jobs/s",
            r["ratio"],
            "≥ 0.90",
            r["ratio"] >= 0.9,
        )
    if "enqueue" in results:
        r = results["enqueue"]
        row(
            "2. enqueue",
            f"{r['certsms_per_s']} calls/s",
            f"{r['bare_per_s']} calls/s",
            r["ratio"],
            "≥ 0.50",
            r["ratio"] >= 0.5,
        )
    if "latency" in results:
        r = results["latency"]
        row(
            "3. latency enqueue→provider p50",
            f"{r['certsms']['p50_ms']} ms",
            f"{r['bare']['p50_ms']} ms",
            r["ratio_p50"],
            "report",
            None,
        )
        row(
            "3. latency enqueue→provider p99",
            f"{r['certsms']['p99_ms']} ms",
            f"{r['bare']['p99_ms']} ms",
            r["ratio_p99"],
            "report",
            None,
        )
    if "concurrency" in results:
        for run in results["concurrency"]["runs"]:
            row(
                f"4. concurrency {run['processes']}×{run['threads']}, 200 ms provider",
                f"{run['achieved_per_s']} jobs/s",
                f"ideal {run['ideal_per_s']:g} jobs/s",
                run["ratio"],
                "≥ 0.90",
                run["ratio"] >= 0.9,
            )
    if "rate" in results:
        r = results["rate"]
        row(
            f"5. rate accuracy ({r['processes']}×{r['threads']}, backlog)",
            f"{r['achieved_per_s']}/s",
            f"limit {r['limit_per_s']:g}/s",
            r["ratio"],
            "≤ 1.0",
            r["ratio"] <= 1.0,
        )
        row(
            "5. 1 s windows over the limit",
            f"{r['sliding_windows_over_limit']} sliding, "
            f"{r['aligned_seconds_over_limit']} aligned (max {r['max_in_any_1s']} in 1 s)",
            "—",
            "—",
            "0",
            r["sliding_windows_over_limit"] == 0,
        )
    if "evidence" in results:
        for name, r in results["evidence"].items():
            if not isinstance(r, dict):
                continue
            row(
                f"7. evidence lag, {r['offered_sends_per_s']} sends/s for {r['load_s']} s "
                f"(certificates {r['certificate_budget_per_s']:g}/s)",
                f"max {r['max_lag_s']} s, at end {r['lag_at_end_of_load_s']} s",
                f"halfway {r['lag_halfway_s']} s",
                "—",
                "bounded" if name == "default" else "report",
                r["lag_at_end_of_load_s"] <= max(10.0, 2 * r["lag_halfway_s"])
                if name == "default"
                else None,
            )
    if "memory" in results:
        r = results["memory"]
        last = r["jobs"][-1]
        ours = r["certsms"][f"rss_mib_at_{last}"]
        base = r["bare"][f"rss_mib_at_{last}"]
        row(
            f"6. RSS per worker after {last} jobs",
            f"{ours} MiB",
            f"{base} MiB",
            r["ratio"],
            "report",
            None,
        )
        row(
            f"6. RSS growth {r['jobs'][0]}→{last} jobs",
            f"{r['certsms']['growth_mib']} MiB",
            f"{r['bare']['growth_mib']} MiB",
            "—",
            "no growth",
            r["certsms"]["growth_mib"] <= max(1.0, r["bare"]["growth_mib"]),
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (smoke run)")
    parser.add_argument("--only", default=",".join(FIGURES), help=f"subset of {','.join(FIGURES)}")
    parser.add_argument("--processes", type=int, default=2, help="figures 1, 3, 6 (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="figures 1, 3, 6 (default 4)")
    parser.add_argument(
        "--output",
        default=None,
        help="where the JSON goes (default: bench/results/latest.json; with --quick "
        "var/bench-quick/latest.json, so a smoke run never replaces the committed figures)",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = str(QUICK_RESULTS if args.quick else RESULTS / "latest.json")
    chosen = [name for name in args.only.split(",") if name]
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figures: {', '.join(unknown)}")
    started = time.monotonic()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="certsms-bench-") as tmp:
        bench = Bench(
            quick=args.quick, processes=args.processes, threads=args.threads, log_dir=Path(tmp)
        )
        bench.results_dir = Path(args.output).parent  # profiles go next to the JSON
        try:
            for name in FIGURES:
                if name in chosen:
                    print(f"[{time.monotonic() - started:5.0f}s] {name} …", flush=True)
                    getattr(bench, f"fig_{name}")()
            document = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "quick": args.quick,
                "duration_s": round(time.monotonic() - started, 1),
                "machine": machine(),
                "versions": versions(bench.client),
                "settings": {
                    "processes": args.processes,
                    "threads": args.threads,
                    "guard_limit_per_s_for_overhead": FAR_ABOVE_LOAD,
                    "payload": "examples/send-plain.json, a distinct recipient per job",
                    "sandbox": "own process, no progression, no faults unless stated",
                    "redis": "embedded redis-server, no persistence",
                },
                "results": bench.results,
            }
        finally:
            bench.close()
    Path(args.output).write_text(json.dumps(document, indent=2) + "\n")
    print()
    print(
        f"certsms bench · {document['date']} · {document['machine']['cpu_count']} CPU "
        f"{document['machine']['cpu_model']} · {document['duration_s']} s"
    )
    print("\n".join(table(bench.results)))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
