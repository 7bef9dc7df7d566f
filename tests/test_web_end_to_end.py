"""THE loop: enqueue a certified send; the sandbox calls back; evidence lands by itself."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import pytest
import redis

from config.settings import Settings
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.web import CALLBACK_PASSWORD, CALLBACK_USER, WebServer
from worker.evidence import EvidenceStore
from worker.jobs.store import JobStatus, JobStore

PHONES = ("34600000001", "34600000002")
WANTED = ["sent", "delivered", "certified", "evidence_stored"]


@pytest.fixture
def loop_settings(sandbox_settings: Settings) -> Settings:
    """Sandbox settings plus callback credentials."""
    from pydantic import SecretStr

    return sandbox_settings.model_copy(
        update={
            "callback_user": CALLBACK_USER,
            "callback_password": SecretStr(CALLBACK_PASSWORD),
            "retry_min_backoff_ms": 50,
            "retry_max_backoff_ms": 200,
        }
    )


def test_certified_send_closes_the_loop_by_itself(
    loop_settings: Settings,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
    serve_app: Callable[[Any], WebServer],
) -> None:
    """queued → sent → delivered → certified → evidence_stored by itself; the hashes match."""
    from tasks import enqueue
    from tasks.boot import setup
    from worker.web import create_app

    runtime = setup(loop_settings)

    server = serve_app(create_app(loop_settings, redis_client))
    sandbox.configure(
        callback_url=f"{server.url}/callbacks/mensatek",
        callback_user=CALLBACK_USER,
        callback_password=CALLBACK_PASSWORD,
    )
    worker = dramatiq.Worker(runtime.broker, worker_threads=4, worker_timeout=50)
    worker.start()
    try:
        job_id = enqueue(
            "send",
            {
                "Remitente": "ACME",
                "Mensaje": "Su notificacion esta disponible",
                "Destinatarios": [{"Movil": p} for p in PHONES],
                "Contacto": "ACME S.L.",
                "Telcontacto": "900000000",
                "Cifcontacto": "B00000000",
            },
            idempotency_key="e2e-1",
        )
        store = JobStore(redis_client, loop_settings)
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = store.status(job_id)
            if status is not None and (not seen or seen[-1] != status.value):
                seen.append(status.value)
            if status in (JobStatus.EVIDENCE_STORED, JobStatus.FAILED, JobStatus.DEAD):
                break
            if status is not None and status.value in ("sent", "delivered", "certified"):
                sandbox.tick()  # the provider's time passes; it calls us back by itself
                sandbox.wait_callbacks(timeout_s=5)
            time.sleep(0.05)
    finally:
        worker.stop()
    record = store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.EVIDENCE_STORED, (seen, record)
    assert [s for s in seen if s in WANTED] == WANTED[: len([s for s in seen if s in WANTED])]
    history = [e["status"] for e in store.events(count=500)
               if e.get("job_id") == job_id and e["event"] != "recipient_status_changed"
               and e.get("status")]  # fmt: skip
    assert [s for s in WANTED if s in history] == WANTED
    message_id = record.idmensaje
    assert message_id is not None
    evidence = EvidenceStore(loop_settings)
    for phone in PHONES:
        path = evidence.path_for(message_id, phone)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sandbox.certificate_sha256(
            message_id, phone
        )
    assert all(check.ok for check in evidence.verify(job_id))
    assert len(evidence.verify(job_id)) == len(PHONES)
