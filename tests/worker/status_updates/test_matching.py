"""Callbacks match exactly: by idMensaje, by a reference that names one send, for a phone
the send was addressed to; what cannot be placed yet is kept and applied later."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest
import redis
from dramatiq.message import Message

from certsms.config.settings import Settings
from certsms.mensatek.errors import InvalidRequest
from certsms.worker.jobs.producer import Producer
from certsms.worker.jobs.store import JobStatus, JobStore
from certsms.worker.status_updates import KeptCallbacks, process_callback_fields, replay_kept
from certsms.worker.sweepers import Sweepers
from tests.fixtures.maintenance import SEND_PAYLOAD

A, B = "34600000001", "34600000002"
STRAY = "34699999999"
MSG = 20250001


class Sink:
    """Collects queued dramatiq messages (the broker side of the producer)."""

    def __init__(self) -> None:
        self.messages: list[Message[Any]] = []

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        self.messages.append(message)
        return message


class Recorder:
    """Records follow-up enqueues (certificate downloads); returns fake job ids."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def __call__(self, kind: str, payload: Mapping[str, Any], key: str | None) -> str:
        self.calls.append((kind, dict(payload), key))
        return f"{kind}-{len(self.calls)}"


@pytest.fixture
def store(redis_client: redis.Redis, settings: Settings) -> JobStore:
    """A job store on the test Redis."""
    return JobStore(redis_client, settings)


@pytest.fixture
def producer(redis_client: redis.Redis, settings: Settings, store: JobStore) -> Producer:
    """A producer whose messages go to a list (nothing runs them)."""
    return Producer(redis_client, settings, broker=Sink(), store=store)


def send(producer: Producer, reference: str, **extra: Any) -> str:
    """Enqueue a two-recipient send with ``reference``."""
    return producer.enqueue("send", {**SEND_PAYLOAD, "Referenciausuario": reference}, **extra)


def to_in_flight(store: JobStore, job_id: str) -> None:
    """What a worker does before its POST (then it is SIGKILLed: no answer recorded)."""
    store.transition(job_id, JobStatus.RUNNING)
    store.transition(job_id, JobStatus.IN_FLIGHT)


def status_body(phone: str, code: int, *, reference: str | None, msg: int = MSG) -> dict[str, str]:
    """A ``SMSCERTIFICADO`` callback body as the provider posts it."""
    body = {
        "Servicio": "SMSCERTIFICADO",
        "Resultado": str(code),
        "Movil": phone,
        "Fecha": "2025-03-01 10:05:00",
        "idMensaje": str(msg),
    }
    return {**body, "Referencia": reference} if reference else body


def test_reused_reference_is_refused_at_enqueue(producer: Producer, store: JobStore) -> None:
    """The probe: a second send with reference order-42 is refused naming Referenciausuario,
    so the first (uncertain) send's callbacks reconcile the first job, not another."""
    first = send(producer, "order-42")
    to_in_flight(store, first)
    store.transition(first, JobStatus.UNCERTAIN, reason="read timeout")
    with pytest.raises(InvalidRequest) as refused:
        send(producer, "order-42")
    problem = refused.value.problems[0]
    assert problem.provider_name == "Referenciausuario" and first in problem.message
    recorder = Recorder()
    outcome = process_callback_fields(
        store, status_body(A, 14, reference="order-42"), enqueue=recorder
    )
    assert outcome.job_id == first and outcome.reconciled
    record = store.get(first)
    assert record is not None and record.idmensaje == MSG
    assert record.recipients[A].status_class == "certified"
    assert [call[0] for call in recorder.calls] == ["certificate"]


def test_reference_is_free_again_when_its_send_never_reached_the_provider(
    producer: Producer, store: JobStore
) -> None:
    """A send refused by the provider (failed, no idMensaje) gives its reference back."""
    first = send(producer, "order-43")
    store.transition(first, JobStatus.FAILED, reason="Res -3")
    second = send(producer, "order-43")
    assert second != first and store.find_by_reference("order-43") == second


def test_same_idempotency_key_returns_the_reference_holder(producer: Producer) -> None:
    """The same request again with its Idempotency-Key is the same job, not a refusal."""
    first = send(producer, "order-44", idempotency_key="k-44")
    assert send(producer, "order-44", idempotency_key="k-44") == first


def test_callbacks_during_in_flight_reconcile_the_send_when_it_turns_uncertain(
    producer: Producer, store: JobStore, redis_client: redis.Redis, settings: Settings
) -> None:
    """A worker killed mid-send: the callbacks answered while the job was in_flight are
    kept, and the sweeper that turns it uncertain applies them (→ sent, then certified)."""
    job = send(producer, "order-50")
    to_in_flight(store, job)
    recorder = Recorder()
    for phone in (A, B):
        outcome = process_callback_fields(
            store, status_body(phone, 14, reference="order-50"), enqueue=recorder
        )
        assert outcome.kept == "send_outcome_pending"
    record = store.get(job)
    assert record is not None and record.status is JobStatus.IN_FLIGHT and not record.recipients
    assert KeptCallbacks(redis_client, settings).count() == 2
    later = time.time() + settings.in_flight_timeout_s + 60
    sweepers = Sweepers(redis_client, settings, clock=lambda: later, enqueue=recorder)
    assert sweepers.in_flight(now=later) == [job]
    record = store.get(job)
    assert record is not None
    assert record.status is JobStatus.CERTIFIED and record.idmensaje == MSG
    assert sorted(record.recipients) == [A, B]
    assert sorted(call[1]["Telefono"] for call in recorder.calls) == [A, B]
    assert KeptCallbacks(redis_client, settings).count() == 0


def test_callback_before_the_send_answer_is_applied_when_the_send_records_it(
    producer: Producer, store: JobStore
) -> None:
    """A callback for an idMensaje no job has yet is kept, and applied once the job is sent."""
    job = send(producer, "order-51")
    to_in_flight(store, job)
    recorder = Recorder()
    outcome = process_callback_fields(store, status_body(A, 11, reference=None), enqueue=recorder)
    assert outcome.kept == "unknown_idmensaje"
    store.transition(job, JobStatus.SENT, idmensaje=MSG)
    assert replay_kept(store, job, enqueue=recorder) == 1
    record = store.get(job)
    assert record is not None and record.recipients[A].status_class == "delivered"


def test_status_for_a_stray_phone_changes_nothing(producer: Producer, store: JobStore) -> None:
    """A certified status for a phone the send was not addressed to is an anomaly: no
    recipient, no status change, no certificate download; the events say so."""
    job = send(producer, "order-52")
    to_in_flight(store, job)
    store.transition(job, JobStatus.SENT, idmensaje=MSG)
    recorder = Recorder()
    outcome = process_callback_fields(
        store, status_body(STRAY, 14, reference="order-52"), enqueue=recorder
    )
    assert outcome.anomaly == "not_a_recipient"
    record = store.get(job)
    assert record is not None and record.status is JobStatus.SENT and not record.recipients
    assert recorder.calls == []
    events = [e["event"] for e in store.events(count=5)]
    assert events[-2:] == ["recipient_status_anomaly", "certificate_anomaly"]


def test_reference_of_a_send_with_another_idmensaje_does_not_match(store: JobStore) -> None:
    """Matching by reference refuses a job that already has a different idMensaje."""
    store.create("legacy", kind="send", payload=SEND_PAYLOAD, reference="old-ref")
    for step in (JobStatus.RUNNING, JobStatus.IN_FLIGHT):
        store.transition("legacy", step)
    store.transition("legacy", JobStatus.SENT, idmensaje=MSG)
    body = status_body(A, 14, reference="old-ref", msg=MSG + 1)
    outcome = process_callback_fields(store, body, enqueue=Recorder())
    assert outcome.kept == "reference_of_another_message"
    record = store.get("legacy")
    assert record is not None and not record.recipients
