"""Heartbeats and sweeps on Redis' clock: a host whose clock is off takes no live worker
for dead."""

from __future__ import annotations

import time

import redis

from certsms.worker.dramatiq_keys import acks_key, heartbeats_key, messages_key, queue_key
from certsms.worker.redelivery import Sweeper
from certsms.worker.redis_client import RedisClock

NS = "certsms-test:dramatiq"


def _skewed(offset_s: float):  # type: ignore[no-untyped-def]
    return lambda: time.time() + offset_s


def test_redis_clock_ignores_the_host_clock(redis_client: redis.Redis) -> None:
    """A host 90 s ahead or behind reads Redis' TIME, not its own clock."""
    seconds, micros = redis_client.time()
    server_now = seconds + micros / 1e6
    for offset in (90.0, -90.0):
        clock = RedisClock(redis_client, host_clock=_skewed(offset))
        assert abs(clock() - server_now) < 5.0


def test_host_ahead_does_not_redeliver_a_live_workers_messages(redis_client: redis.Redis) -> None:
    """Worker A beats on a correct host; a sweeper on a host 90 s ahead leaves A's messages
    alone with Redis' clock, and (the contrast) would have taken them with its own clock."""
    live = Sweeper(redis_client, namespace=NS, heartbeat_timeout_ms=30_000)
    live.beat("worker-a")
    redis_client.hset(messages_key(NS, "certsms.send"), "m1", "{}")
    redis_client.sadd(acks_key(NS, "worker-a", "certsms.send"), "m1")
    ahead = Sweeper(
        redis_client,
        namespace=NS,
        heartbeat_timeout_ms=30_000,
        clock=RedisClock(redis_client, host_clock=_skewed(90.0)),
    )
    assert ahead.sweep() == 0
    assert redis_client.sismember(acks_key(NS, "worker-a", "certsms.send"), "m1")
    assert redis_client.zscore(heartbeats_key(NS), "worker-a") is not None
    host_clock = Sweeper(
        redis_client, namespace=NS, heartbeat_timeout_ms=30_000, clock=_skewed(90.0)
    )
    assert host_clock.sweep() == 1  # what a host clock did: the live worker's message moved
    assert redis_client.lrange(queue_key(NS, "certsms.send"), 0, -1) == [b"m1"]
