"""Callbacks on, some lost: the poller (status source ``both``) finishes every job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import pytest
import redis
from pydantic import SecretStr

from certsms.config.settings import Settings
from certsms.worker.dramatiq_keys import broker_namespace, messages_key
from certsms.worker.jobs.store import JobStore
from certsms.worker.poller import ReportPoller, status_source
from tests.fixtures.jobs import JOB_OVERRIDES, record_of, wait_for, wait_status
from tests.fixtures.maintenance import MAINTENANCE_OVERRIDES, SEND_PAYLOAD, TestClock
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.web import CALLBACK_PASSWORD, CALLBACK_USER, WebServer

REPORT = "GetReportSMSCERTIFICADO"


@pytest.fixture
def both_settings(sandbox_settings: Settings) -> Settings:
    """Callback credentials set and status source ``auto`` (→ ``both``), grace 10 min."""
    return sandbox_settings.model_copy(
        update={
            **JOB_OVERRIDES,
            **MAINTENANCE_OVERRIDES,
            "status_source": "auto",
            "poller_callback_grace_s": 600,
            "callback_user": CALLBACK_USER,
            "callback_password": SecretStr(CALLBACK_PASSWORD),
        }
    )


def test_poller_finishes_jobs_whose_callbacks_were_dropped(
    both_settings: Settings,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
    serve_app: Callable[[Any], WebServer],
    test_clock: TestClock,
) -> None:
    """With 40 % of callbacks dropped every job still reaches evidence_stored; only silent
    jobs are polled, and only after the grace period."""
    from certsms.tasks import enqueue_send
    from certsms.tasks.boot import setup
    from certsms.worker.web import create_app

    assert status_source(both_settings) == "both"
    runtime = setup(both_settings)

    server = serve_app(create_app(both_settings, redis_client))
    sandbox.configure(
        callback_url=f"{server.url}/callbacks/mensatek",
        callback_user=CALLBACK_USER,
        callback_password=CALLBACK_PASSWORD,
        callback_drop_rate=0.4,
        fault_seed=7,
    )
    worker = dramatiq.Worker(runtime.broker, worker_threads=4, worker_timeout=50)
    worker.start()
    try:
        store = JobStore(redis_client, both_settings)
        jobs = [enqueue_send(SEND_PAYLOAD) for _ in range(5)]
        for job_id in jobs:
            wait_status(store, job_id, "sent", "delivered", "certified", "evidence_stored")
        poller = ReportPoller(redis_client, both_settings, clock=test_clock)
        poller.discover()
        for _ in range(4):
            sandbox.tick(1)
            sandbox.wait_callbacks()
        dropped = sum(1 for d in sandbox.state()["callbacks"] if d.get("outcome") == "dropped")
        assert dropped > 0

        def settled() -> dict[str, str]:
            """Job → status once the queued callbacks are processed (nothing left to run)."""
            queue = messages_key(broker_namespace(both_settings), "certsms.callbacks")
            if redis_client.hlen(queue) or redis_client.hlen(
                messages_key(broker_namespace(both_settings), "certsms.query")
            ):
                return {}
            return {job_id: str(store.status(job_id)) for job_id in jobs}

        before = wait_for(settled)
        silent = [job_id for job_id, status in before.items() if status != "evidence_stored"]
        assert silent, "the seed drops at least one job's final callbacks"
        # within the grace period nothing is polled (callbacks are still arriving)
        test_clock.advance(300)
        assert poller.run_once().polled == 0
        assert sandbox.requests(REPORT) == []
        test_clock.advance(600)  # the last callbacks came a few real seconds after the start
        run = poller.run_once()
        assert run.polled == len(silent)
        for job_id in jobs:
            wait_status(store, job_id, "evidence_stored")
        polled_ids = {int(r["params"]["Idmensaje"]) for r in sandbox.requests(REPORT)}
        assert polled_ids == {record_of(store, j).idmensaje for j in silent}
    finally:
        worker.stop(timeout=10_000)
