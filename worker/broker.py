"""The dramatiq broker, its middleware, and the per-process set-up.

:func:`setup` is the one entry: it builds the :class:`RedisBroker` with every key
under ``<CERTSMS_NAMESPACE>:dramatiq``, adds the middleware, calls
``dramatiq.set_broker`` and only then imports the actor modules. It is idempotent
per process (same Redis URL and namespace → the same broker); called with other
settings (tests) it builds a new broker and moves the already-declared actors to it.

The dramatiq CLI loads this module through :func:`boot_worker_process` (``certsms
worker`` passes ``worker.broker:boot_worker_process``), which reads the settings
from the environment and configures logging inside each worker process.

Middleware, in order: AgeLimit, TimeLimit, ShutdownNotifications, Callbacks,
Pipelines, :class:`~worker.middleware.JobMiddleware` (contract check, poison
check, log context, canonical outcome line, dead-letter records), Retries (bounded
from settings; actors narrow it further), CurrentMessage,
:class:`~worker.redelivery.RedeliverySweeper` (deterministic redelivery of a dead
worker's messages), :class:`~worker.maintenance.MaintenanceMiddleware` (the elected
report poller and sweepers). dramatiq's rate limiters are not used (the provider guard is).
"""

from __future__ import annotations

import importlib
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import dramatiq
import redis
import structlog
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import DecodeError
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from config.settings import Settings, load_settings

if TYPE_CHECKING:
    from worker.jobs.store import JobStore

log = structlog.get_logger(__name__)

#: Modules declaring actors, imported after ``set_broker``.
ACTOR_MODULES: tuple[str, ...] = ("tasks.actors", "tasks.callbacks")

_ENVELOPE_TYPES: dict[str, type | tuple[type, ...]] = {
    "queue_name": str,
    "actor_name": str,
    "args": (list, tuple),
    "kwargs": dict,
    "options": dict,
    "message_id": str,
}


def dramatiq_namespace(settings: Settings) -> str:
    """The prefix of every dramatiq key: ``<namespace>:dramatiq``."""
    return settings.key("dramatiq")


class _CertsmsConsumer(_RedisConsumer):
    """dramatiq's Redis consumer, but an undecodable message is dead-lettered, not fatal.

    Upstream, a message that fails to decode escapes the consumer: the consumer is
    restarted and the messages it had prefetched stay claimed by a live worker until
    it dies. Here the bad message is moved to the dead-letter set with a reason.
    """

    def __next__(self) -> Any:
        while True:
            try:
                proxy = super().__next__()
            except DecodeError as exc:
                self._dead_letter_raw(exc.data, f"undecodable message: {exc.error}")
                continue
            if proxy is not None:
                bad = _envelope_problem(proxy._message)
                if bad is not None:
                    self.queued_message_ids.discard(proxy.message_id)
                    self._dead_letter_raw(proxy._message, bad)
                    continue
            return proxy

    def _dead_letter_raw(self, data: Any, reason: str) -> None:
        from worker.deadletter import record_dead_letter

        broker = cast(CertsmsBroker, self.broker)
        client = broker.client
        acks = f"{broker.namespace}:__acks__.{broker.broker_id}.{self.queue_name}"
        messages = f"{broker.namespace}:{self.queue_name}.msgs"
        encoded = data.encode() if hasattr(data, "encode") and not isinstance(data, str) else data
        for rid in cast(set[bytes], client.smembers(acks)):
            if client.hget(messages, rid) == encoded:
                broker.do_nack(self.queue_name, rid.decode())
                record_dead_letter(
                    client, broker.settings, redis_message_id=rid.decode(), reason=reason,
                    queue_name=self.queue_name, job_id=None, message_id=None, actor_name=None,
                )  # fmt: skip
                log.error("message_dead_lettered", reason=reason, queue=self.queue_name)
                return
        log.error("undecodable_message_not_found", reason=reason, queue=self.queue_name)


def _envelope_problem(message: Any) -> str | None:
    for name, types in _ENVELOPE_TYPES.items():
        if not isinstance(getattr(message, name, None), types):
            return f"malformed message envelope: {name} has the wrong type"
    return None


class CertsmsBroker(RedisBroker):
    """:class:`RedisBroker` with the certsms consumer and the settings it was built from."""

    settings: Settings

    @property
    def consumer_class(self) -> type:
        return _CertsmsConsumer


def build_broker(settings: Settings) -> CertsmsBroker:
    """A Redis broker under the namespace, with all middleware (not yet the global one)."""
    from worker.maintenance import MaintenanceMiddleware
    from worker.middleware import JobMiddleware
    from worker.redelivery import RedeliverySweeper

    broker = CertsmsBroker(
        url=settings.redis_url,
        namespace=dramatiq_namespace(settings),
        heartbeat_timeout=settings.heartbeat_timeout_s * 1000,
        middleware=[],
    )
    broker.settings = settings
    for middleware in (
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        JobMiddleware(settings),
        Retries(
            max_retries=settings.query_max_retries,
            min_backoff=max(1, settings.retry_min_backoff_ms),
            max_backoff=max(1, settings.retry_max_backoff_ms),
        ),
        CurrentMessage(),
        RedeliverySweeper(settings),
        MaintenanceMiddleware(settings),
    ):
        broker.add_middleware(middleware)
    return broker


@dataclass
class Runtime:
    """What one process shares: settings, the broker, a Redis client, a job store."""

    settings: Settings
    broker: CertsmsBroker
    redis: redis.Redis
    _store: JobStore | None = None

    @property
    def store(self) -> JobStore:
        """The process's :class:`~worker.jobs.store.JobStore` (one per settings object:
        its scripts are registered once, not on every job)."""
        from worker.jobs.store import JobStore

        found = self._store
        if found is None or found.settings is not self.settings:
            found = self._store = JobStore(self.redis, self.settings)
        return found


_lock = threading.RLock()
_runtime: Runtime | None = None


def setup(settings: Settings | None = None, *, import_actors: bool = True) -> Runtime:
    """Set up this process once (idempotent): broker, ``set_broker``, then the actors."""
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
        if import_actors:
            for module in ACTOR_MODULES:
                importlib.import_module(module)
        assert _runtime is not None
        return _runtime


def _identity(settings: Settings) -> str:
    return json.dumps([settings.redis_url, settings.namespace, settings.heartbeat_timeout_s])


def runtime() -> Runtime:
    """The process's runtime, set up from the environment on first use."""
    current = _runtime
    return current if current is not None else setup()


def boot_worker_process() -> None:
    """Entry for the dramatiq CLI in each worker process: settings, logging, broker."""
    settings = load_settings()
    try:
        from config.logging import configure_logging

        configure_logging(settings)
    except ImportError:  # pragma: no cover - the lead's module is optional here
        pass
    rt = setup(settings)
    if settings.worker_metrics_port:
        # Under `certsms worker` only (it prepares the shared metrics directory):
        # dramatiq's middleware records per-process samples and serves them all.
        from dramatiq.middleware.prometheus import Prometheus

        if not any(isinstance(m, Prometheus) for m in rt.broker.middleware):
            rt.broker.add_middleware(Prometheus())
