"""Cancel and reschedule by job id: locally while we hold the send, at the provider after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest
import redis

from certsms.config.settings import Settings
from certsms.mensatek.dates import to_provider_datetime
from certsms.mensatek.errors import InvalidRequest
from certsms.worker.dramatiq_keys import broker_namespace, messages_key
from certsms.worker.jobs.store import JobStatus, JobStore
from tests.fixtures.jobs import last_json, record_of, wait_for, wait_status
from tests.fixtures.maintenance import SEND_PAYLOAD
from tests.fixtures.sandbox import SandboxHandle

SEND = "EnviarSMSCERTIFICADO"
CANCEL = "CancelarSMSCERTIFICADO"
RESCHEDULE = "ReprogramarSMSCERTIFICADO"


def _at(minutes: int) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(second=0, microsecond=0)


def _worker(runtime: Any) -> dramatiq.Worker:
    worker = dramatiq.Worker(runtime.broker, worker_threads=4, worker_timeout=50)
    worker.start()
    return worker


def test_cancel_local_queued_send_makes_no_provider_request(
    maintenance_runtime: Any,
    maintenance_settings: Settings,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
) -> None:
    """A queued send cancelled by job id is `cancelled` at once; its message then posts nothing."""
    from certsms.tasks import enqueue_cancel, enqueue_send

    store = JobStore(redis_client, maintenance_settings)
    send = enqueue_send(SEND_PAYLOAD)
    cancel = enqueue_cancel({"job_id": send})
    record = record_of(store, cancel)
    assert record.status is JobStatus.SUCCEEDED and record.result["local"] is True
    assert record_of(store, send).status is JobStatus.CANCELLED
    worker = _worker(maintenance_runtime)
    try:
        wait_for(
            lambda: (
                not redis_client.hlen(
                    messages_key(broker_namespace(maintenance_settings), "certsms.send")
                )
            )
        )
    finally:
        worker.stop(timeout=10_000)
    assert store.status(send) == JobStatus.CANCELLED
    assert sandbox.requests(SEND) == [] and sandbox.requests(CANCEL) == []


def test_cancel_local_reschedule_queued_send_posts_the_new_fecha(
    maintenance_runtime: Any,
    maintenance_settings: Settings,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
) -> None:
    """A queued send moved by job id goes out once, with the new Fecha, and no reschedule call."""
    from certsms.tasks import enqueue_reschedule, enqueue_send

    store = JobStore(redis_client, maintenance_settings)
    send = enqueue_send({**SEND_PAYLOAD, "Fecha": _at(120).isoformat()})
    new_time = _at(180)
    job = enqueue_reschedule({"job_id": send, "Fecha": new_time.isoformat()})
    assert record_of(store, job).result["local"] is True
    worker = _worker(maintenance_runtime)
    try:
        wait_status(store, send, "scheduled")
    finally:
        worker.stop(timeout=10_000)
    posts = sandbox.requests(SEND)
    assert len(posts) == 1 and posts[0]["params"]["Fecha"] == to_provider_datetime(new_time)
    assert sandbox.requests(RESCHEDULE) == []


def test_cancel_local_accepted_scheduled_send_is_one_provider_request(
    maintenance_worker: Any,
    maintenance_settings: Settings,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
) -> None:
    """A send already scheduled at the provider: reschedule and cancel make one request each."""
    from certsms.tasks import enqueue_cancel, enqueue_reschedule, enqueue_send

    store = JobStore(redis_client, maintenance_settings)
    send = enqueue_send({**SEND_PAYLOAD, "Fecha": _at(120).isoformat()})
    wait_status(store, send, "scheduled")
    new_time = _at(240)
    move = enqueue_reschedule({"job_id": send, "Fecha": new_time.isoformat()})
    wait_status(store, move, "succeeded")
    assert len(sandbox.requests(RESCHEDULE)) == 1
    assert record_of(store, send).scheduled_at == new_time.isoformat()
    cancel = enqueue_cancel({"job_id": send})
    wait_status(store, cancel, "succeeded")
    wait_status(store, send, "cancelled")
    assert len(sandbox.requests(CANCEL)) == 1
    assert len(sandbox.requests(SEND)) == 1


def test_cancel_local_racing_a_send_in_flight_cancels_at_the_provider_once(
    maintenance_worker: Any,
    maintenance_settings: Settings,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
) -> None:
    """Cancel while the send is in flight: it waits for the outcome, then one cancel request."""
    from certsms.tasks import enqueue_cancel, enqueue_send

    store = JobStore(redis_client, maintenance_settings)
    sandbox.configure(latency_ms=1500)
    send = enqueue_send({**SEND_PAYLOAD, "Fecha": _at(120).isoformat()})
    wait_status(store, send, "in_flight")
    cancel = enqueue_cancel({"job_id": send})
    # not settled locally (the body may have left): it waits for the send's outcome
    assert store.status(cancel) in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert sandbox.requests(CANCEL) == []
    sandbox.configure(latency_ms=0)
    wait_status(store, cancel, "succeeded")
    assert store.status(send) == JobStatus.CANCELLED
    assert len(sandbox.requests(SEND)) == 1 and len(sandbox.requests(CANCEL)) == 1


def test_cancel_local_racing_an_immediate_send_fails_with_the_reason(
    maintenance_worker: Any,
    maintenance_settings: Settings,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
) -> None:
    """Cancel racing an immediate send: once it is sent the cancel fails, with no request."""
    from certsms.tasks import enqueue_cancel, enqueue_send

    store = JobStore(redis_client, maintenance_settings)
    sandbox.configure(latency_ms=1500)
    send = enqueue_send(SEND_PAYLOAD)
    wait_status(store, send, "in_flight")
    cancel = enqueue_cancel({"job_id": send})
    sandbox.configure(latency_ms=0)
    record = wait_status(store, cancel, "failed")
    assert record.reason is not None and "is sent" in record.reason
    assert store.status(send) == JobStatus.SENT
    assert sandbox.requests(CANCEL) == []


def test_cancel_local_payload_is_validated_with_the_field_named(
    maintenance_runtime: Any, redis_client: redis.Redis
) -> None:
    """job_id and Idmensaje together, an unknown job, a missing Fecha: each names its field."""
    from certsms.tasks import enqueue_cancel, enqueue_reschedule, enqueue_send

    with pytest.raises(InvalidRequest) as both:
        enqueue_cancel({"job_id": "abc", "Idmensaje": 5})
    assert [p.provider_name for p in both.value.problems] == ["Idmensaje"]
    with pytest.raises(InvalidRequest) as missing:
        enqueue_cancel({"job_id": "no-such-job"})
    assert missing.value.problems[0].provider_name == "job_id"
    send = enqueue_send(SEND_PAYLOAD)
    with pytest.raises(InvalidRequest) as no_fecha:
        enqueue_reschedule({"job_id": send})
    assert no_fecha.value.problems[0].provider_name == "Fecha"


def test_cancel_local_held_scheduled_send_waits_in_certsms(
    maintenance_settings: Settings,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    cli_logging: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hold_scheduled: a far Fecha stays queued (held_until) with no request, cancels locally;
    a Fecha within hold_lead_s goes to the provider at once."""
    from certsms.tasks import enqueue_send
    from certsms.tasks.boot import setup
    from certsms.worker.cli import main

    settings = maintenance_settings.model_copy(update={"hold_scheduled": True, "hold_lead_s": 600})
    runtime = setup(settings)
    store = JobStore(redis_client, settings)
    worker = _worker(runtime)
    try:
        held = enqueue_send({**SEND_PAYLOAD, "Fecha": _at(120).isoformat()})
        near = enqueue_send({**SEND_PAYLOAD, "Fecha": _at(5).isoformat()})
        wait_status(store, near, "scheduled")
        wait_for(lambda: record_of(store, held).other.get("held_until"))
        assert store.status(held) == JobStatus.QUEUED
        for name, value in {
            "REDIS_URL": settings.redis_url,
            "CERTSMS_NAMESPACE": settings.namespace,
        }.items():
            monkeypatch.setenv(name, value)
        assert main(["cancel", held, "--json"]) == 0
        document = last_json(capsys.readouterr().out)
        assert document["status"] == "succeeded" and document["local"] is True
        assert store.status(held) == JobStatus.CANCELLED
    finally:
        worker.stop(timeout=10_000)
    assert len(sandbox.requests(SEND)) == 1 and sandbox.requests(CANCEL) == []


def _waiting_send(store: JobStore, job_id: str) -> None:
    store.create(job_id, kind="send", payload=dict(SEND_PAYLOAD))
    store.transition(job_id, JobStatus.RUNNING)
    store.transition(job_id, JobStatus.WAITING_CREDIT, credits_needed=2.0)


def test_held_sends_cancel_of_a_send_waiting_for_credit_is_local(
    redis_client: redis.Redis, settings: Settings
) -> None:
    """A send waiting for credit never reached the provider: cancelling it is local."""
    from certsms.worker.jobs.held_sends import JobTarget, try_local

    store = JobStore(redis_client, settings)
    _waiting_send(store, "short-1")
    requeued: list[str] = []
    done = try_local(
        store, JobTarget("cancel", "short-1"), control_job_id="c-1", requeue=requeued.append
    )
    assert done is not None and done.previous_status == "waiting_credit"
    assert record_of(store, "short-1").status is JobStatus.CANCELLED and requeued == []


def test_held_sends_reschedule_of_a_send_waiting_for_credit_is_local(
    redis_client: redis.Redis, settings: Settings
) -> None:
    """A send waiting for credit is moved to its new time without a provider request."""
    from certsms.worker.jobs.held_sends import JobTarget, try_local

    store = JobStore(redis_client, settings)
    _waiting_send(store, "short-2")
    when = _at(90)
    target = JobTarget("reschedule", "short-2", scheduled_at=when)
    done = try_local(store, target, control_job_id="r-1", requeue=lambda job_id: "m")
    assert done is not None and done.action == "rescheduled"
    record = record_of(store, "short-2")
    assert record.status is JobStatus.QUEUED and record.scheduled_at == when.isoformat()
