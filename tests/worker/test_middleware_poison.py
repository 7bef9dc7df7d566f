"""Poison and undecodable messages are dead-lettered; the worker keeps running."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import pytest

from certsms import tasks
from certsms.worker.deadletter import DeadLetters
from certsms.worker.dramatiq_keys import messages_key
from certsms.worker.errors import InvalidTransition
from certsms.worker.jobs.store import JobStatus
from certsms.worker.runtime import Runtime
from tests.fixtures.jobs import wait_for, wait_status
from tests.fixtures.sandbox import send_params

SEND_QUEUE = "certsms.send"


def _send() -> dict[str, Any]:
    return send_params(Mensaje="Su notificacion esta disponible")


@contextmanager
def _worker(rt: Runtime) -> Iterator[dramatiq.Worker]:
    """A real in-process worker started only now (after the test prepared the queue)."""
    worker = dramatiq.Worker(rt.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=10_000)


def _queued_rids(rt: Runtime) -> set[str]:
    raw = rt.redis.hkeys(messages_key(rt.broker.namespace, SEND_QUEUE))
    return {r.decode() for r in raw}


def _mark_delivered(rt: Runtime, rid: str, times: int) -> None:
    """Record ``times`` earlier deliveries of ``rid`` (what workers that died left behind)."""
    rt.redis.set(rt.settings.key("deliveries", rid), times)


def test_jobs_poison_message_is_dead_lettered(
    jobs_runtime, jobs_settings, job_store, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """A message redelivered more than ``max_redeliveries`` times is dead; one at the limit runs."""
    limit = jobs_settings.max_redeliveries
    poison = tasks.enqueue_send(_send(), settings=jobs_settings)
    (poison_rid,) = _queued_rids(jobs_runtime)
    at_limit = tasks.enqueue_send(_send(), settings=jobs_settings)
    (limit_rid,) = _queued_rids(jobs_runtime) - {poison_rid}
    _mark_delivered(jobs_runtime, poison_rid, limit + 1)  # this delivery is redelivery limit + 1
    _mark_delivered(jobs_runtime, limit_rid, limit)  # this delivery is redelivery ``limit``
    with _worker(jobs_runtime):
        record = wait_status(job_store, poison, "dead", "sent", "failed")
        assert wait_status(job_store, at_limit, "sent", "dead", "failed").status is JobStatus.SENT
    assert record.status is JobStatus.DEAD
    assert record.reason == f"poison: redelivered {limit + 1} times without finishing"
    letters = DeadLetters(jobs_runtime.broker, jobs_runtime.settings).list()
    assert [(d.id, d.summary()["job_id"]) for d in letters] == [(poison_rid, poison)]
    assert letters[0].summary()["reason"].startswith("poison")
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1  # only the job at the limit


def test_jobs_undecodable_message_is_dead_lettered_and_worker_continues(
    jobs_runtime, jobs_settings, job_store, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """Raw bytes that are not a message are dead-lettered; the next good message still runs."""
    bad_rid = "raw-undecodable-1"
    jobs_runtime.broker.do_enqueue(SEND_QUEUE, bad_rid, b"\x00not a dramatiq message{")
    good = tasks.enqueue_send(_send(), settings=jobs_settings)
    letters = DeadLetters(jobs_runtime.broker, jobs_runtime.settings)
    with _worker(jobs_runtime) as worker:
        found = wait_for(lambda: letters.list())
        record = wait_status(job_store, good, "sent", "failed", "dead")
        assert all(thread.is_alive() for thread in worker.consumers.values())
    assert [d.id for d in found] == [bad_rid]
    assert found[0].summary()["reason"].startswith("undecodable message")
    assert record.status is JobStatus.SENT
    assert record.idmensaje is not None and record.idmensaje > 0
    assert bad_rid not in _queued_rids(jobs_runtime)


def test_jobs_poison_in_flight_send_is_uncertain_and_not_retried(
    jobs_runtime, jobs_settings, job_store, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """A poisoned send that was in flight becomes uncertain; ``dead retry`` refuses to resend it."""
    limit = jobs_settings.max_redeliveries
    job_id = tasks.enqueue_send(_send(), settings=jobs_settings)
    (rid,) = _queued_rids(jobs_runtime)
    # a worker claimed it and died mid-send, again and again
    assert job_store.transition(job_id, JobStatus.IN_FLIGHT, incr_attempts=1)
    _mark_delivered(jobs_runtime, rid, limit + 1)
    letters = DeadLetters(jobs_runtime.broker, jobs_runtime.settings)
    with _worker(jobs_runtime):
        found = wait_for(lambda: letters.list())
        record = wait_status(job_store, job_id, "uncertain", "dead")
    assert record.status is JobStatus.UNCERTAIN and record.reason is not None
    assert record.reason.startswith("poison") and "in_flight" in record.reason
    with pytest.raises(InvalidTransition, match="certsms resolve"):
        letters.retry(found[0].id)
    assert job_store.status(job_id) == JobStatus.UNCERTAIN
    assert _queued_rids(jobs_runtime) == set()
    assert sandbox.requests("EnviarSMSCERTIFICADO") == []


def test_jobs_dead_retry_refuses_a_send_that_reached_the_provider(
    jobs_runtime, jobs_settings, job_store, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """A dead send with attempts and an idMensaje is not retried; a never-posted one is."""
    limit = jobs_settings.max_redeliveries
    posted = tasks.enqueue_send(_send(), settings=jobs_settings)
    (posted_rid,) = _queued_rids(jobs_runtime)
    fresh = tasks.enqueue_send(_send(), settings=jobs_settings)
    (fresh_rid,) = _queued_rids(jobs_runtime) - {posted_rid}
    for rid in (posted_rid, fresh_rid):
        _mark_delivered(jobs_runtime, rid, limit + 1)
    letters = DeadLetters(jobs_runtime.broker, jobs_runtime.settings)
    with _worker(jobs_runtime):
        wait_for(lambda: len(letters.list()) == 2)
        wait_status(job_store, posted, "dead")
        wait_status(job_store, fresh, "dead")
    job_store.transition(posted, JobStatus.DEAD, force=True, incr_attempts=1, idmensaje=991)
    with pytest.raises(InvalidTransition):
        letters.retry(posted_rid)
    assert job_store.status(posted) == JobStatus.DEAD
    assert letters.retry(fresh_rid)["retried"] is True
    assert job_store.status(fresh) == JobStatus.QUEUED
