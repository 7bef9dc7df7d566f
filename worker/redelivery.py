"""Deterministic redelivery of a dead worker's messages.

dramatiq's Redis broker puts a dead worker's unacknowledged messages back only in
a "maintenance" pass of its dispatch script, which runs for ~0.1 % of commands:
after a crash, redelivery is a lottery (measured: 96-337 s). Here every worker
process runs a sweep thread that, every ``redelivery_sweep_interval_s``:

1. refreshes this process's own heartbeat (so a busy worker is never taken for dead);
2. finds workers whose heartbeat is older than ``heartbeat_timeout_s``
   (``ZRANGEBYSCORE <ns>:__heartbeats__``);
3. for each of their ack sets ``<ns>:__acks__.<worker>.<queue>`` (found with SCAN,
   not KEYS), runs the same steps as dramatiq's maintenance in one script: push
   every message id still present in ``<ns>:<queue>.msgs`` back on ``<ns>:<queue>``
   and delete the ack set — only while that worker is still dead;
4. forgets the dead worker's heartbeat when it has no ack set left.

A killed worker's messages therefore run again within ``heartbeat_timeout_s +
redelivery_sweep_interval_s`` (defaults 30 + 15 s). Poison messages (redelivered
more than ``max_redeliveries`` times) are caught by :mod:`worker.middleware`.

Every time here is Redis' (``TIME``, through :class:`~worker.redis_client.RedisClock`),
the heartbeats dramatiq's dispatch writes included (:mod:`worker.broker`): a host whose
clock runs ahead cannot take a live worker on another host for dead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

import redis
import structlog
from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

from certsms.config.settings import Settings
from certsms.worker.dramatiq_keys import acks_prefix, heartbeats_key, queue_key
from certsms.worker.redis_client import RedisClock

log = structlog.get_logger(__name__)

_REQUEUE_LUA = """
local heartbeats, acks = KEYS[1], KEYS[2]
local worker, threshold, queue_full_name = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local beat = redis.call('ZSCORE', heartbeats, worker)
if beat and tonumber(beat) > threshold then return -1 end
local moved = 0
local ids = redis.call('SMEMBERS', acks)
for _, id in ipairs(ids) do
  if redis.call('HEXISTS', queue_full_name .. '.msgs', id) > 0 then
    redis.call('RPUSH', queue_full_name, id)
    moved = moved + 1
  end
end
redis.call('DEL', acks)
return moved
"""

_FORGET_LUA = """
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if beat and tonumber(beat) <= tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1
"""


class Sweeper:
    """One sweep over the broker's namespace (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str,
        heartbeat_timeout_ms: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` gives epoch seconds (default: Redis' clock)."""
        self.client = client
        self.clock = clock if clock is not None else RedisClock(client)
        self.namespace = namespace
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self.heartbeats = heartbeats_key(namespace)
        self._requeue = client.register_script(_REQUEUE_LUA)
        self._forget = client.register_script(_FORGET_LUA)

    def beat(self, worker_id: str, *, now_ms: int | None = None) -> None:
        """Refresh ``worker_id``'s heartbeat."""
        now_ms = int(self.clock() * 1000) if now_ms is None else now_ms
        self.client.zadd(self.heartbeats, {worker_id: now_ms})

    def sweep(self, *, now_ms: int | None = None) -> int:
        """Requeue every dead worker's unacknowledged messages; returns how many."""
        now_ms = int(self.clock() * 1000) if now_ms is None else now_ms
        threshold = now_ms - self.heartbeat_timeout_ms
        dead = cast(list[bytes], self.client.zrangebyscore(self.heartbeats, 0, threshold))
        moved_total = 0
        for raw in dead:
            worker = raw.decode()
            prefix = acks_prefix(self.namespace, worker)
            for key in self.client.scan_iter(match=prefix + "*", count=1000):
                acks = key.decode() if isinstance(key, bytes) else str(key)
                queue = acks[len(prefix) :]
                moved = int(
                    cast(
                        Any,
                        self._requeue(
                            keys=[self.heartbeats, acks],
                            args=[worker, threshold, queue_key(self.namespace, queue)],
                        ),
                    )
                )
                if moved > 0:
                    moved_total += moved
                    log.warning(
                        "messages_redelivered", dead_worker=worker, queue=queue, count=moved
                    )
            if not any(True for _ in self.client.scan_iter(match=prefix + "*", count=1000)):
                self._forget(keys=[self.heartbeats], args=[worker, threshold])
        return moved_total


class RedeliverySweeper(Middleware):
    """Runs :class:`Sweeper` in a daemon thread in every worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        settings: Settings = getattr(broker, "settings", self.settings)
        client = cast(redis.Redis, broker.client)  # type: ignore[attr-defined]
        sweeper = Sweeper(
            client,
            namespace=str(broker.namespace),  # type: ignore[attr-defined]
            heartbeat_timeout_ms=settings.heartbeat_timeout_s * 1000,
            clock=getattr(broker, "clock", None),
        )
        interval_s = float(settings.redelivery_sweep_interval_s)
        beat_s = min(interval_s, settings.heartbeat_timeout_s / 3)
        broker_id = str(broker.broker_id)  # type: ignore[attr-defined]
        self._stop.clear()

        def run() -> None:
            next_sweep = 0.0
            while not self._stop.is_set():
                try:
                    sweeper.beat(broker_id)
                    if time.monotonic() >= next_sweep:
                        sweeper.sweep()
                        next_sweep = time.monotonic() + interval_s
                except Exception:
                    log.exception("redelivery_sweep_failed")
                self._stop.wait(beat_s)

        self._thread = threading.Thread(target=run, name="certsms-redelivery", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
