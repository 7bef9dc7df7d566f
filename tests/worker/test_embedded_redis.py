"""The embedded Redis the tests, ``certsms up`` and the benchmarks rely on."""

from __future__ import annotations

import redis

from certsms.worker.embedded_redis import EmbeddedRedis


def test_embedded_redis_serves_commands_on_its_own_port(redis_server: EmbeddedRedis) -> None:
    """The session server answers on a port other than the machine's 6379."""
    assert redis_server.port != 6379
    client = redis.Redis.from_url(redis_server.url)
    client.set("certsms-test:probe", "1")
    assert client.get("certsms-test:probe") == b"1"


def test_embedded_redis_stops_and_frees_its_port() -> None:
    """After stop() the server process is gone."""
    server = EmbeddedRedis().start()
    process = server.process
    server.stop()
    assert process is not None and process.poll() is not None
