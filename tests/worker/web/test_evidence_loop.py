"""THE loop: enqueue a certified send; the sandbox calls back; evidence lands by itself."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from certsms.worker.commands.stack import Stack
from certsms.worker.evidence import EvidenceStore
from certsms.worker.jobs.store import JobStatus
from tests.fixtures.sandbox import SandboxHandle

PHONES = ("34600000001", "34600000002")
WANTED = ["sent", "delivered", "certified", "evidence_stored"]


def test_certified_send_closes_the_loop_by_itself(
    make_stack: Callable[..., Stack], sandbox: SandboxHandle
) -> None:
    """queued → sent → delivered → certified → evidence_stored by itself; the hashes match."""
    from certsms.tasks import enqueue

    stack = make_stack(retry_min_backoff_ms=50, retry_max_backoff_ms=200)
    loop_settings = stack.settings
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
    store = stack.store
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
    record = store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.EVIDENCE_STORED, (seen, record)
    assert [s for s in seen if s in WANTED] == WANTED[: len([s for s in seen if s in WANTED])]
    history = [
        e["status"]
        for e in store.events(count=500)
        if e.get("job_id") == job_id
        and e["event"] != "recipient_status_changed"
        and e.get("status")
    ]
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
