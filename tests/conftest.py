"""Shared fixtures: a real Redis per session, settings pointing at it, a sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from certsms.config.settings import Settings
from certsms.worker.embedded_redis import EmbeddedRedis

TEST_NAMESPACE = "certsms-test"

# Each area keeps its fixtures in tests/fixtures/<area>.py; all are loaded here.
pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A real ``redis-server`` on a free port for the whole session (never :6379)."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client of the session's Redis; the database is flushed before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def settings(redis_server: EmbeddedRedis, redis_client: redis.Redis, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    """Settings for a test: its Redis, a test namespace, evidence under tmp_path."""
    return Settings(
        redis_url=redis_server.url,
        namespace=TEST_NAMESPACE,
        mensatek_api_user="demo",
        mensatek_api_token="demo-token",  # type: ignore[arg-type]
        cert_dir=tmp_path / "certificates",
    )


# Worker subprocesses started by tests do not serve metrics unless a test asks
# (several would compete for the default port 9191).
os.environ.setdefault("CERTSMS_WORKER_METRICS_PORT", "0")
