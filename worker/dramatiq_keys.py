"""dramatiq's Redis key layout (dramatiq 2.x ``RedisBroker``), in one place.

certsms reads dramatiq's keys to dead-letter undecodable messages, to redeliver a
dead worker's messages deterministically, to find jobs whose message was lost, and
to list and retry dead letters. Every such key is built here; if dramatiq changes
its layout, this is the module to change. ``namespace`` is the broker's namespace
(``<CERTSMS_NAMESPACE>:dramatiq``)::

    <ns>:<queue>                      list of message ids waiting
    <ns>:<queue>.msgs                 hash: message id -> encoded message
    <ns>:<queue>.DQ / .DQ.msgs        the delayed queue (same shape)
    <ns>:<queue>.XQ / .XQ.msgs        dead letters: sorted set (id -> when) + hash
    <ns>:__acks__.<worker>.<queue>    set: ids a worker fetched and has not acked
    <ns>:__heartbeats__               sorted set: worker id -> last heartbeat (ms)
"""

from __future__ import annotations

from dramatiq.common import dq_name, xq_name

from certsms.config.settings import Settings

__all__ = [
    "acks_key",
    "acks_prefix",
    "broker_namespace",
    "dead_letters_key",
    "dead_messages_key",
    "delayed_queue",
    "heartbeats_key",
    "messages_key",
    "queue_key",
    "queue_of_delayed",
]


def queue_key(namespace: str, queue: str) -> str:
    """The list of message ids waiting in ``queue``."""
    return f"{namespace}:{queue}"


def messages_key(namespace: str, queue: str) -> str:
    """The hash of ``queue``'s encoded messages by id."""
    return f"{namespace}:{queue}.msgs"


def delayed_queue(queue: str) -> str:
    """The name of ``queue``'s delayed queue (``<queue>.DQ``)."""
    return dq_name(queue)


def queue_of_delayed(name: str) -> str:
    """The queue a (possibly delayed) queue name belongs to."""
    return name.removesuffix(".DQ")


def dead_letters_key(namespace: str, queue: str) -> str:
    """The sorted set of ``queue``'s dead letters (id → when)."""
    return f"{namespace}:{xq_name(queue)}"


def dead_messages_key(namespace: str, queue: str) -> str:
    """The hash of ``queue``'s dead messages by id."""
    return f"{namespace}:{xq_name(queue)}.msgs"


def acks_prefix(namespace: str, worker_id: str) -> str:
    """The prefix of a worker's ack sets (one per queue)."""
    return f"{namespace}:__acks__.{worker_id}."


def acks_key(namespace: str, worker_id: str, queue: str) -> str:
    """The set of message ids ``worker_id`` fetched from ``queue`` and has not acked."""
    return acks_prefix(namespace, worker_id) + queue


def heartbeats_key(namespace: str) -> str:
    """The sorted set of worker ids by their last heartbeat."""
    return f"{namespace}:__heartbeats__"


def broker_namespace(settings: Settings) -> str:
    """The prefix of every dramatiq key: ``<CERTSMS_NAMESPACE>:dramatiq``."""
    return settings.key("dramatiq")
