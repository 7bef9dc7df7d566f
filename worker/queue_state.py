"""How full the queues are, read from dramatiq's keys (for the console and the gauges).

Cluster-wide numbers, the same from any process: ``ready`` messages waiting in each
queue, ``delayed`` ones (retries with backoff, held sends, deferred by the guard) and
``dead`` letters. Only :mod:`worker.dramatiq_keys` knows the key names.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from certsms.config.settings import Settings
from certsms.worker.dramatiq_keys import (
    broker_namespace,
    dead_letters_key,
    delayed_queue,
    queue_key,
)
from certsms.worker.jobs.contract import ALL_QUEUES


@dataclass(frozen=True)
class QueueDepth:
    """One queue's waiting, delayed and dead messages."""

    queue: str
    ready: int
    delayed: int
    dead: int


def queue_depths(redis: Redis, settings: Settings) -> list[QueueDepth]:
    """Every certsms queue's depth (one round trip)."""
    namespace = broker_namespace(settings)
    pipe = redis.pipeline(transaction=False)
    for queue in ALL_QUEUES:
        pipe.llen(queue_key(namespace, queue))
        pipe.llen(queue_key(namespace, delayed_queue(queue)))
        pipe.zcard(dead_letters_key(namespace, queue))
    counts = [int(n) for n in pipe.execute()]
    return [QueueDepth(queue, *counts[i * 3 : i * 3 + 3]) for i, queue in enumerate(ALL_QUEUES)]
