"""``certsms worker`` serves every worker process's metrics on one port."""

from __future__ import annotations

import requests

from certsms import tasks
from certsms.worker.embedded_redis import free_port
from tests.fixtures.jobs import wait_for, wait_status
from tests.worker.commands.test_worker import _env, _Workers


def test_worker_processes_expose_job_and_provider_metrics(
    jobs_settings, job_store, sandbox, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Jobs run by two worker processes show up in the shared exposition endpoint."""
    port = free_port()
    env = _env(jobs_settings, tmp_path)
    env["CERTSMS_WORKER_METRICS_PORT"] = str(port)
    workers = _Workers(env, tmp_path / "worker.log")
    try:
        proc = workers.start()
        ids = [tasks.enqueue_credits(settings=jobs_settings) for _ in range(3)]
        for job_id in ids:
            wait_status(job_store, job_id, "succeeded", "failed", "dead", timeout_s=60)

        def scrape() -> str | None:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                return None
            return (
                text if 'certsms_jobs_total{kind="credits",outcome="succeeded"}' in text else None
            )

        text = wait_for(scrape, timeout_s=30)
        assert proc.poll() is None
        line = next(
            ln
            for ln in text.splitlines()
            if ln.startswith('certsms_jobs_total{kind="credits",outcome="succeeded"}')
        )
        assert float(line.rsplit(" ", 1)[1]) == 3.0
        assert "dramatiq_messages_total" in text
    finally:
        workers.stop_all()
