"""How long until a SIGKILLed worker's jobs run again, with the default settings.

``.venv/bin/python -m bench.redelivery``: an embedded Redis, the sandbox (3 s
latency so sends are caught in flight), ``certsms worker --processes 1 --threads 2``
with the deployed defaults (``CERTSMS_HEARTBEAT_TIMEOUT_S`` 30,
``CERTSMS_REDELIVERY_SWEEP_INTERVAL_S`` 15). Queue sends, wait until some are
``in_flight``, SIGKILL the whole worker, start a new one at once, and time how long
until every job is settled again (in-flight ones become ``uncertain``, the rest
``sent``). The issue's target is 2 minutes; the design bound is heartbeat timeout
plus one sweep interval (45 s).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

from bench.harness import SandboxProcess, certsms_env, start_certsms, wait_until
from certsms.config.settings import Settings
from certsms.worker.embedded_redis import EmbeddedRedis
from certsms.worker.jobs.store import JobStore

SETTLED = {"sent", "uncertain", "failed", "dead"}
NAMESPACE = "certsms-bench"


def main() -> int:
    """Run once and print the figures as JSON."""
    log_dir = Path(tempfile.mkdtemp(prefix="certsms-redelivery-"))
    with EmbeddedRedis() as server:
        sandbox = SandboxProcess(log_dir).start()
        try:
            return _measure(server, sandbox, log_dir)
        finally:
            sandbox.stop()


def _measure(server: EmbeddedRedis, sandbox: SandboxProcess, log_dir: Path) -> int:
    from certsms.tasks import enqueue_send

    settings = Settings(
        redis_url=server.url,
        namespace=NAMESPACE,
        mensatek_base_url=sandbox.base_url,
        mensatek_api_user="demo",
        mensatek_api_token="demo-token",  # type: ignore[arg-type]
    )
    store = JobStore(redis.Redis.from_url(server.url), settings)
    requests.post(sandbox.admin_url + "config", json={"latency_ms": 3000}, timeout=10)
    payload = json.loads(
        (Path(__file__).parent.parent / "examples" / "send-plain.json").read_text()
    )
    ids = [
        enqueue_send(
            {**payload, "Destinatarios": [{"Movil": f"3460000{n:04d}"}]}, settings=settings
        )
        for n in range(6)
    ]
    env = certsms_env(server.url, sandbox)
    env["CERTSMS_NAMESPACE"] = NAMESPACE
    first = start_certsms(env, processes=1, threads=2, log_dir=log_dir, name="first")
    wait_until(
        lambda: any(store.status(j) == "in_flight" for j in ids),
        timeout_s=60,
        what="a send in flight",
    )
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()
    killed_at = time.monotonic()
    in_flight = [j for j in ids if store.status(j) == "in_flight"]
    requests.post(sandbox.admin_url + "config", json={"latency_ms": 0}, timeout=10)
    second = start_certsms(env, processes=1, threads=2, log_dir=log_dir, name="second")
    try:
        wait_until(
            lambda: all(str(store.status(j)) in SETTLED for j in ids),
            timeout_s=300,
            what="every job settled",
        )
        settled_s = time.monotonic() - killed_at
    finally:
        second.stop()
    statuses = {j: str(store.status(j)) for j in ids}
    figures = {
        "jobs": len(ids),
        "in_flight_at_kill": len(in_flight),
        "seconds_from_kill_to_all_settled": round(settled_s, 1),
        "target_s": 120,
        "heartbeat_timeout_s": settings.heartbeat_timeout_s,
        "redelivery_sweep_interval_s": settings.redelivery_sweep_interval_s,
        "statuses": sorted(statuses.values()),
        "in_flight_became_uncertain": all(statuses[j] == "uncertain" for j in in_flight),
    }
    print(json.dumps(figures, indent=2))
    return 0 if settled_s <= 120 and figures["in_flight_became_uncertain"] else 1


if __name__ == "__main__":
    sys.exit(main())
