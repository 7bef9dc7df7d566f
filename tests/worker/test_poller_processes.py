"""Two `certsms worker` processes: one elected runner, so each message is polled once per step."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import redis

from certsms.config.settings import Settings
from certsms.worker.jobs.store import JobStore
from tests.fixtures.jobs import wait_for, wait_status
from tests.fixtures.maintenance import SEND_PAYLOAD
from tests.fixtures.sandbox import SandboxHandle

CLI = [sys.executable, "-m", "certsms.worker.cli"]

STEP_S = 2


def _start(settings: Settings, tmp_path: Path, index: int) -> subprocess.Popen[bytes]:
    token = settings.mensatek_api_token
    env = dict(os.environ)
    env.update(
        REDIS_URL=settings.redis_url,
        MENSATEK_BASE_URL=settings.mensatek_base_url,
        MENSATEK_API_USER=str(settings.mensatek_api_user),
        MENSATEK_API_TOKEN=token.get_secret_value() if token else "",
        CERTSMS_NAMESPACE=settings.namespace,
        CERTSMS_CERT_DIR=str(tmp_path / "certs"),
        CERTSMS_LOG_FORMAT="json",
        CERTSMS_STATUS_SOURCE="polling",
        CERTSMS_POLLER_SCHEDULE_S=str(STEP_S),
        CERTSMS_MAINTENANCE_INTERVAL_S="0.2",
        CERTSMS_REPORT_CACHE_TTL_S="0",
        CERTSMS_RATE_LIMIT_PER_S="50",
        CERTSMS_RATE_LIMIT_QUERY_PER_S="25",
    )
    out = (tmp_path / f"worker-{index}.log").open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "certsms.worker.cli",
            "worker",
            "--processes",
            "1",
            "--threads",
            "2",
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_poller_two_worker_processes_poll_each_message_once_per_step(
    sandbox_settings: Settings, sandbox: SandboxHandle, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """With two worker processes, consecutive polls of one message are a whole step apart."""
    from certsms.tasks import enqueue

    sandbox.configure(repeat_window_s=0.0)  # polls every 2 s would look like spam otherwise
    procs = [_start(sandbox_settings, tmp_path, i) for i in range(2)]
    try:
        store = JobStore(redis_client, sandbox_settings)
        jobs = [enqueue("send", SEND_PAYLOAD, settings=sandbox_settings) for _ in range(2)]
        for job_id in jobs:
            wait_status(store, job_id, "sent", timeout_s=30)

        def polls() -> dict[str, list[float]]:
            times: dict[str, list[float]] = defaultdict(list)
            for row in sandbox.requests("GetReportSMSCERTIFICADO"):
                times[str(row["params"]["Idmensaje"])].append(float(row["epoch_s"]))
            return times if len(times) == 2 and all(len(t) >= 3 for t in times.values()) else {}

        times = wait_for(polls, timeout_s=30)
        alive = redis_client.zrange(sandbox_settings.key("workers", "alive"), 0, -1)
        assert len(alive) == 2  # both processes run the maintenance thread
        for series in times.values():
            gaps = [b - a for a, b in itertools.pairwise(series)]
            assert min(gaps) >= STEP_S * 0.9, series  # a double poll would be ~0 s apart
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
