"""The transition script's answers: refusals, ``previous``, ``want``, indexes, fields.

``tasks/send.py``, ``worker/deadletter.py`` and ``worker/commands/control.py`` rely on
``ok``, ``previous`` and ``wanted``; these tests check every part of the answer and of
what a refused transition leaves untouched (mutation testing found them unchecked).
"""

from __future__ import annotations

import pytest
import redis

from certsms.config.settings import Settings
from certsms.worker.jobs.store import JobStatus, JobStore


@pytest.fixture
def store(redis_client: redis.Redis, settings: Settings) -> JobStore:
    """A job store on the test Redis."""
    return JobStore(redis_client, settings)


def _events(store: JobStore, job_id: str) -> list[dict[str, str]]:
    return [e for e in store.events(count=500) if e.get("job_id") == job_id]


def _job(store: JobStore, job_id: str = "job-1", *, kind: str = "send", **kw: object) -> str:
    store.create(job_id, kind=kind, payload={"Mensaje": "x"}, **kw)  # type: ignore[arg-type]
    return job_id


@pytest.mark.parametrize(
    ("setup", "kwargs", "reason"),
    [
        ([], {"to": JobStatus.QUEUED}, "backwards"),
        ([JobStatus.RUNNING], {"to": JobStatus.QUEUED}, "backwards"),
        ([JobStatus.RUNNING], {"to": JobStatus.RUNNING}, "backwards"),
        ([], {"to": JobStatus.SENT, "expect": [JobStatus.RUNNING]}, "unexpected"),
        ([], {"to": JobStatus.RUNNING, "guard": ("worker", "w1")}, "guard"),
    ],
)
def test_transition_refusal_changes_nothing_and_says_why(
    store: JobStore, setup: list[JobStatus], kwargs: dict[str, object], reason: str
) -> None:
    """A refused transition is falsy (ok False) with the current status as ``previous``
    and its reason; status, fields, indexes and events stay as they were."""
    job_id = _job(store)
    for step in setup:
        assert store.transition(job_id, step)
    before = store.get(job_id)
    events_before = len(_events(store, job_id))
    to = kwargs.pop("to")
    result = store.transition(job_id, to, note="should not be written", **kwargs)  # type: ignore[arg-type]
    assert not result and result.ok is False
    assert result.reason == reason and result.recipients == 0 and result.wanted is None
    assert result.previous == str(before.status if before else None)
    after = store.get(job_id)
    assert after is not None and before is not None
    assert after.status == before.status and after.updated_at == before.updated_at
    assert "note" not in after.other
    assert len(_events(store, job_id)) == events_before


def test_transition_missing_job_is_refused(store: JobStore) -> None:
    """A job with no record: falsy, reason ``missing``, no previous status."""
    result = store.transition("nojob", JobStatus.RUNNING)
    assert not result and result.reason == "missing" and result.previous is None


def test_transition_guard_lets_the_holder_through(store: JobStore) -> None:
    """With ``guard=(field, value)`` the move happens only when the field holds that value."""
    job_id = _job(store, fields={"worker": "w1"})
    assert not store.transition(job_id, JobStatus.RUNNING, guard=("worker", "w2"))
    result = store.transition(job_id, JobStatus.RUNNING, guard=("worker", "w1"))
    assert result and result.ok is True and result.reason == "ok"


def test_transition_answer_has_previous_recipients_and_wanted(store: JobStore) -> None:
    """A move answers the status it left, the recipient count and the ``want``ed field
    as it is after the move (incremented here)."""
    job_id = _job(store)
    store.update_recipient(
        job_id, "34600000001", result_code=10, status_class="delivered", at=None, source="callback"
    )
    result = store.transition(job_id, JobStatus.RUNNING, incr_attempts=1, want="attempts")
    assert result.previous == "queued" and result.reason == "ok"
    assert result.wanted == "1" and result.recipients == 1
    again = store.transition(
        job_id, JobStatus.RUNNING, expect=[JobStatus.RUNNING], incr_attempts=2, want="attempts"
    )
    assert again.previous == "running" and again.wanted == "3"
    assert store.transition(job_id, JobStatus.IN_FLIGHT).wanted is None


def test_transition_expect_allows_a_same_rank_move_and_force_a_backwards_one(
    store: JobStore,
) -> None:
    """``expect`` naming the current status allows a move that is not forward; ``force``
    allows a backwards one; each writes the new status and its event."""
    job_id = _job(store)
    assert store.transition(job_id, JobStatus.RUNNING)
    assert store.transition(job_id, JobStatus.QUEUED, expect=[JobStatus.SENT, JobStatus.RUNNING])
    assert store.status(job_id) == JobStatus.QUEUED
    assert store.transition(job_id, JobStatus.SENT, force=True)
    assert store.transition(job_id, JobStatus.QUEUED, force=True).previous == "sent"
    statuses = [e["status"] for e in _events(store, job_id) if e["event"] == "job_status_changed"]
    assert statuses == ["running", "queued", "sent", "queued"]


def test_transition_fields_are_set_incremented_and_deleted(store: JobStore) -> None:
    """Fields are written; ``incr_x`` adds to x; a None value deletes the field."""
    job_id = _job(store, fields={"note": "old", "count": 5})
    store.transition(job_id, JobStatus.RUNNING, note=None, incr_count=2, extra="yes")
    record = store.get(job_id)
    assert record is not None
    assert "note" not in record.other and record.other.get("extra") == "yes"
    assert record.other.get("count") in (7, "7")


def test_transition_moves_the_job_between_status_indexes(store: JobStore) -> None:
    """The job leaves the old status's index and enters the new one's at ``now``."""
    job_id = _job(store)
    store.transition(job_id, JobStatus.RUNNING, now=1_800_000_000.0)
    assert store.entered_status(JobStatus.QUEUED) == []
    assert store.entered_status(JobStatus.RUNNING) == [(job_id, 1_800_000_000.0)]


def test_transition_event_names_previous_status_and_extras(store: JobStore) -> None:
    """The event carries the job's kind, the new and previous status and the extras."""
    job_id = _job(store, kind="report")
    store.transition(job_id, JobStatus.RUNNING, reason="because", source="test", note="n")
    event = _events(store, job_id)[-1]
    assert "note" not in event  # a written field is not an event extra
    assert (event["status"], event["previous_status"], event["kind"]) == (
        "running",
        "queued",
        "report",
    )
    assert event["reason"] == "because" and event["source"] == "test"


def test_transition_only_a_send_takes_the_message_id_index(store: JobStore) -> None:
    """A send's idmensaje is indexed to it; a non-send job recording the same idmensaje
    (a report or cancel of that message) does not take the index over."""
    send = _job(store, "send-1")
    for step in (JobStatus.RUNNING, JobStatus.IN_FLIGHT):
        store.transition(send, step)
    store.transition(send, JobStatus.SENT, idmensaje=777)
    assert store.find_by_message_id(777) == send
    report = _job(store, "report-1", kind="report")
    store.transition(report, JobStatus.RUNNING, idmensaje=777)
    store.transition(report, JobStatus.SUCCEEDED, idmensaje=777)
    assert store.find_by_message_id(777) == send


def test_transition_refreshes_retention_of_record_and_recipients(
    store: JobStore, redis_client: redis.Redis, settings: Settings
) -> None:
    """The record and its recipients hash get the full retention again on every move."""
    job_id = _job(store)
    store.update_recipient(
        job_id, "34600000001", result_code=10, status_class="delivered", at=None, source="callback"
    )
    redis_client.expire(store.job_key(job_id), 100)
    redis_client.expire(store.recipients_key(job_id), 100)
    store.transition(job_id, JobStatus.RUNNING)
    ttl = settings.job_retention_s
    assert redis_client.ttl(store.job_key(job_id)) > ttl - 10
    assert redis_client.ttl(store.recipients_key(job_id)) > ttl - 10
