"""JobStore and idempotency keys against a real Redis."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from worker.errors import IdempotencyConflict
from worker.jobs import IdempotencyKeys, JobStatus, JobStore


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
    assert store.get("j1")["status"] == "delivered"  # type: ignore[index]
    assert store.find_by_message_id(42) == "j1"
    assert store.find_by_reference("r1") == "j1"


def test_store_expect_and_guard_protect_claims(store: JobStore) -> None:
    """An in_flight claim is taken once; only the token holder releases it."""
    store.create("j2", kind="send", payload={})
    assert store.transition("j2", JobStatus.IN_FLIGHT, expect=[JobStatus.QUEUED],
                            in_flight_token="t1", incr_attempts=1)  # fmt: skip
    assert not store.transition("j2", JobStatus.IN_FLIGHT, expect=[JobStatus.QUEUED])
    wrong = store.transition("j2", JobStatus.QUEUED, expect=[JobStatus.IN_FLIGHT],
                             guard=("in_flight_token", "other"))  # fmt: skip
    assert wrong.reason == "guard"
    assert store.transition("j2", JobStatus.QUEUED, expect=[JobStatus.IN_FLIGHT],
                            guard=("in_flight_token", "t1"), in_flight_token=None)  # fmt: skip
    record = store.get("j2")
    assert record is not None and record["status"] == "queued" and record["attempts"] == 1
    assert "in_flight_token" not in record


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
    first = store.update_recipient("j4", "34600000001", result_code=11, status_class="delivered",
                                   at=now, source="callback")  # fmt: skip
    second = store.update_recipient("j4", "34600000001", result_code=14, status_class="certified",
                                    at=now + timedelta(seconds=5), source="callback")  # fmt: skip
    late = store.update_recipient("j4", "34600000001", result_code=11, status_class="delivered",
                                  at=now + timedelta(seconds=9), source="report")  # fmt: skip
    assert first.changed and second.changed and not late.changed
    assert store.get("j4")["recipients"]["34600000001"]["result_code"] == 14  # type: ignore[index]


def test_store_lists_jobs_by_status_and_kind(store: JobStore) -> None:
    """``list_jobs`` filters by status and kind, newest first."""
    store.create("a", kind="send", payload={}, now=1000.0)
    store.create("b", kind="report", payload={}, now=2000.0)
    store.create("c", kind="send", payload={}, now=3000.0)
    store.transition("c", JobStatus.FAILED)
    assert [j["id"] for j in store.list_jobs(kind="send")] == ["c", "a"]
    assert [j["id"] for j in store.list_jobs(status=JobStatus.QUEUED)] == ["b", "a"]
    assert [j["id"] for j in store.list_jobs(kind="send", status=JobStatus.FAILED)] == ["c"]


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
