"""The per-process set-up: settings, the broker, a Redis client, a job store, a producer.

:func:`setup` is the one entry: it builds the broker (:func:`worker.broker.build_broker`)
and calls ``dramatiq.set_broker``. It is idempotent per process (same Redis URL and
namespace → the same broker); called with other settings (tests) it builds a new
broker and moves the already-declared actors to it. It imports no actor: the
entry points that run actors (``tasks.boot``) import them after it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import dramatiq
import redis

from certsms.config.settings import Settings, load_settings
from certsms.worker.broker import CertsmsBroker, build_broker
from certsms.worker.jobs.producer import Producer
from certsms.worker.jobs.store import JobStore


@dataclass
class Runtime:
    """What one process shares: settings, the broker, a Redis client, a job store and a
    producer (one each per settings object: their scripts are registered once)."""

    settings: Settings
    broker: CertsmsBroker
    redis: redis.Redis
    _store: JobStore | None = None
    _producer: Producer | None = None

    @property
    def store(self) -> JobStore:
        """The process's :class:`~worker.jobs.store.JobStore`."""
        found = self._store
        if found is None or found.settings is not self.settings:
            found = self._store = JobStore(self.redis, self.settings)
        return found

    @property
    def producer(self) -> Producer:
        """The process's :class:`~worker.jobs.producer.Producer` (queues on this broker)."""
        found = self._producer
        if found is None or found.settings is not self.settings:
            found = self._producer = Producer(
                self.redis, self.settings, broker=self.broker, store=self.store
            )
        return found


_lock = threading.RLock()
_runtime: Runtime | None = None


def setup(settings: Settings | None = None) -> Runtime:
    """Set up this process once (idempotent): build the broker and ``set_broker``."""
    global _runtime
    with _lock:
        settings = settings or (_runtime.settings if _runtime else load_settings())
        current = _runtime
        if current is None or _identity(current.settings) != _identity(settings):
            broker = build_broker(settings)
            dramatiq.set_broker(broker)
            if current is not None:
                for name in current.broker.get_declared_actors():
                    actor = current.broker.get_actor(name)
                    actor.broker = broker
                    broker.declare_actor(actor)
                current.broker.close()
            _runtime = Runtime(settings=settings, broker=broker, redis=broker.client)
        elif current.settings != settings:
            current.settings = settings
            current.broker.settings = settings
        assert _runtime is not None
        return _runtime


def _identity(settings: Settings) -> str:
    return json.dumps([settings.redis_url, settings.namespace, settings.heartbeat_timeout_s])


def runtime() -> Runtime:
    """The process's runtime, set up from the environment on first use."""
    current = _runtime
    return current if current is not None else setup()
