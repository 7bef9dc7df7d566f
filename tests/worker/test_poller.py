"""The report poller with the sandbox's callbacks off: schedule, election, evidence by polling."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis

from certsms.config.settings import Settings
from certsms.worker.jobs.store import JobStatus, JobStore
from certsms.worker.maintenance import MaintenanceRunner
from certsms.worker.poller import ReportPoller
from tests.fixtures.jobs import record_of, wait_status
from tests.fixtures.maintenance import SEND_PAYLOAD, TestClock
from tests.fixtures.sandbox import SandboxHandle

REPORT = "GetReportSMSCERTIFICADO"


@pytest.fixture
def maintenance_settings(jobs_settings: Settings) -> Settings:
    """A short schedule (2, 5, 15 min) and validity (1 h + 10 min margin) for counting polls."""
    from tests.fixtures.maintenance import MAINTENANCE_OVERRIDES

    return jobs_settings.model_copy(
        update={
            **MAINTENANCE_OVERRIDES,
            "poller_schedule_s": (120, 300, 900),
            "poller_default_validity_s": 3600,
            "poller_margin_s": 600,
        }
    )


def _sent_jobs(store: JobStore, n: int) -> list[str]:
    from certsms.tasks import enqueue_send

    jobs = [enqueue_send(SEND_PAYLOAD) for _ in range(n)]
    return [wait_status(store, job_id, "sent").id for job_id in jobs]


def _polls(sandbox: SandboxHandle) -> Counter[str]:
    return Counter(str(r["params"].get("Idmensaje")) for r in sandbox.requests(REPORT))


def _drive(
    runners: list[Any], clock: TestClock, sandbox: SandboxHandle, *, until_s: int, step_s: int
) -> dict[str, list[int]]:
    """Run every runner each ``step_s`` of test time; returns idMensaje → poll offsets (s)."""
    start = clock.now
    seen: Counter[str] = Counter()
    times: dict[str, list[int]] = {}
    for offset in range(0, until_s + 1, step_s):
        clock.now = start + offset
        for runner in runners:
            runner.run_once()
        now = _polls(sandbox)
        for message_id, count in now.items():
            for _ in range(count - seen[message_id]):
                times.setdefault(message_id, []).append(offset)
        seen = now
        sandbox.advance_clock(step_s)  # the sandbox would take identical quick reports as spam
    return times


def test_poller_requests_follow_the_schedule_until_validity_ends(
    maintenance_settings: Settings,
    maintenance_worker: Any,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
    test_clock: TestClock,
) -> None:
    """Polls at +2, +7, +22 min, then every 15 min until validity + margin; then `failed`."""
    store = JobStore(redis_client, maintenance_settings)
    jobs = _sent_jobs(store, 2)
    poller = ReportPoller(redis_client, maintenance_settings, clock=test_clock)
    times = _drive([poller], test_clock, sandbox, until_s=5400, step_s=60)
    expected = [120, 420, 1320, 2220, 3120, 4020]  # horizon = 3600 + 600 s
    assert len(times) == 2
    assert all(offsets == expected for offsets in times.values()), times
    for job_id in jobs:
        record = record_of(store, job_id)
        assert record.status is JobStatus.FAILED
        assert record.reason is not None and record.reason.startswith("expired:")
        assert record.polls == 6
        assert poller.next_poll(job_id) is None


def test_poller_two_runners_poll_each_message_once(
    maintenance_settings: Settings,
    maintenance_worker: Any,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
    test_clock: TestClock,
) -> None:
    """Two runners with their own Redis connections: one leads; every message polled once."""
    store = JobStore(redis_client, maintenance_settings)
    _sent_jobs(store, 3)
    url = maintenance_settings.redis_url
    clients = [redis.Redis.from_url(url), redis.Redis.from_url(url)]
    runners = [
        MaintenanceRunner(client, maintenance_settings, clock=test_clock, holder=f"runner-{i}")
        for i, client in enumerate(clients)
    ]
    start = test_clock.now
    try:
        times = _drive(runners, test_clock, sandbox, until_s=1400, step_s=60)
        assert runners[0].lease.holder_now() == "runner-0"
        assert len(times) == 3
        assert all(offsets == [120, 420, 1320] for offsets in times.values()), times
        # the leader goes away: the other takes over and the schedule goes on, still once each
        runners[0].stop()
        test_clock.now = start + 2220  # the next due time
        assert runners[1].run_once() is not None
        assert all(count == 4 for count in _polls(sandbox).values())
    finally:
        for runner in runners:
            runner.stop()
        for client in clients:
            client.close()


def test_poller_claims_make_overlapping_pollers_poll_once(
    maintenance_settings: Settings,
    maintenance_worker: Any,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
    test_clock: TestClock,
) -> None:
    """Even two pollers that both act (no lease) at the same moment poll each message once."""
    store = JobStore(redis_client, maintenance_settings)
    _sent_jobs(store, 3)
    url = maintenance_settings.redis_url
    clients = [redis.Redis.from_url(url), redis.Redis.from_url(url)]
    pollers = [ReportPoller(c, maintenance_settings, clock=test_clock) for c in clients]
    try:
        for poller in pollers:
            poller.discover()
        test_clock.advance(121)
        import threading

        threads = [threading.Thread(target=p.run_once) for p in pollers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(_polls(sandbox).values()) == [1, 1, 1]
    finally:
        for client in clients:
            client.close()


def test_poller_alone_brings_certified_sends_to_evidence_stored(
    maintenance_settings: Settings,
    maintenance_worker: Any,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
    test_clock: TestClock,
) -> None:
    """No callbacks at all: report polls certify the recipients and the evidence is fetched."""
    assert sandbox.state()["config"]["callback_url"] is None
    store = JobStore(redis_client, maintenance_settings)
    jobs = _sent_jobs(store, 2)
    poller = ReportPoller(redis_client, maintenance_settings, clock=test_clock)
    poller.discover()
    sandbox.tick(10)  # every recipient reaches certified (14) at the provider
    test_clock.advance(121)
    run = poller.run_once()
    assert run.polled == 2
    for job_id in jobs:
        record = wait_status(store, job_id, "evidence_stored")
        assert {e.status_class for e in record.recipients.values()} == {"certified"}
        assert {e.source for e in record.recipients.values()} == {"report"}
    # one certificate download per recipient, and polling stops once final
    assert len(sandbox.requests("GetSMSCERTIFICADO")) == 4
    test_clock.advance(3600)
    assert poller.run_once().polled == 0
    assert len(sandbox.requests(REPORT)) == 2
