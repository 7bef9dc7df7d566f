"""High availability: broker, job store and guard follow a Sentinel failover by themselves."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from certsms.config.errors import ConfigError
from certsms.config.settings import Settings
from certsms.worker.commands.stack import Stack
from certsms.worker.embedded_redis import EmbeddedRedis, free_port, redis_server_binary
from certsms.worker.jobs.store import JobStatus
from certsms.worker.redis_client import redis_target
from tests.fixtures.jobs import wait_for
from tests.fixtures.sandbox import SandboxHandle, send_params
from tests.worker.test_redis_durability import (
    FAST,
    drive_to_evidence,
    enqueue_backlog,
    sends_per_message,
)

MASTER = "mymaster"


class Sentinel:
    """One ``redis-server --sentinel`` process watching ``MASTER``."""

    def __init__(self, directory: Path, primary_port: int) -> None:
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = directory / f"sentinel-{self.port}.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 4000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        self.process = subprocess.Popen(
            [redis_server_binary(), str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port, socket_timeout=2)

    def master_port(self) -> int | None:
        """The port of the primary as this Sentinel sees it."""
        try:
            found = self.client.sentinel_get_master_addr_by_name(MASTER)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None

    def stop(self) -> None:
        """Stop the Sentinel."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def sentinel_cluster(
    tmp_path: Path,
) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis, list[Sentinel]]]:
    """A primary, one replica and three Sentinels (quorum 2) on free ports."""
    primary = EmbeddedRedis(data_dir=tmp_path / "primary").start()
    replica = EmbeddedRedis(
        data_dir=tmp_path / "replica",
        extra_args=["--replicaof", "127.0.0.1", str(primary.port)],
    ).start()
    sentinels: list[Sentinel] = []
    try:
        sentinels = [Sentinel(tmp_path / "sentinels", primary.port) for _ in range(3)]
        time.sleep(0.3)
        if any(s.process.poll() is not None for s in sentinels):
            pytest.skip(f"{redis_server_binary()} cannot run as a Sentinel (--sentinel)")
        replica_client = redis.Redis(port=replica.port)
        wait_for(
            lambda: replica_client.info("replication").get("master_link_status") == "up",
            timeout_s=30,
        )
        wait_for(lambda: all(s.master_port() == primary.port for s in sentinels), timeout_s=30)
        wait_for(
            lambda: all(len(s.client.sentinel_slaves(MASTER)) == 1 for s in sentinels),
            timeout_s=30,
        )
        yield primary, replica, sentinels
    finally:
        for sentinel in sentinels:
            sentinel.stop()
        replica.stop()
        primary.stop()


def test_sentinel_failover_mid_backlog_loses_nothing_and_sends_once(
    sentinel_cluster: tuple[EmbeddedRedis, EmbeddedRedis, list[Sentinel]],
    make_stack: Callable[..., Stack],
    sandbox: SandboxHandle,
) -> None:
    """The primary SIGKILLed mid-backlog: the Sentinels promote the replica, workers and web
    follow it, every acknowledged job is there, each send reaches the provider once and
    every job's callbacks are matched (all end evidence_stored)."""
    primary, replica, sentinels = sentinel_cluster
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
    stack = make_stack(
        redis_url=f"redis+sentinel://{hosts}/0",
        redis_master_name=MASTER,
        redis_wait_replicas=1,
        redis_wait_timeout_ms=500,
        **FAST,
    )
    producer = stack.runtime.producer
    jobs = enqueue_backlog(stack, sandbox, "ha", 12)
    primary.kill()
    wait_for(lambda: sentinels[0].master_port() == replica.port, timeout_s=60)
    primary.start()  # the old primary comes back; the Sentinels make it a replica
    for job in jobs:
        assert stack.store.get(job) is not None, job
    assert (
        producer.enqueue("send", send_params(Mensaje="Aviso 0"), idempotency_key="ha-0") == jobs[0]
    )
    statuses = drive_to_evidence(stack.store, sandbox, jobs)
    assert set(statuses.values()) == {JobStatus.EVIDENCE_STORED}, statuses
    assert sends_per_message(sandbox) == Counter({f"Aviso {n}": 1 for n in range(len(jobs))})
    assert redis.Redis(port=replica.port).info("replication")["role"] == "master"


def test_sentinel_settings_are_read_from_either_form(settings: Settings) -> None:
    """A redis+sentinel:// URL and REDIS_SENTINELS name the same Sentinels, master and db;
    a bad port is refused naming the variable."""
    by_url = redis_target(
        settings.model_copy(
            update={
                "redis_url": "redis+sentinel://:pw@a:26379,b:26380,c/2",
                "redis_master_name": "m",
            }
        )
    )
    by_list = redis_target(
        settings.model_copy(
            update={
                "redis_url": "redis://:pw@ignored:6379/2",
                "redis_sentinels": "a:26379, b:26380,c",
                "redis_master_name": "m",
            }
        )
    )
    for target in (by_url, by_list):
        assert target.url is None and target.master_name == "m" and target.db == 2
        assert target.sentinels == (("a", 26379), ("b", 26380), ("c", 26379))
        assert target.password == "pw"
    with pytest.raises(ConfigError) as raised:
        redis_target(settings.model_copy(update={"redis_sentinels": "a:x"}))
    assert "REDIS_SENTINELS" in str(raised.value)
