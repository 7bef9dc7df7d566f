"""The dramatiq broker and its middleware.

:func:`build_broker` builds the :class:`RedisBroker` with every key under
``<CERTSMS_NAMESPACE>:dramatiq`` and adds the middleware; :mod:`worker.runtime`
makes it the process's broker.

Middleware, in order: AgeLimit, TimeLimit, ShutdownNotifications, Callbacks,
Pipelines, :class:`~worker.middleware.JobMiddleware` (contract check, poison
check, log context, canonical outcome line, dead-letter records), Retries (bounded
from settings; actors narrow it further), CurrentMessage,
:class:`~worker.redelivery.RedeliverySweeper` (deterministic redelivery of a dead
worker's messages), :class:`~worker.maintenance.MaintenanceMiddleware` (the elected
report poller and sweepers). dramatiq's rate limiters are not used (the provider guard is).

The broker's Redis client comes from :func:`worker.redis_client.redis_client` (one
server or a Sentinel-watched primary, retried across restarts and failovers). Its
dispatch script is handed Redis' clock (:class:`~worker.redis_client.RedisClock`),
not the host's, so heartbeats written by hosts whose clocks disagree stay
comparable. With ``CERTSMS_REDIS_WAIT_REPLICAS`` an enqueue returns only once the
replicas hold the message (:func:`~worker.redis_client.wait_for_replicas`).
"""

from __future__ import annotations

from typing import Any, cast

import dramatiq
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

from certsms.config.settings import Settings
from certsms.worker.deadletter import record_dead_letter
from certsms.worker.dramatiq_keys import acks_key, broker_namespace, messages_key
from certsms.worker.maintenance import MaintenanceMiddleware
from certsms.worker.middleware import JobMiddleware
from certsms.worker.redelivery import RedeliverySweeper
from certsms.worker.redis_client import RedisClock, redis_client, wait_for_replicas

log = structlog.get_logger(__name__)

_ENVELOPE_TYPES: dict[str, type | tuple[type, ...]] = {
    "queue_name": str,
    "actor_name": str,
    "args": (list, tuple),
    "kwargs": dict,
    "options": dict,
    "message_id": str,
}


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
        broker = cast(CertsmsBroker, self.broker)
        client = broker.client
        acks = acks_key(broker.namespace, broker.broker_id, self.queue_name)
        messages = messages_key(broker.namespace, self.queue_name)
        encoded = data.encode() if hasattr(data, "encode") and not isinstance(data, str) else data
        for rid in cast(set[bytes], client.smembers(acks)):
            if client.hget(messages, rid) == encoded:
                broker.do_nack(self.queue_name, rid.decode())
                record_dead_letter(
                    client,
                    broker.settings,
                    redis_message_id=rid.decode(),
                    reason=reason,
                    queue_name=self.queue_name,
                    job_id=None,
                    message_id=None,
                    actor_name=None,
                )
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
    clock: RedisClock

    @property
    def consumer_class(self) -> type:
        return _CertsmsConsumer

    def _dispatch(self, command: str) -> Any:
        """dramatiq's dispatch with the timestamp taken from Redis' clock."""
        dispatch = self.scripts["dispatch"]
        keys = [self.namespace]
        clock = self.clock

        def do_dispatch(queue_name: str, *args: Any) -> Any:
            return dispatch(
                args=[
                    command,
                    clock.now_ms(),
                    queue_name,
                    self.broker_id,
                    self.heartbeat_timeout,
                    self.dead_message_ttl,
                    self._should_do_maintenance(command),
                    self._max_unpack_size(),
                    *args,
                ],
                keys=keys,
            )

        return do_dispatch

    def enqueue(
        self, message: dramatiq.Message[Any], *, delay: int | None = None
    ) -> dramatiq.Message[Any]:
        """Enqueue, then wait for the configured replicas to hold it."""
        queued = super().enqueue(message, delay=delay)
        wait_for_replicas(self.client, self.settings)
        return queued


def build_broker(settings: Settings) -> CertsmsBroker:
    """A Redis broker under the namespace, with all middleware (not yet the global one)."""
    client = redis_client(settings)
    broker = CertsmsBroker(
        client=client,
        namespace=broker_namespace(settings),
        heartbeat_timeout=settings.heartbeat_timeout_s * 1000,
        middleware=[],
    )
    broker.settings = settings
    broker.clock = RedisClock(client)
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
