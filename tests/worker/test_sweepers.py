"""Sweepers: stuck in_flight sends, missing evidence, queued jobs whose message was lost."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
import structlog

from certsms.config.settings import Settings
from certsms.worker import metrics
from certsms.worker.jobs.store import JobStatus, JobStore
from certsms.worker.maintenance import process_id
from certsms.worker.sweepers import Sweepers, beat
from tests.fixtures.jobs import last_json, record_of, wait_status
from tests.fixtures.maintenance import SEND_PAYLOAD
from tests.fixtures.sandbox import SandboxHandle


def _in_flight(store: JobStore, job_id: str, *, worker_id: str, age_s: float) -> None:
    store.create(job_id, kind="send", payload=SEND_PAYLOAD, reference=job_id)
    ts = time.time() - age_s
    store.transition(
        job_id,
        JobStatus.IN_FLIGHT,
        in_flight_ts=ts,
        in_flight_token="tok",
        in_flight_at="2026-01-01T00:00:00Z",
        worker_id=worker_id,
        incr_attempts=1,
        now=ts,
    )


def test_sweeper_in_flight_with_dead_worker_becomes_uncertain(
    maintenance_settings: Settings,
    redis_client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    cli_logging: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Old in_flight + worker gone → uncertain with the reason; a live worker's send is left."""
    store = JobStore(redis_client, maintenance_settings)
    live = process_id()
    beat(redis_client, maintenance_settings, live)
    _in_flight(store, "gone", worker_id="deadhost:4242:Thread-1", age_s=400)
    _in_flight(store, "alive", worker_id=f"{live}:Thread-2", age_s=400)
    _in_flight(store, "young", worker_id="deadhost:4242:Thread-3", age_s=10)
    moved = Sweepers(redis_client, maintenance_settings).in_flight(now=time.time())
    assert moved == ["gone"]
    record = record_of(store, "gone")
    assert record.status is JobStatus.UNCERTAIN and record.reason is not None
    assert "deadhost:4242" in record.reason and "is gone" in record.reason
    assert store.status("alive") == JobStatus.IN_FLIGHT
    assert store.status("young") == JobStatus.IN_FLIGHT
    # the operator sees it with what is known
    from certsms.worker.cli import main

    for name, value in {
        "REDIS_URL": maintenance_settings.redis_url,
        "CERTSMS_NAMESPACE": maintenance_settings.namespace,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["jobs", "--status", "uncertain"]) == 0
    text = capsys.readouterr().out
    assert "gone" in text and "in_flight_at=2026-01-01T00:00:00Z" in text and "is gone" in text
    assert main(["jobs", "--status", "uncertain", "--json"]) == 0
    row = last_json(capsys.readouterr().out)["jobs"][0]
    assert row["attempts"] == 1 and row["worker_id"].startswith("deadhost") and row["reason"]


def _certified_without_evidence(store: JobStore, sandbox: SandboxHandle) -> tuple[str, int]:
    """A real certified send whose certificate download was lost."""
    from certsms.tasks import enqueue_send
    from certsms.worker.status_updates import apply_recipient_status

    job_id = enqueue_send({**SEND_PAYLOAD, "Destinatarios": [{"Movil": "34600000001"}]})
    message_id = wait_status(store, job_id, "sent").idmensaje
    assert isinstance(message_id, int)
    sandbox.tick(10)
    outcome = apply_recipient_status(
        store,
        message_id=message_id,
        reference=None,
        phone="34600000001",
        result_code=14,
        at=None,
        source="report",
        enqueue=lambda kind, payload, key: "lost-download",
    )
    assert outcome.job_status == "certified"
    return job_id, message_id


def test_sweeper_evidence_requeues_a_lost_download_once(
    maintenance_settings: Settings,
    maintenance_worker: Any,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
) -> None:
    """Certified without evidence past evidence_retry_s → one new download → evidence_stored."""
    store = JobStore(redis_client, maintenance_settings)
    job_id, _ = _certified_without_evidence(store, sandbox)
    sweepers = Sweepers(redis_client, maintenance_settings)
    assert sweepers.evidence(now=time.time()) == []  # too early
    later = time.time() + maintenance_settings.evidence_retry_s + 1
    assert sweepers.evidence(now=later) == [job_id]
    assert sweepers.evidence(now=later) == []  # bounded: once per evidence_retry_s
    wait_status(store, job_id, "evidence_stored")
    assert len(sandbox.requests("GetSMSCERTIFICADO")) == 1


def test_sweeper_evidence_overdue_logs_and_counts_once(
    maintenance_settings: Settings,
    maintenance_worker: Any,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
) -> None:
    """Past evidence_give_up_s: one `evidence_overdue` error line, the metric, no download."""
    store = JobStore(redis_client, maintenance_settings)
    job_id, message_id = _certified_without_evidence(store, sandbox)
    sweepers = Sweepers(redis_client, maintenance_settings)
    before = metrics.EVIDENCE_OVERDUE._value.get()
    late = time.time() + maintenance_settings.evidence_give_up_s + 1
    with structlog.testing.capture_logs() as logs:
        overdue: list[str] = []
        assert sweepers.evidence(now=late, overdue=overdue) == []
        sweepers.evidence(now=late + 60, overdue=overdue)
    lines = [line for line in logs if line["event"] == "evidence_overdue"]
    assert overdue == [job_id] and len(lines) == 1
    assert lines[0]["log_level"] == "error" and str(lines[0]["idmensaje"]) == str(message_id)
    assert metrics.EVIDENCE_OVERDUE._value.get() == before + 1
    assert sandbox.requests("GetSMSCERTIFICADO") == []
    assert store.status(job_id) == JobStatus.CERTIFIED


def test_sweeper_stalled_queued_job_is_requeued_once(
    maintenance_runtime: Any,
    maintenance_settings: Settings,
    redis_client: redis.Redis,
) -> None:
    """A queued job whose message vanished is re-queued once with the reason; then left."""
    from certsms.tasks import enqueue_send

    store = JobStore(redis_client, maintenance_settings)
    lost = enqueue_send(SEND_PAYLOAD)
    maintenance_runtime.broker.flush_all()  # e.g. Redis restored from an old snapshot
    kept = enqueue_send(SEND_PAYLOAD)
    sweepers = Sweepers(redis_client, maintenance_settings)
    assert sweepers.stalled(now=time.time()) == []  # too young to tell
    now = time.time() + maintenance_settings.stalled_after_s + 1
    assert sweepers.stalled(now=now) == [lost]
    record = record_of(store, lost)
    assert record.status is JobStatus.QUEUED
    assert record.reason is not None and record.reason.startswith("stalled:")
    assert record.other.get("requeued_by_sweeper")
    assert {lost, kept} <= sweepers.queued_job_ids()
    assert sweepers.stalled(now=now) == []
    # lost again: not re-queued a second time (an operator decides)
    maintenance_runtime.broker.flush_all()
    later = now + maintenance_settings.stalled_after_s + 1
    with structlog.testing.capture_logs() as logs:
        assert sweepers.stalled(now=later) == [kept]
    assert [line["job_id"] for line in logs if line["event"] == "job_stalled"] == [lost]


def test_maintenance_lease_outlasts_one_poll_batch() -> None:
    """The leader's lease is longer than a full poll batch at the query budget."""
    from certsms.config.settings import Settings
    from certsms.worker.maintenance import lease_ttl_s

    settings = Settings(poller_batch_size=50, rate_limit_query_per_s=1.0)
    assert lease_ttl_s(settings) >= 50 / 1.0
    fast = Settings(poller_batch_size=10, rate_limit_query_per_s=10.0, maintenance_interval_s=5)
    assert lease_ttl_s(fast) == 31.0  # one batch (1 s) + margin (30 s) beats 4 cycles (20 s)
