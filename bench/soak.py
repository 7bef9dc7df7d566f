"""Soak: mixed jobs through ``certsms worker`` processes against the sandbox with its
spam blocking at the default thresholds and faults injected; the account must never
be blocked (``block_episodes == 0``).

    .venv/bin/python -m bench.soak                       # 2,000 jobs, 3 processes × 4 threads
    .venv/bin/python -m bench.soak --jobs 300 --json
    .venv/bin/python -m bench.soak --error-5xx-rate 0.05 --reset-rate 0.02 --latency-ms 30

Without ``--redis-url`` an embedded ``redis-server`` is started; the sandbox runs in
this process. The mix: sends (some scheduled, later cancelled), sends the provider
rejects though they pass local validation (a ``(FILE:…)`` naming no library file;
several distinct payloads, each queued several times), uploads (some of an
image type the library refuses), credits, file listings, then — once the sends are
certified — reports (repeated on purpose), per-recipient certificates and cancels.
Printed figures: provider requests by function and outcome, rejections, faults,
breaker transitions, guard delays, job outcomes, block episodes and the runtime.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import requests

from certsms.config.settings import Settings, variable_name
from certsms.mensatek.dates import MADRID, to_provider_datetime

NAMESPACE = "certsms-soak"
PDF_B64 = base64.b64encode(b"%PDF-1.4\n% certsms soak\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
PDF_B64_TEXT = PDF_B64.decode()
SEND_DONE = frozenset(
    {"sent", "scheduled", "delivered", "certified", "evidence_stored", "cancelled"}
)
FINAL = SEND_DONE | {"succeeded", "failed", "dead", "uncertain", "rejected"}


@dataclass
class SoakConfig:
    """What one soak run does (the defaults give the figures in docs/guard.md)."""

    jobs: int = 2000
    processes: int = 3
    threads: int = 4
    rate_limit_per_s: float = 30.0
    rate_limit_send_per_s: float = 25.0
    rate_limit_query_per_s: float = 15.0
    error_5xx_rate: float = 0.03
    reset_rate: float = 0.01
    html_rate: float = 0.005
    latency_ms: int = 10
    invalid_share: float = 0.02  # sends the provider rejects (pass local validation)
    invalid_distinct: int = 6  # distinct rejected payloads among them
    seed: int = 7
    timeout_s: float = 900.0
    worker_settings: tuple[tuple[str, str], ...] = ()  # extra (setting, value) pairs


class Admin:
    """The sandbox's admin API (and one raw API call)."""

    def __init__(self, base_url: str, admin_url: str) -> None:
        self.base_url, self.admin_url = base_url, admin_url
        self.http = requests.Session()

    def _do(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, self.admin_url + path, json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def configure(self, **changes: Any) -> None:
        """Change the sandbox config."""
        self._do("POST", "config", changes)

    def requests(self) -> list[dict[str, Any]]:
        """The request log."""
        return list(self._do("GET", "requests"))

    def state(self) -> dict[str, Any]:
        """The sandbox state (blocks, block_episodes, messages, ...)."""
        return dict(self._do("GET", "state"))

    def tick(self, steps: int) -> None:
        """Advance the status progression."""
        self._do("POST", "tick", {"steps": steps})

    def set_credits(self, credits: float, user: str) -> None:
        """Set the account's credits."""
        self._do("POST", "credits", {"credits": credits, "user": user})


def worker_env(settings: Settings, config: SoakConfig) -> dict[str, str]:
    """The environment of the ``certsms worker`` processes."""
    env = dict(os.environ)
    env.update(
        REDIS_URL=settings.redis_url,
        MENSATEK_BASE_URL=settings.mensatek_base_url,
        MENSATEK_API_USER=settings.mensatek_api_user or "",
        MENSATEK_API_TOKEN=_token(settings),
        CERTSMS_NAMESPACE=settings.namespace,
        CERTSMS_CERT_DIR=str(settings.cert_dir),
    )
    values: dict[str, object] = {
        "rate_limit_per_s": config.rate_limit_per_s,
        "rate_limit_send_per_s": config.rate_limit_send_per_s,
        "rate_limit_query_per_s": config.rate_limit_query_per_s,
        "read_timeout_s": 10,
        "log_format": "json",
        "log_level": "WARNING",
        **dict(config.worker_settings),
    }
    for name, value in values.items():
        env[variable_name(name)] = str(value)
    return env


def _token(settings: Settings) -> str:
    settings.require_provider_credentials()
    assert settings.mensatek_api_token is not None
    return settings.mensatek_api_token.get_secret_value()


def _send(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "Remitente": "ACME",
        "Mensaje": f"Notificacion {index}: su documento esta disponible",
        "Destinatarios": [{"Movil": f"346{index % 100_000:08d}"}],
        "Contacto": "ACME S.L.",
        "Telcontacto": "900000000",
        "Cifcontacto": "B00000000",
        **extra,
    }


def _record(store: Any, job_id: str) -> dict[str, Any]:
    """A job record as its JSON document ({} when gone)."""
    record = store.get(job_id)
    return record.to_dict() if record is not None else {}


def _wait(store: Any, ids: list[str], deadline: float, what: str) -> None:
    while True:
        pending = [j for j in ids if str((_record(store, j)).get("status")) not in FINAL]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} {what} jobs not settled, e.g. {pending[:3]}")
        time.sleep(0.5)


def run_soak(
    settings: Settings, admin: Admin, config: SoakConfig, log_path: Path
) -> dict[str, Any]:
    """Run one soak against ``settings``' Redis and ``admin``'s sandbox; return the figures.

    The sandbox keeps its spam-blocking config (the defaults unless the caller changed
    them); faults and credits are set here.
    """
    from certsms import tasks
    from certsms.tasks.boot import setup
    from certsms.worker.jobs.store import JobStore

    rng = random.Random(config.seed)
    admin.configure(
        error_5xx_rate=config.error_5xx_rate,
        reset_rate=config.reset_rate,
        html_rate=config.html_rate,
        latency_ms=config.latency_ms,
        fault_seed=config.seed,
    )
    admin.set_credits(1e9, settings.mensatek_api_user or "demo")
    runtime = setup(settings)
    store = JobStore(runtime.redis, settings)
    n = config.jobs
    started = time.monotonic()
    deadline = started + config.timeout_s
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "certsms.worker.cli",
            "worker",
            "--processes",
            str(config.processes),
            "--threads",
            str(config.threads),
        ],
        env=worker_env(settings, config),
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    kinds: Counter[str] = Counter()
    ids: list[str] = []

    def enqueue(kind: str, payload: dict[str, Any] | None = None) -> str:
        job_id = tasks.enqueue(kind, payload or {}, settings=settings)
        kinds[kind] += 1
        ids.append(job_id)
        return job_id

    try:
        # --- phase 1: sends, scheduled sends, rejected sends, uploads, credits, listings
        n_valid = int(n * 0.40)
        n_scheduled = int(n * 0.04)
        distinct = config.invalid_distinct
        n_invalid = max(distinct, int(n * config.invalid_share))
        fecha = to_provider_datetime(
            datetime.now(MADRID).replace(second=0, microsecond=0) + timedelta(days=2)
        )
        phase1: list[tuple[str, dict[str, Any] | None]] = []
        phase1 += [("send", _send(i)) for i in range(n_valid)]
        phase1 += [("send", _send(50_000 + i, Fecha=fecha)) for i in range(n_scheduled)]
        phase1 += [
            (
                "send",
                _send(90_000, Mensaje=f"Contrato (FILE:2:falta{i % distinct}.pdf)"),
            )
            for i in range(n_invalid)
        ]
        phase1 += [
            ("upload", {"Nombre": f"doc{i % 20}.pdf", "Contenido": PDF_B64_TEXT, "Tipo": "BASE64"})
            for i in range(int(n * 0.045))
        ]
        phase1 += [("credits", None) for _ in range(int(n * 0.04))]
        phase1 += [("list_files", None) for _ in range(int(n * 0.015))]
        rng.shuffle(phase1)
        send_ids: list[str] = []
        phones: dict[str, str] = {}
        scheduled_ids: list[str] = []
        for kind, payload in phase1:
            job_id = enqueue(kind, payload)
            if kind == "send" and payload and "FILE:" not in str(payload["Mensaje"]):
                (scheduled_ids if "Fecha" in payload else send_ids).append(job_id)
                phones[job_id] = str(payload["Destinatarios"][0]["Movil"])
        _wait(store, ids, deadline, "phase-1")
        admin.tick(3)  # every sent message certified
        # --- phase 2: reports (repeated on purpose), certificates, cancels
        sent = [
            (int(r["idmensaje"]), phones[j])
            for j, r in ((j, _record(store, j)) for j in send_ids)
            if r.get("idmensaje") and r.get("status") in SEND_DONE
        ]
        scheduled = [
            int(r["idmensaje"])
            for r in (_record(store, j) for j in scheduled_ids)
            if r.get("idmensaje")
        ]
        remaining = n - len(ids)
        n_cancel = min(len(scheduled), remaining)
        n_reports = (remaining - n_cancel) * 2 // 3
        n_certs = remaining - n_cancel - n_reports
        phase2: list[tuple[str, dict[str, Any] | None]] = []
        hot = [m for m, _ in sent[:10]]  # the same few messages reported again and again
        for i in range(n_reports):
            message_id = rng.choice(hot) if i % 3 == 0 else rng.choice(sent)[0]
            phase2.append(("report", {"Idmensaje": message_id}))
        phase2 += [("report", {"Idmensaje": 99_999_999}) for _ in range(3)]  # unknown → Res -4
        for _ in range(n_certs):
            message_id, phone = rng.choice(sent)
            phase2.append(("certificate", {"Idmensaje": message_id, "Telefono": phone}))
        phase2 += [("cancel", {"Idmensaje": m}) for m in scheduled[:n_cancel]]
        rng.shuffle(phase2)
        for kind, payload in phase2:
            enqueue(kind, payload)
        _wait(store, ids, deadline, "phase-2")
        runtime_s = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    return _figures(settings, admin, store, ids, kinds, runtime_s, config)


def _figures(
    settings: Settings,
    admin: Admin,
    store: Any,
    ids: list[str],
    kinds: Counter[str],
    runtime_s: float,
    config: SoakConfig,
) -> dict[str, Any]:
    log = admin.requests()
    state = admin.state()
    client = redis.Redis.from_url(settings.redis_url)
    transitions = {
        (k.decode() if isinstance(k, bytes) else str(k)): int(v)
        for k, v in client.hgetall(settings.key("guard", "breaker", "transitions")).items()
    }
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for job_id in ids:
        record = _record(store, job_id)
        outcomes[f"{record.get('kind')}:{record.get('status')}"] += 1
        error = record.get("error")
        if record.get("status") == "failed" and isinstance(error, dict):
            errors[str(error.get("class"))] += 1
    functions = Counter(entry["function"] for entry in log)
    outcome_counts = Counter(entry["outcome"] for entry in log)
    rejections = sum(1 for e in log if isinstance(e.get("res"), int) and e["res"] < 0)
    references = Counter(
        e["params"].get("Referenciausuario")
        for e in log
        if e["function"] == "EnviarSMSCERTIFICADO" and e["outcome"] == "ok"
    )
    return {
        "jobs": len(ids),
        "jobs_by_kind": dict(sorted(kinds.items())),
        "job_outcomes": dict(sorted(outcomes.items())),
        "failed_by_error": dict(sorted(errors.items())),
        "provider_requests": len(log),
        "requests_by_function": dict(sorted(functions.items())),
        "requests_by_outcome": dict(sorted(outcome_counts.items())),
        "rejections": rejections,
        "repeated_queries": outcome_counts.get("repeated_query", 0),
        "duplicate_sends": sum(1 for count in references.values() if count > 1),
        "breaker_transitions": transitions,
        "breaker_openings": transitions.get("opened", 0),
        "block_episodes": state["block_episodes"],
        "blocked_requests": outcome_counts.get("blocked", 0),
        "runtime_s": round(runtime_s, 1),
        "config": asdict(config),
    }


def main() -> None:
    """Start Redis and the sandbox, run the soak, print the figures."""
    from certsms.config.logging import configure_logging
    from certsms.sandbox import SandboxConfig, SandboxServer
    from certsms.worker.embedded_redis import EmbeddedRedis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = SoakConfig()
    parser.add_argument("--jobs", type=int, default=defaults.jobs)
    parser.add_argument("--processes", type=int, default=defaults.processes)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--rate", type=float, default=defaults.rate_limit_per_s)
    parser.add_argument("--error-5xx-rate", type=float, default=defaults.error_5xx_rate)
    parser.add_argument("--reset-rate", type=float, default=defaults.reset_rate)
    parser.add_argument("--html-rate", type=float, default=defaults.html_rate)
    parser.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
    parser.add_argument("--invalid-distinct", type=int, default=defaults.invalid_distinct)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--timeout-s", type=float, default=defaults.timeout_s)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="extra worker setting, e.g. --set rejection_budget=8",
    )
    parser.add_argument("--redis-url")
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    config = SoakConfig(
        jobs=args.jobs,
        processes=args.processes,
        threads=args.threads,
        rate_limit_per_s=args.rate,
        rate_limit_send_per_s=min(args.rate, defaults.rate_limit_send_per_s * args.rate / 30),
        rate_limit_query_per_s=min(args.rate, defaults.rate_limit_query_per_s * args.rate / 30),
        error_5xx_rate=args.error_5xx_rate,
        reset_rate=args.reset_rate,
        html_rate=args.html_rate,
        latency_ms=args.latency_ms,
        invalid_distinct=args.invalid_distinct,
        seed=args.seed,
        timeout_s=args.timeout_s,
        worker_settings=tuple((k, v) for k, _, v in (s.partition("=") for s in args.set)),
    )
    embedded = None if args.redis_url else EmbeddedRedis().start()
    url = args.redis_url or embedded.url  # type: ignore[union-attr]
    server = SandboxServer(SandboxConfig(port=0, progression_interval_s=0.0)).start()
    work = Path(tempfile.mkdtemp(prefix="certsms-soak-"))
    try:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"{NAMESPACE}:*"):
            client.delete(key)
        settings = Settings(
            redis_url=url,
            namespace=NAMESPACE,
            mensatek_base_url=server.base_url,
            mensatek_api_user=server.config.user,
            mensatek_api_token=server.config.token,  # type: ignore[arg-type]
            cert_dir=work / "certs",
            log_level="WARNING",
        )
        configure_logging(settings, stream=sys.stderr)  # warnings only, off stdout
        admin = Admin(server.base_url, server.admin_url)
        if not args.json:
            print(f"soak: {config.jobs} jobs, worker log {work / 'worker.log'}", file=sys.stderr)
        figures = run_soak(settings, admin, config, work / "worker.log")
    finally:
        server.stop()
        if embedded is not None:
            embedded.stop()
    print(json.dumps(figures, indent=2))
    if figures["block_episodes"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
