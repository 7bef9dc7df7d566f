"""The elected maintenance runner: one report poller and one set of sweepers per cluster.

Every worker process starts a :class:`MaintenanceMiddleware` thread. Each cycle
(``maintenance_interval_s``) it beats this process's presence
(:func:`worker.sweepers.beat`) and tries to hold the lease
``<ns>:maintenance:leader`` (``SET NX PX``, renewed by its holder with a
compare-and-extend script; lease = ``max(15 s, 4 × interval)``). Only the holder
runs :class:`~worker.poller.ReportPoller` and :class:`~worker.sweepers.Sweepers`,
so N processes on M hosts poll and sweep as one. When the holder dies its lease
expires and another process takes over within one lease. The poller's per-message
claim makes a double poll impossible even while two runners overlap.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any, cast

import redis
import structlog
from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

from certsms.config.settings import Settings
from certsms.worker.evidence import evidence_lag_s
from certsms.worker.jobs.producer import Producer
from certsms.worker.poller import PollRun, ReportPoller
from certsms.worker.redis_client import RedisClock
from certsms.worker.sweepers import Sweepers, SweepRun, beat

log = structlog.get_logger(__name__)

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]); return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def process_id() -> str:
    """This process as the sweepers know it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_ttl_s(settings: Settings) -> float:
    """How long the leader's lease lasts: a few cycles, and never shorter than one
    poll batch at the query budget plus a margin, so a leader busy with a full batch
    is not replaced mid-cycle (the per-message claims would prevent double polls,
    but two leaders churn)."""
    interval = settings.maintenance_interval_s or 5.0
    batch_s = settings.poller_batch_size / settings.rate_limit_query_per_s
    return max(15.0, 4 * interval, batch_s + 30.0)


class Lease:
    """A leader lease in Redis: one holder at a time, renewed by the holder."""

    def __init__(self, client: redis.Redis, key: str, *, ttl_ms: int, holder: str) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.holder = holder
        self._renew = client.register_script(_RENEW_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    def acquire(self) -> bool:
        """Take the lease if free, or extend it if held by us; True when we hold it."""
        return bool(self._renew(keys=[self.key], args=[self.holder, self.ttl_ms]))

    def release(self) -> None:
        """Give the lease up (only if we hold it)."""
        self._release(keys=[self.key], args=[self.holder])

    def holder_now(self) -> str | None:
        """Who holds the lease now."""
        raw = self.client.get(self.key)
        return None if raw is None else cast(bytes, raw).decode()


class MaintenanceRunner:
    """One runner per worker process; acts only while it holds the lease."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        holder: str | None = None,
        poller: ReportPoller | None = None,
        sweepers: Sweepers | None = None,
        producer: Producer | None = None,
    ) -> None:
        """``producer`` queues the follow-up jobs of polls and sweeps (default: one on
        dramatiq's broker); ``clock`` gives epoch seconds (default: Redis' clock, so
        every host's beats and sweeps agree)."""
        self.client = client
        self.settings = settings
        self.clock = clock = clock if clock is not None else RedisClock(client)
        self.holder = holder or f"{process_id()}:{uuid.uuid4().hex[:8]}"
        self.lease = Lease(
            client,
            settings.key("maintenance", "leader"),
            ttl_ms=int(lease_ttl_s(settings) * 1000),
            holder=self.holder,
        )
        enqueue = producer.enqueue_follow_up if producer else None
        requeue = producer.requeue if producer else None
        self.poller = poller or ReportPoller(client, settings, clock=clock, enqueue=enqueue)
        self.sweepers = sweepers or Sweepers(
            client, settings, clock=clock, enqueue=enqueue, requeue=requeue
        )

    def run_once(self) -> tuple[PollRun, SweepRun] | None:
        """One cycle: beat, then (as leader only) poll and sweep; None when not leading."""
        beat(self.client, self.settings, process_id(), clock=self.clock)
        if not self.lease.acquire():
            return None
        now = self.clock()
        polled = self.poller.run_once(now=now)
        swept = self.sweepers.run_once(now=now)
        evidence_lag_s(self.sweepers.store, now_s=now)  # the certsms_evidence_lag_seconds gauge
        return polled, swept

    def stop(self) -> None:
        """Release the lease and close the poller's HTTP client."""
        try:
            self.lease.release()
        finally:
            self.poller.close()


class MaintenanceMiddleware(Middleware):
    """Starts a :class:`MaintenanceRunner` thread in each worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runner: MaintenanceRunner | None = None

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        settings: Settings = getattr(broker, "settings", self.settings)
        if settings.maintenance_interval_s <= 0:
            return
        client = cast(redis.Redis, broker.client)  # type: ignore[attr-defined]
        producer = Producer(client, settings, broker=broker)
        runner = self.runner = MaintenanceRunner(client, settings, producer=producer)
        interval_s = float(settings.maintenance_interval_s)
        self._stop.clear()

        def run() -> None:
            while not self._stop.is_set():
                try:
                    runner.run_once()
                except Exception:
                    log.exception("maintenance_cycle_failed")
                self._stop.wait(interval_s)
            try:
                runner.stop()
            except Exception:  # pragma: no cover - best effort at shutdown
                log.exception("maintenance_stop_failed")

        self._thread = threading.Thread(target=run, name="certsms-maintenance", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
