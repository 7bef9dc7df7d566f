"""Every Redis client certsms opens, built in one place; Redis' own clock; the durability check.

:func:`redis_client` turns the settings into a :class:`redis.Redis`:

- ``REDIS_URL=redis://…`` / ``rediss://…`` / ``unix://…``: one server;
- ``REDIS_URL=redis+sentinel://[:password@]host:port[,host:port…][/db]`` or
  ``REDIS_SENTINELS=host:port,host:port,…`` (then ``REDIS_URL`` gives only the
  password, username, database and TLS): the current primary of
  ``CERTSMS_REDIS_MASTER_NAME`` as the Sentinels name it. The client asks the
  Sentinels again whenever a connection breaks, so after a failover every process
  follows the new primary by itself.

Commands that fail on a broken connection are retried with a capped backoff for
``retry_window_s`` (long in workers, so a failover does not fail a job half-way;
short in the web process, so a client gets its 503 quickly).

:class:`RedisClock` reads Redis' ``TIME`` (cached as an offset from the host clock,
refreshed every few seconds): heartbeats and sweeps compare times written by many
hosts, so they use one clock, the server's.

:func:`check_durability` reads ``CONFIG GET`` (or ``INFO`` when a managed Redis
forbids ``CONFIG``) and reports whether the server persists (AOF or RDB) and
refuses to evict keys (``maxmemory-policy noeviction``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
import structlog
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from certsms.config.errors import ConfigError
from certsms.config.settings import Settings

log = structlog.get_logger(__name__)

SENTINEL_SCHEME = "redis+sentinel://"
DEFAULT_SENTINEL_PORT = 26379

#: Errors after which a command is retried on a fresh connection (a restart, a
#: failover, a primary that became a replica, a server still loading its AOF).
RETRY_ON = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.BusyLoadingError,
)


@dataclass(frozen=True)
class RedisTarget:
    """Where the settings point: one server (``url``) or a Sentinel-watched primary."""

    url: str | None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def parse_hosts(text: str, *, variable: str) -> tuple[tuple[str, int], ...]:
    """``"h1:26379,h2,h3:26380"`` → ``(("h1", 26379), ("h2", 26379), ("h3", 26380))``."""
    hosts: list[tuple[str, int]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
        if not host:
            host, port = part, ""
        if port and not port.isdigit():
            raise ConfigError(variable, f"{part!r}: the port must be a number")
        number = int(port) if port else DEFAULT_SENTINEL_PORT
        if not 0 < number < 65536:
            raise ConfigError(variable, f"{part!r}: the port must be 1-65535")
        hosts.append((host.strip("[]"), number))
    if not hosts:
        raise ConfigError(variable, "names no Sentinel (host:port, comma-separated)")
    return tuple(hosts)


def redis_target(settings: Settings) -> RedisTarget:
    """Read ``REDIS_URL`` / ``REDIS_SENTINELS`` into a :class:`RedisTarget`."""
    url = settings.redis_url
    if url.startswith(SENTINEL_SCHEME):
        rest = url[len(SENTINEL_SCHEME) :]
        credentials, _, rest = rest.rpartition("@")
        hosts, _, path = rest.partition("/")
        username, _, password = credentials.partition(":")
        return RedisTarget(
            url=None,
            sentinels=parse_hosts(hosts, variable="REDIS_URL"),
            master_name=settings.redis_master_name,
            db=_db(path, variable="REDIS_URL"),
            username=unquote(username) or None,
            password=unquote(password) or None,
        )
    if settings.redis_sentinels:
        parts = urlsplit(url)
        return RedisTarget(
            url=None,
            sentinels=parse_hosts(settings.redis_sentinels, variable="REDIS_SENTINELS"),
            master_name=settings.redis_master_name,
            db=_db(parts.path.lstrip("/"), variable="REDIS_URL"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=parts.scheme == "rediss",
        )
    return RedisTarget(url=url)


def _db(path: str, *, variable: str) -> int:
    path = path.strip("/")
    if not path:
        return 0
    if not path.isdigit():
        raise ConfigError(variable, f"the database must be a number, not {path!r}")
    return int(path)


def redis_client(
    settings: Settings,
    *,
    retry_window_s: float | None = None,
    socket_timeout_s: float | None = None,
) -> redis.Redis:
    """A client of the Redis the settings name (see the module docstring).

    ``retry_window_s`` (default ``CERTSMS_REDIS_RETRY_WINDOW_S``) bounds how long a
    command keeps retrying on a broken connection before it raises.
    """
    window = settings.redis_retry_window_s if retry_window_s is None else retry_window_s
    retries = _retries_for(window)
    options: dict[str, Any] = {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        "retry_on_error": list(RETRY_ON),
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_timeout": socket_timeout_s,
        "health_check_interval": 30,
    }
    target = redis_target(settings)
    if target.url is not None:
        return redis.Redis.from_url(target.url, **options)
    sentinel_password = (
        settings.redis_sentinel_password.get_secret_value()
        if settings.redis_sentinel_password
        else None
    )
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs={
            "password": sentinel_password,
            "socket_connect_timeout": settings.redis_connect_timeout_s,
            "socket_timeout": settings.redis_connect_timeout_s,
        },
        socket_connect_timeout=settings.redis_connect_timeout_s,
    )
    extra: dict[str, Any] = {"ssl": True} if target.ssl else {}
    return cast(
        redis.Redis,
        sentinel.master_for(
            target.master_name,
            redis_class=redis.Redis,
            db=target.db,
            username=target.username,
            password=target.password,
            **options,
            **extra,
        ),
    )


def _retries_for(window_s: float) -> int:
    """How many retries of the backoff (50 ms doubling, capped at 1 s) fit ``window_s``."""
    total, retries, delay = 0.0, 0, 0.05
    while total < window_s and retries < 1000:
        total += min(1.0, delay)
        delay *= 2
        retries += 1
    return retries


def describe(settings: Settings) -> str:
    """Where the settings point, without credentials (for logs and messages)."""
    target = redis_target(settings)
    if target.url is None:
        hosts = ",".join(f"{h}:{p}" for h, p in target.sentinels)
        return f"sentinel {target.master_name!r} via {hosts} db {target.db}"
    parts = urlsplit(target.url)
    return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}{parts.path}"


# --- Redis' clock ------------------------------------------------------------------------
class RedisClock:
    """Epoch seconds on the Redis server's clock (``TIME``), for any number of hosts.

    The offset to the host clock is measured with ``TIME`` at most every
    ``refresh_s`` (half the round trip is credited), so reading it costs nothing most
    of the time. When Redis cannot be reached the last offset is kept.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        refresh_s: float = 10.0,
        host_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.refresh_s = refresh_s
        self.host_clock = host_clock
        self.monotonic = monotonic
        self.offset_s = 0.0
        self._measured_at: float | None = None

    def measure(self) -> float:
        """Measure the offset now (``redis time - host time``, seconds) and keep it."""
        before = self.host_clock()
        seconds, micros = cast(tuple[int, int], self.client.time())
        after = self.host_clock()
        self.offset_s = seconds + micros / 1e6 - (before + after) / 2
        self._measured_at = self.monotonic()
        return self.offset_s

    def __call__(self) -> float:
        """Now, in epoch seconds on Redis' clock."""
        stale = self._measured_at is None or self.monotonic() - self._measured_at >= self.refresh_s
        if stale:
            try:
                self.measure()
            except redis.exceptions.RedisError as exc:
                log.warning("redis_clock_unavailable", error=type(exc).__name__)
                self._measured_at = self.monotonic()  # keep the old offset a while
        return self.host_clock() + self.offset_s

    def now_ms(self) -> int:
        """Now, in epoch milliseconds on Redis' clock."""
        return int(self() * 1000)


# --- durability --------------------------------------------------------------------------
@dataclass(frozen=True)
class Durability:
    """What :func:`check_durability` found; ``None`` fields could not be read."""

    aof: bool | None
    rdb: bool | None
    eviction_policy: str | None
    source: str  # "config", "info" or "unreachable"

    @property
    def persists(self) -> bool | None:
        """Whether a restart keeps the data (AOF or RDB); None when unknown."""
        if self.aof or self.rdb:
            return True
        if self.aof is None or self.rdb is None:
            return None
        return False

    def problems(self) -> list[str]:
        """What is wrong or unknown, one sentence each (empty when all is well)."""
        found: list[str] = []
        if self.source == "unreachable":
            return ["Redis did not answer, so its persistence could not be checked"]
        if self.persists is False:
            found.append(
                "Redis keeps no AOF and no RDB snapshots: a restart loses every queued "
                "message, job record and idempotency key (set appendonly yes)"
            )
        elif self.persists is None:
            found.append("Redis does not say whether it persists (no AOF; RDB unknown)")
        if self.eviction_policy is None:
            found.append("Redis does not say its maxmemory-policy")
        elif self.eviction_policy != "noeviction":
            found.append(
                f"Redis evicts keys under memory pressure (maxmemory-policy "
                f"{self.eviction_policy}): queued jobs could silently disappear "
                "(set maxmemory-policy noeviction)"
            )
        return found


def check_durability(client: redis.Redis) -> Durability:
    """Read the server's persistence and eviction policy (``CONFIG``, else ``INFO``)."""
    try:
        config = cast(dict[str, str], client.config_get("*"))
        save = str(config.get("save", "")).strip()
        return Durability(
            aof=str(config.get("appendonly", "no")) == "yes",
            rdb=bool(save),
            eviction_policy=str(config.get("maxmemory-policy", "")) or None,
            source="config",
        )
    except redis.exceptions.ResponseError:
        pass  # managed Redis: CONFIG is renamed or forbidden
    except redis.exceptions.RedisError:
        return Durability(aof=None, rdb=None, eviction_policy=None, source="unreachable")
    try:
        info = cast(dict[str, Any], client.info())
    except redis.exceptions.RedisError:
        return Durability(aof=None, rdb=None, eviction_policy=None, source="unreachable")
    aof = info.get("aof_enabled")
    policy = info.get("maxmemory_policy")
    return Durability(
        aof=None if aof is None else bool(int(aof)),
        rdb=None,
        eviction_policy=str(policy) if policy is not None else None,
        source="info",
    )


def ensure_durable(client: redis.Redis, settings: Settings, *, process: str) -> Durability:
    """Check at start-up: log a loud warning for each problem, or (with
    ``CERTSMS_REDIS_REQUIRE_DURABLE``) stop with a :class:`ConfigError` naming it.

    An unreachable Redis only warns (the process reconnects by itself later);
    a managed Redis that forbids ``CONFIG`` is read through ``INFO``, and what
    ``INFO`` cannot tell (RDB) is not held against it when AOF is on.
    """
    found = check_durability(client)
    problems = found.problems()
    where = describe(settings)
    if found.source == "unreachable":
        log.warning("redis_durability_unchecked", process=process, redis=where, why=problems[0])
        return found
    definite = [p for p in problems if "does not say" not in p]  # unknowns warn, never refuse
    if definite and settings.redis_require_durable:
        raise ConfigError(
            "CERTSMS_REDIS_REQUIRE_DURABLE",
            f"is set, but {where}: " + "; ".join(definite),
        )
    for problem in problems:
        log.warning(
            "redis_not_durable",
            process=process,
            redis=where,
            problem=problem,
            action="see docs/operating.md, 'Redis in production'",
        )
    if not problems:
        log.info(
            "redis_durability_checked",
            process=process,
            redis=where,
            aof=found.aof,
            rdb=found.rdb,
            eviction_policy=found.eviction_policy,
        )
    return found


def wait_for_replicas(client: redis.Redis, settings: Settings) -> bool:
    """With ``CERTSMS_REDIS_WAIT_REPLICAS`` > 0: block until that many replicas have every
    write this process has finished so far; False (and a warning) when fewer acknowledged
    within ``CERTSMS_REDIS_WAIT_TIMEOUT_MS``. Availability wins: the caller goes on either way.

    ``WAIT`` counts the writes of its own connection, and a pool hands out any connection:
    so a fence write and the ``WAIT`` travel together in one pipeline. Replication is in
    order, so a replica past the fence has every earlier write of every connection.
    """
    wanted = settings.redis_wait_replicas
    if wanted <= 0:
        return True
    pipe = client.pipeline(transaction=False)
    pipe.set(settings.key("replication-fence"), "1")
    pipe.wait(wanted, settings.redis_wait_timeout_ms)
    got = int(cast(list[Any], pipe.execute())[-1])
    if got < wanted:
        log.warning(
            "redis_write_not_replicated",
            wanted=wanted,
            acknowledged=got,
            timeout_ms=settings.redis_wait_timeout_ms,
        )
        return False
    return True
