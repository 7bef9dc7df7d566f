"""Limiter accuracy: N processes × M threads through one shared budget.

Each grant is a reserved slot on the Redis clock; after sleeping until it, the
caller also reads Redis ``TIME`` (≈ when a request would leave). Reports, for both
the granted slots and those "request" times: the most requests in any sliding
1-second window and the achieved rate ÷ the limit.

    .venv/bin/python -m bench.guard_accuracy --processes 3 --threads 4 --requests 300
    .venv/bin/python -m bench.guard_accuracy --redis-url redis://host:6379/0 --limit 5

Without ``--redis-url`` an embedded ``redis-server`` is started.
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing as mp
import threading

import redis

from certsms.config.settings import Settings
from certsms.worker.embedded_redis import EmbeddedRedis
from certsms.worker.guard import Budget, RateLimiter

NAMESPACE = "certsms-bench"


def _process(url: str, limit: float, threads: int, count: int, out: mp.Queue) -> None:
    settings = Settings(
        redis_url=url,
        namespace=NAMESPACE,
        rate_limit_per_s=limit,
        rate_limit_send_per_s=limit,
        limiter_max_sleep_s=3600.0,
    )
    client = redis.Redis.from_url(url)
    limiter = RateLimiter(client, settings)
    records: list[tuple[int, int]] = []
    lock = threading.Lock()

    def run() -> None:
        for _ in range(count):
            grant = limiter.acquire(Budget.SEND)
            seconds, micros = client.time()
            with lock:
                records.append((grant.slot_us, seconds * 1_000_000 + micros))

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(records)


def worst_window(times_us: list[int], window_us: int = 1_000_000) -> int:
    """The most timestamps inside any closed window of ``window_us``."""
    times = sorted(times_us)
    return max(bisect.bisect_right(times, t + window_us) - i for i, t in enumerate(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=240, help="total grants")
    parser.add_argument("--limit", type=float, default=20.0, help="requests per second")
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    per_thread = max(1, args.requests // (args.processes * args.threads))

    embedded = None if args.redis_url else EmbeddedRedis().start()
    url = args.redis_url or embedded.url  # type: ignore[union-attr]
    try:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"{NAMESPACE}:*"):
            client.delete(key)
        out: mp.Queue = mp.Queue()
        procs = [
            mp.Process(target=_process, args=(url, args.limit, args.threads, per_thread, out))
            for _ in range(args.processes)
        ]
        for p in procs:
            p.start()
        records = [r for _ in procs for r in out.get()]
        for p in procs:
            p.join()
    finally:
        if embedded is not None:
            embedded.stop()

    report: dict[str, object] = {"limit_per_s": args.limit, "grants": len(records)}
    for name, index in (("slots", 0), ("woke", 1)):
        times = sorted(r[index] for r in records)
        span_s = (times[-1] - times[0]) / 1e6
        report[name] = {
            "max_in_any_1s": worst_window(times),
            "achieved_over_limit": round((len(times) - 1) / span_s / args.limit, 4),
        }
    lateness = sorted(r[1] - r[0] for r in records)
    report["wake_lateness_ms"] = {
        "p50": lateness[len(lateness) // 2] / 1000,
        "p99": lateness[int(len(lateness) * 0.99)] / 1000,
        "max": lateness[-1] / 1000,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
