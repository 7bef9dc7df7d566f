"""Every job kind end to end: producer API → Redis → a real dramatiq worker → the sandbox."""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from dramatiq.message import Message

from certsms import tasks
from certsms.mensatek.dates import MADRID
from certsms.mensatek.errors import InvalidRequest
from certsms.worker.deadletter import DeadLetters
from certsms.worker.dramatiq_keys import messages_key
from certsms.worker.errors import IdempotencyConflict
from certsms.worker.jobs import JobStatus
from certsms.worker.runtime import Runtime
from tests.fixtures.jobs import record_of, wait_for, wait_status
from tests.fixtures.sandbox import send_params

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _send(**overrides: Any) -> dict[str, Any]:
    return send_params(Mensaje="Su notificacion esta disponible", **overrides)


def _future(days: int) -> str:
    return (datetime.now(MADRID) + timedelta(days=days)).strftime("%Y-%m-%d %H:%M")


def _queued(rt: Runtime) -> int:
    ns = rt.broker.namespace
    return sum(int(rt.redis.hlen(messages_key(ns, q))) for q in tasks.QUEUES)


def test_jobs_send_end_to_end(jobs_settings, job_store, job_worker, sandbox) -> None:  # type: ignore[no-untyped-def]
    """A send becomes ``sent`` with idMensaje, Res and credits; its reference is the job id."""
    job_id = tasks.enqueue_send(_send(), settings=jobs_settings)
    record = wait_status(job_store, job_id, "sent", "failed", "dead", "uncertain")
    assert record.status is JobStatus.SENT and record.attempts == 1
    assert record.idmensaje is not None and record.idmensaje > 0 and record.res == 2
    assert record.credits_used is not None and record.credits_used > 0
    sends = sandbox.requests("EnviarSMSCERTIFICADO")
    assert len(sends) == 1 and sends[0]["params"]["Referenciausuario"] == job_id
    assert job_store.find_by_message_id(record.idmensaje) == job_id
    assert job_store.find_by_reference(job_id) == job_id


def test_jobs_scheduled_send_cancel_and_reschedule(
    jobs_settings, job_store, job_worker, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """A scheduled send is ``scheduled``; reschedule succeeds; cancel makes it ``cancelled``."""
    send_id = tasks.enqueue_send(_send(Fecha=_future(2)), settings=jobs_settings)
    send = wait_status(job_store, send_id, "scheduled", "failed", "dead")
    assert send.status is JobStatus.SCHEDULED
    resched = tasks.enqueue_reschedule(
        {"Idmensaje": send.idmensaje, "Fecha": _future(3)}, settings=jobs_settings
    )
    moved = wait_status(job_store, resched, "succeeded", "failed", "dead")
    assert moved.status is JobStatus.SUCCEEDED
    cancel = tasks.enqueue_cancel({"Idmensaje": send.idmensaje}, settings=jobs_settings)
    cancelled = wait_status(job_store, cancel, "succeeded", "failed", "dead")
    assert cancelled.status is JobStatus.SUCCEEDED
    reason = wait_status(job_store, send_id, "cancelled").reason
    assert reason is not None and reason.startswith("cancelled by job")


def test_jobs_report_and_certificate(jobs_settings, job_store, job_worker, sandbox) -> None:  # type: ignore[no-untyped-def]
    """A report records each recipient's Resultado; a certificate lands in the evidence store."""
    send_id = tasks.enqueue_send(_send(), settings=jobs_settings)
    send = wait_status(job_store, send_id, "sent")
    sandbox.tick(10)
    report = tasks.enqueue_report({"Idmensaje": send.idmensaje}, settings=jobs_settings)
    reported = wait_status(job_store, report, "succeeded", "failed", "dead")
    assert reported.status is JobStatus.SUCCEEDED
    both = {"34600000001", "34600000002"}
    # the report job succeeds, then applies each recipient: wait for both, not the first
    recipients = wait_for(
        lambda: (
            set(record_of(job_store, send_id).recipients) == both
            and record_of(job_store, send_id).recipients
        )
    )
    assert set(recipients) == both
    cert = tasks.enqueue_certificate(
        {"Idmensaje": send.idmensaje, "Telefono": "34600000001"}, settings=jobs_settings
    )
    record = wait_status(job_store, cert, "succeeded", "failed", "dead")
    assert record.status is JobStatus.SUCCEEDED, record
    stored = record.result["stored"]
    assert stored["sha256"] == sandbox.certificate_sha256(send.idmensaje, "34600000001")


def test_jobs_file_library_and_credits(jobs_settings, job_store, job_worker, sandbox) -> None:  # type: ignore[no-untyped-def]
    """Upload, list, delete and credits jobs all succeed with their results recorded."""
    content = base64.b64encode(PDF).decode()
    up = tasks.enqueue_upload({"Nombre": "doc.pdf", "Contenido": content}, settings=jobs_settings)
    assert wait_status(job_store, up, "succeeded", "failed", "dead").status is JobStatus.SUCCEEDED
    listed = tasks.enqueue_list_files(settings=jobs_settings)
    files = wait_status(job_store, listed, "succeeded", "failed", "dead").result["files"]
    assert any(f["name"].startswith("doc") for f in files)
    gone = tasks.enqueue_delete_file({"Nombre": "doc.pdf"}, settings=jobs_settings)
    assert wait_status(job_store, gone, "succeeded", "failed", "dead").status is JobStatus.SUCCEEDED
    credits = tasks.enqueue_credits(settings=jobs_settings)
    assert wait_status(job_store, credits, "succeeded").result["credits"] > 0


def test_jobs_invalid_input_queues_and_sends_nothing(
    jobs_runtime, jobs_settings, job_store, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """Invalid input raises with every problem named; no record, no message, no request."""
    with pytest.raises(InvalidRequest) as info:
        tasks.enqueue_send(
            _send(Remitente="X" * 30, Destinatarios=[{"Movil": "12"}]), settings=jobs_settings
        )
    fields = {p.provider_name for p in info.value.problems}
    assert {"Remitente"} <= fields and len(info.value.problems) >= 2
    with pytest.raises(InvalidRequest):
        tasks.enqueue("fax", {}, settings=jobs_settings)
    assert job_store.list_jobs() == [] and _queued(jobs_runtime) == 0
    assert sandbox.requests() == []


def test_jobs_same_key_sequential_sends_once(jobs_settings, job_store, job_worker, sandbox) -> None:  # type: ignore[no-untyped-def]
    """Twice with one key: the first job's id, one post; another payload is refused."""
    first = tasks.enqueue_send(_send(), idempotency_key="order-1", settings=jobs_settings)
    second = tasks.enqueue_send(_send(), idempotency_key="order-1", settings=jobs_settings)
    assert first == second
    wait_status(job_store, first, "sent")
    with pytest.raises(IdempotencyConflict):
        tasks.enqueue_send(
            _send(Remitente="OTHER"), idempotency_key="order-1", settings=jobs_settings
        )
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1


def test_jobs_same_key_twenty_concurrent_producers_send_once(
    jobs_settings, job_store, job_worker, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """Twenty producers racing with one key create one job and one provider send."""
    barrier = threading.Barrier(20)
    ids: list[str] = []

    def produce() -> None:
        barrier.wait()
        ids.append(tasks.enqueue_send(_send(), idempotency_key="race", settings=jobs_settings))

    threads = [threading.Thread(target=produce) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 20 and len(set(ids)) == 1
    wait_status(job_store, ids[0], "sent")
    assert len(job_store.list_jobs()) == 1
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1


def test_jobs_provider_rejection_fails_after_one_request(
    jobs_runtime, jobs_settings, job_store, job_worker, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """A -3 answer makes the job ``failed`` with the provider's text after exactly one request."""
    job_id = tasks.enqueue_send(_send(Idmensaje=987654), settings=jobs_settings)
    record = wait_status(job_store, job_id, "failed", "dead", "sent")
    assert record.status is JobStatus.FAILED and record.res == -3
    assert record.error is not None and "Idmensaje" in record.error["provider_text"]
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1

    def dead_letter_jobs() -> list[str]:
        letters = DeadLetters(jobs_runtime.broker, jobs_runtime.settings).list()
        return [d.summary()["job_id"] for d in letters]

    # the record says failed first; dramatiq moves the message to the dead letters after
    assert wait_for(dead_letter_jobs) == [job_id]
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1


def test_jobs_503s_then_success_is_sent(jobs_settings, job_store, job_worker, sandbox) -> None:  # type: ignore[no-untyped-def]
    """Two 503 answers are retried with backoff; the third attempt sends."""
    sandbox.configure(error_5xx_rate=1.0, error_5xx_status=503)
    job_id = tasks.enqueue_send(_send(), settings=jobs_settings)
    wait_for(lambda: len(sandbox.requests("EnviarSMSCERTIFICADO")) >= 2)
    sandbox.configure(error_5xx_rate=0.0)
    record = wait_status(job_store, job_id, "sent", "failed", "dead", "uncertain")
    assert record.status is JobStatus.SENT
    statuses = [r["http_status"] for r in sandbox.requests("EnviarSMSCERTIFICADO")]
    assert statuses.count(200) == 1 and statuses[-1] == 200 and len(statuses) == record.attempts


@pytest.mark.parametrize(
    "fault",
    [{"error_5xx_rate": 1.0, "error_5xx_status": 502}, {"html_rate": 1.0, "html_status": 504}],
    ids=["502", "504-html"],
)
def test_jobs_gateway_error_on_send_is_uncertain_and_not_resent(
    jobs_settings, job_store, job_worker, sandbox, fault
) -> None:  # type: ignore[no-untyped-def]
    """A 502 or an HTML 504 page may hide a processed send: ``uncertain``, exactly one request."""
    sandbox.configure(**fault)
    job_id = tasks.enqueue_send(_send(), settings=jobs_settings)
    record = wait_status(job_store, job_id, "uncertain", "sent", "failed", "dead")
    assert record.status is JobStatus.UNCERTAIN
    assert record.error is not None and record.error["class"] == "ProviderUnavailable"
    sandbox.configure(error_5xx_rate=0.0, html_rate=0.0)
    job_worker.join()
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1
    assert record_of(job_store, job_id).status is JobStatus.UNCERTAIN


def test_jobs_accept_then_timeout_is_uncertain_and_not_resent(
    jobs_settings, job_store, job_worker, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """The provider accepts but the answer is lost: ``uncertain``, one send in the log, no retry."""
    sandbox.configure(accept_then_timeout_rate=1.0, timeout_hold_s=4.0)
    job_id = tasks.enqueue_send(_send(), settings=jobs_settings)
    record = wait_status(job_store, job_id, "uncertain", "sent", "failed", "dead")
    assert record.status is JobStatus.UNCERTAIN
    assert record.error is not None and record.error["class"] == "TransportError"
    sandbox.configure(accept_then_timeout_rate=0.0)
    job_worker.join()
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1
    assert record_of(job_store, job_id).status is JobStatus.UNCERTAIN


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"v": 2, "job_id": "raw1", "kind": "send", "payload": {}}, "unknown contract version"),
        ({"v": 1, "job_id": "raw2", "kind": "send"}, "missing kwargs payload"),
        ({"v": 1, "job_id": "raw3", "kind": "report", "payload": {}}, "does not match actor"),
        ({"v": 1, "job_id": "raw4", "kind": "send", "payload": [], "x": 1}, "unknown kwargs x"),
    ],
)
def test_jobs_malformed_messages_are_dead_lettered(
    jobs_runtime, job_worker, sandbox, kwargs, reason
) -> None:  # type: ignore[no-untyped-def]
    """A message breaking the contract goes to the dead letters with its reason, never retried."""
    message = Message(
        queue_name="certsms.send", actor_name="certsms.send", args=(), kwargs=kwargs, options={}
    )
    jobs_runtime.broker.enqueue(message)
    letters = DeadLetters(jobs_runtime.broker, jobs_runtime.settings)
    found = wait_for(lambda: letters.list())
    assert len(found) == 1
    recorded = found[0].summary()["reason"]
    assert recorded.startswith("malformed message: ") and reason in recorded
    assert ((found[0].message or {}).get("options") or {}).get("retries", 0) == 0  # no retry
    assert sandbox.requests() == []


def test_jobs_raw_dramatiq_message_is_adopted(jobs_runtime, job_store, job_worker, sandbox) -> None:  # type: ignore[no-untyped-def]
    """A producer with only dramatiq pushes the documented message; the worker runs it."""
    kwargs = {"v": 1, "job_id": "ext-1", "kind": "send", "payload": _send()}
    jobs_runtime.broker.enqueue(
        Message(
            queue_name="certsms.send", actor_name="certsms.send", args=(), kwargs=kwargs, options={}
        )
    )
    record = wait_status(job_store, "ext-1", "sent", "failed", "dead")
    assert record.status is JobStatus.SENT and record.reference == "ext-1"


@pytest.mark.parametrize("alias", ["reference", "referenciausuario", "Referencia", "REFERENCE"])
def test_jobs_send_with_empty_reference_is_sent(
    jobs_settings, job_store, job_worker, sandbox, alias
) -> None:  # type: ignore[no-untyped-def]
    """An empty reference under any alias is dropped; the job id becomes the reference."""
    job_id = tasks.enqueue_send(_send(**{alias: ""}), settings=jobs_settings)
    record = wait_status(job_store, job_id, "sent", "failed", "dead", "uncertain")
    assert record.status is JobStatus.SENT and record.reference == job_id
    (sent,) = sandbox.requests("EnviarSMSCERTIFICADO")
    assert sent["params"]["Referenciausuario"] == job_id


@pytest.mark.parametrize(
    ("extra", "reference"),
    [({"Referencia": ""}, "ext-empty"), ({"Referencia": "mine-1"}, "mine-1")],
)
def test_jobs_raw_message_with_referencia_alias_is_adopted(
    jobs_runtime, job_store, job_worker, sandbox, extra, reference
) -> None:  # type: ignore[no-untyped-def]
    """An adopted raw send keeps its ``Referencia``, or gets the job id when it is empty."""
    kwargs = {"v": 1, "job_id": "ext-empty", "kind": "send", "payload": _send(**extra)}
    jobs_runtime.broker.enqueue(
        Message(
            queue_name="certsms.send", actor_name="certsms.send", args=(), kwargs=kwargs, options={}
        )
    )
    record = wait_status(job_store, "ext-empty", "sent", "failed", "dead")
    assert record.status is JobStatus.SENT and record.reference == reference
    (sent,) = sandbox.requests("EnviarSMSCERTIFICADO")
    assert sent["params"]["Referenciausuario"] == reference


def test_jobs_idempotency_key_of_a_missing_job_is_taken_over(
    jobs_runtime, jobs_settings, job_store
) -> None:  # type: ignore[no-untyped-def]
    """A key left pointing at a job that was never recorded yields a new, queued job."""
    planted = json.dumps({"job_id": "never-recorded", "payload_hash": "x", "kind": "send"})
    jobs_runtime.redis.set(jobs_settings.key("idem", "order-1"), planted, ex=3600)
    job_id = tasks.enqueue_send(_send(), idempotency_key="order-1", settings=jobs_settings)
    assert job_id != "never-recorded"
    assert record_of(job_store, job_id).status is JobStatus.QUEUED
    assert _queued(jobs_runtime) == 1
    again = tasks.enqueue_send(_send(), idempotency_key="order-1", settings=jobs_settings)
    assert again == job_id and _queued(jobs_runtime) == 1  # a live job's key still holds
