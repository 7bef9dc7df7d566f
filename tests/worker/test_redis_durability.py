"""Durable Redis: a crash of the embedded Redis mid-backlog loses nothing acknowledged;
the start-up check tells a Redis that persists and never evicts from one that does not."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from certsms.config.errors import ConfigError
from certsms.config.settings import Settings
from certsms.worker.commands.stack import Stack
from certsms.worker.embedded_redis import EmbeddedRedis
from certsms.worker.jobs.store import JobStatus, JobStore
from certsms.worker.redis_client import check_durability, ensure_durable
from tests.fixtures.jobs import load_factor, wait_for
from tests.fixtures.sandbox import SandboxHandle, send_params

SEND = "EnviarSMSCERTIFICADO"
FAST = {
    "retry_min_backoff_ms": 50,
    "retry_max_backoff_ms": 200,
    "rate_limit_per_s": 40.0,
    "rate_limit_send_per_s": 4.0,
    "rate_limit_query_per_s": 30.0,
    "breaker_failure_threshold": 50,
}


def drive_to_evidence(
    store: JobStore, sandbox: SandboxHandle, jobs: list[str], *, timeout_s: float = 120.0
) -> dict[str, JobStatus | None]:
    """Tick the sandbox (its callbacks flow back) until every job has its evidence (the
    deadline scales with the machine's load, like ``wait_for``'s)."""
    deadline = time.monotonic() + timeout_s * load_factor()
    statuses: dict[str, JobStatus | None] = {}
    while time.monotonic() < deadline:
        statuses = {job: store.status(job) for job in jobs}
        if all(s is JobStatus.EVIDENCE_STORED for s in statuses.values()):
            break
        sandbox.tick()
        time.sleep(0.3)
    return statuses


def enqueue_backlog(stack: Stack, sandbox: SandboxHandle, key: str, count: int) -> list[str]:
    """Enqueue ``count`` sends (idempotency keys ``key-N``) and wait until some, not all,
    reached the provider: a backlog in mid-flight."""
    producer = stack.runtime.producer
    jobs = [
        producer.enqueue("send", send_params(Mensaje=f"Aviso {n}"), idempotency_key=f"{key}-{n}")
        for n in range(count)
    ]
    wait_for(lambda: 2 <= len(sandbox.requests(SEND)) < len(jobs), timeout_s=30)
    return jobs


def sends_per_message(sandbox: SandboxHandle) -> Counter[str]:
    """How many times the provider received each message text."""
    return Counter(str(r["params"].get("Mensaje")) for r in sandbox.requests(SEND))


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """An embedded Redis with its data on disk; requested before ``make_stack`` so the
    stack stops first (workers never wait out their retry window at teardown)."""
    server = EmbeddedRedis(data_dir=tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def test_redis_sigkilled_mid_backlog_loses_nothing_acknowledged(
    durable_redis: EmbeddedRedis, make_stack: Callable[..., Stack], sandbox: SandboxHandle
) -> None:
    """Embedded Redis SIGKILLed and restarted mid-backlog: every acknowledged job, message
    and idempotency key is still there, each send reaches the provider once, and every
    job's callbacks are matched (all end evidence_stored)."""
    server = durable_redis
    stack = make_stack(redis_url=server.url, **FAST)
    producer = stack.runtime.producer
    jobs = enqueue_backlog(stack, sandbox, "durable", 16)
    server.kill()
    time.sleep(0.5)  # the worker and web find Redis gone
    server.start()
    for job in jobs:
        assert stack.store.get(job) is not None, job
    # the producer's keys survived: a retry with the same key queues nothing new
    again = producer.enqueue("send", send_params(Mensaje="Aviso 0"), idempotency_key="durable-0")
    assert again == jobs[0]
    statuses = drive_to_evidence(stack.store, sandbox, jobs)
    assert set(statuses.values()) == {JobStatus.EVIDENCE_STORED}, statuses
    counts = sends_per_message(sandbox)
    assert counts == Counter({f"Aviso {n}": 1 for n in range(len(jobs))})


def test_embedded_redis_keeps_an_append_only_file_and_never_evicts(tmp_path: Path) -> None:
    """The embedded Redis persists with AOF (everysec) in its data dir, with noeviction."""
    with EmbeddedRedis(data_dir=tmp_path / "r") as server:
        client = redis.Redis.from_url(server.url)
        config = client.config_get("*")
        assert config["appendonly"] == "yes" and config["appendfsync"] == "everysec"
        assert config["maxmemory-policy"] == "noeviction"
        assert config["dir"] == str(tmp_path / "r")
        found = check_durability(client)
        assert found.persists is True and found.problems() == []


def test_durability_check_warns_or_refuses_on_a_redis_that_forgets(
    settings: Settings, tmp_path: Path
) -> None:
    """A Redis without persistence that evicts keys: a warning by default, a ConfigError
    naming CERTSMS_REDIS_REQUIRE_DURABLE when durability is required."""
    with EmbeddedRedis(durable=False, extra_args=["--maxmemory-policy", "allkeys-lru"]) as bad:
        client = redis.Redis.from_url(bad.url)
        found = check_durability(client)
        assert found.persists is False and found.eviction_policy == "allkeys-lru"
        assert len(found.problems()) == 2
        assert ensure_durable(client, settings, process="test") == found  # warns only
        strict = settings.model_copy(update={"redis_require_durable": True})
        with pytest.raises(ConfigError) as raised:
            ensure_durable(client, strict, process="test")
        assert "CERTSMS_REDIS_REQUIRE_DURABLE" in str(raised.value)
        assert "noeviction" in str(raised.value) and "appendonly" in str(raised.value)


def test_durability_check_reads_info_when_config_is_forbidden(settings: Settings) -> None:
    """A managed Redis that renamed CONFIG away is checked through INFO, and an AOF there
    is enough even under CERTSMS_REDIS_REQUIRE_DURABLE."""
    with EmbeddedRedis(extra_args=["--rename-command", "CONFIG", ""]) as managed:
        client = redis.Redis.from_url(managed.url)
        found = check_durability(client)
        assert found.source == "info" and found.aof is True
        assert found.eviction_policy == "noeviction"
        strict = settings.model_copy(update={"redis_require_durable": True})
        assert ensure_durable(client, strict, process="test").persists is True


def test_durability_check_tolerates_an_unreachable_redis(settings: Settings) -> None:
    """Redis down at start-up: the check says it could not look, and does not stop the
    process (it reconnects later), even when durability is required."""
    from tests.fixtures.web import unreachable_redis

    strict = settings.model_copy(update={"redis_require_durable": True})
    found = ensure_durable(unreachable_redis(), strict, process="test")
    assert found.source == "unreachable" and found.persists is None
