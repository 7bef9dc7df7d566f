"""JobStore and idempotency keys against a real Redis."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from certsms.worker.errors import IdempotencyConflict
from certsms.worker.jobs import IdempotencyKeys, JobStatus, JobStore
from certsms.worker.jobs.idempotency import CLAIM_GRACE_S


@pytest.fixture
def store(redis_client, settings) -> JobStore:  # type: ignore[no-untyped-def]
    """A store on the test Redis."""
    return JobStore(redis_client, settings)


def test_store_transitions_only_move_forward(store: JobStore) -> None:
    """A job moves forward through the ranks; a backward or repeated move changes nothing."""
    store.create("j1", kind="send", payload={"a": 1}, reference="r1")
    assert store.transition("j1", JobStatus.SENT, idmensaje=42)
    assert store.transition("j1", JobStatus.DELIVERED)
    refused = store.transition("j1", JobStatus.SENT)
    assert not refused and refused.reason == "backwards"
    assert not store.transition("j1", JobStatus.DELIVERED)
    record = store.get("j1")
    assert record is not None and record.status is JobStatus.DELIVERED
    assert store.find_by_message_id(42) == "j1"
    assert store.find_by_reference("r1") == "j1"


def test_store_expect_and_guard_protect_claims(store: JobStore) -> None:
    """An in_flight claim is taken once; only the token holder releases it."""
    store.create("j2", kind="send", payload={})
    assert store.transition(
        "j2", JobStatus.IN_FLIGHT, expect=[JobStatus.QUEUED], in_flight_token="t1", incr_attempts=1
    )
    assert not store.transition("j2", JobStatus.IN_FLIGHT, expect=[JobStatus.QUEUED])
    wrong = store.transition(
        "j2", JobStatus.QUEUED, expect=[JobStatus.IN_FLIGHT], guard=("in_flight_token", "other")
    )
    assert wrong.reason == "guard"
    assert store.transition(
        "j2",
        JobStatus.QUEUED,
        expect=[JobStatus.IN_FLIGHT],
        guard=("in_flight_token", "t1"),
        in_flight_token=None,
    )
    record = store.get("j2")
    assert record is not None and record.status is JobStatus.QUEUED and record.attempts == 1
    assert record.in_flight_token is None


def test_store_appends_one_event_per_state_change(store: JobStore) -> None:
    """Creation and every accepted transition append one stream entry; refused ones none."""
    store.create("j3", kind="report", payload={})
    store.transition("j3", JobStatus.RUNNING)
    store.transition("j3", JobStatus.QUEUED)  # refused
    store.transition("j3", JobStatus.SUCCEEDED, res=1)
    events = [e for e in store.events() if e["job_id"] == "j3"]
    assert [e["event"] for e in events] == [
        "job_created",
        "job_status_changed",
        "job_status_changed",
    ]
    assert events[-1]["status"] == "succeeded" and events[-1]["previous_status"] == "running"
    assert events[-1]["v"] == "1" and events[-1]["kind"] == "report"


def test_store_recipient_updates_are_forward_only(store: JobStore) -> None:
    """A later certified status wins; an older or lower-ranked update is ignored."""
    store.create("j4", kind="send", payload={})
    now = datetime.now(UTC)
    first = store.update_recipient(
        "j4", "34600000001", result_code=11, status_class="delivered", at=now, source="callback"
    )
    second = store.update_recipient(
        "j4",
        "34600000001",
        result_code=14,
        status_class="certified",
        at=now + timedelta(seconds=5),
        source="callback",
    )
    late = store.update_recipient(
        "j4",
        "34600000001",
        result_code=11,
        status_class="delivered",
        at=now + timedelta(seconds=9),
        source="report",
    )
    assert first.changed and second.changed and not late.changed
    record = store.get("j4")
    assert record is not None and record.recipients["34600000001"].result_code == 14


def test_store_lists_jobs_by_status_and_kind(store: JobStore) -> None:
    """``list_jobs`` filters by status and kind, newest first."""
    store.create("a", kind="send", payload={}, now=1000.0)
    store.create("b", kind="report", payload={}, now=2000.0)
    store.create("c", kind="send", payload={}, now=3000.0)
    store.transition("c", JobStatus.FAILED)
    assert [j.id for j in store.list_jobs(kind="send")] == ["c", "a"]
    assert [j.id for j in store.list_jobs(status=JobStatus.QUEUED)] == ["b", "a"]
    assert [j.id for j in store.list_jobs(kind="send", status=JobStatus.FAILED)] == ["c"]


def test_idempotency_same_payload_returns_first_job(redis_client, settings) -> None:  # type: ignore[no-untyped-def]
    """Same key and payload (keys in any case): the first job id; another payload: refused."""
    keys = IdempotencyKeys(redis_client, settings)
    first = keys.claim("k", job_id="j1", kind="send", payload={"Remitente": "ACME"})
    again = keys.claim("k", job_id="j2", kind="send", payload={"remitente": "ACME"})
    assert first.created and not again.created and again.job_id == "j1"
    with pytest.raises(IdempotencyConflict) as info:
        keys.claim("k", job_id="j3", kind="send", payload={"Remitente": "OTHER"})
    assert info.value.job_id == "j1"


def test_idempotency_twenty_concurrent_claims_make_one_job(redis_client, settings) -> None:  # type: ignore[no-untyped-def]
    """Twenty threads claiming one key at once: exactly one creates, all get its id."""
    keys = IdempotencyKeys(redis_client, settings)
    barrier = threading.Barrier(20)
    results: list[tuple[str, bool]] = []

    def claim(n: int) -> None:
        barrier.wait()
        c = keys.claim("race", job_id=f"job{n}", kind="credits", payload={})
        results.append((c.job_id, c.created))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in results) == 1
    assert len({job for job, _ in results}) == 1


def test_store_transition_trims_status_index_past_retention(store: JobStore, settings) -> None:  # type: ignore[no-untyped-def]
    """An index entry older than the retention is trimmed by the next move into that status."""
    retention = settings.job_retention_s
    now = datetime.now(UTC).timestamp()
    failed_index = settings.key("jobs", "status", "failed")
    store.redis.zadd(failed_index, {"long-gone": now - retention - 10, "recent": now - 5})
    store.create("t1", kind="report", payload={}, now=now)
    assert store.transition("t1", JobStatus.FAILED, now=now)
    members = {m.decode() for m in store.redis.zrange(failed_index, 0, -1)}
    assert members == {"recent", "t1"}


def test_store_transition_refreshes_reference_and_message_indexes(
    store: JobStore, settings
) -> None:  # type: ignore[no-untyped-def]
    """A transition gives the job's by_reference and by_message keys its retention again."""
    retention = settings.job_retention_s
    store.create("t2", kind="send", payload={}, reference="ref-t2")
    assert store.transition("t2", JobStatus.SENT, idmensaje=777)
    by_reference = settings.key("jobs", "by_reference", "ref-t2")
    by_message = settings.key("jobs", "by_message", "777")
    store.redis.expire(by_reference, 5)
    store.redis.expire(by_message, 5)
    store.redis.set(settings.key("jobs", "by_reference", "other"), "someone-else", ex=5)
    assert store.transition("t2", JobStatus.DELIVERED)
    assert store.redis.ttl(by_reference) > retention - 60
    assert store.redis.ttl(by_message) > retention - 60
    assert store.find_by_reference("ref-t2") == "t2" and store.find_by_message_id(777) == "t2"


def test_store_transition_leaves_a_reused_reference_alone(store: JobStore, settings) -> None:  # type: ignore[no-untyped-def]
    """A reference index that now names another job keeps its own TTL."""
    store.create("t3", kind="send", payload={}, reference="shared")
    store.redis.set(settings.key("jobs", "by_reference", "shared"), "t4", ex=5)
    assert store.transition("t3", JobStatus.RUNNING)
    assert 0 < store.redis.ttl(settings.key("jobs", "by_reference", "shared")) <= 5


def test_idempotency_takes_over_a_key_whose_job_never_came(redis_client, settings) -> None:  # type: ignore[no-untyped-def]
    """A key whose job is missing (past the grace) or rejected is taken over; a live one is not."""
    store = JobStore(redis_client, settings)
    keys = IdempotencyKeys(redis_client, settings)
    now = datetime.now(UTC).timestamp()
    old = now - CLAIM_GRACE_S - 1
    assert keys.claim("gone", job_id="dead1", kind="credits", payload={}, now=old).created
    taken = keys.claim(
        "gone", job_id="new1", kind="credits", payload={"x": 1}, job_status=store.status, now=now
    )
    assert taken.created and keys.lookup("gone") == "new1"
    # young claim, record not written yet: still honoured
    again = keys.claim(
        "gone", job_id="new2", kind="credits", payload={"x": 1}, job_status=store.status, now=now
    )
    assert not again.created and again.job_id == "new1"
    store.create("rej", kind="credits", payload={})
    store.transition("rej", JobStatus.REJECTED, force=True)
    assert keys.claim("r", job_id="rej", kind="credits", payload={}, now=old).created
    assert keys.claim(
        "r", job_id="new3", kind="credits", payload={}, job_status=store.status, now=now
    ).created
    store.create("live", kind="credits", payload={})
    assert keys.claim("l", job_id="live", kind="credits", payload={}, now=old).created
    same = keys.claim(
        "l", job_id="new4", kind="credits", payload={}, job_status=store.status, now=now
    )
    assert not same.created and same.job_id == "live"
    with pytest.raises(IdempotencyConflict):
        keys.claim(
            "l", job_id="new5", kind="credits", payload={"x": 2}, job_status=store.status, now=now
        )


def test_record_other_holds_only_unknown_fields(store: JobStore) -> None:
    """A field the record has no attribute for lands in ``other``; known ones never do."""
    store.create("j9", kind="send", payload={}, fields={"custom_note": "kept"})
    record = store.get("j9")
    assert record is not None
    assert dict(record.other) == {"custom_note": "kept"}
    assert record.to_dict()["custom_note"] == "kept" and record.to_dict()["status"] == "queued"
