"""Small helpers shared by the guard modules: clocks, script loading, optional settings."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from redis import Redis

from certsms.config.settings import Settings

Clock = Callable[[], float]


def load_script(name: str) -> str:
    """The text of a Lua script shipped as package data next to this module."""
    return resources.files("certsms.worker.guard").joinpath(name).read_text(encoding="utf-8")


def now_arg(clock: Clock | None) -> str:
    """The ``now`` argument of a guard script: µs from ``clock``, or '' for Redis ``TIME``."""
    return "" if clock is None else str(int(clock() * 1_000_000))


def redis_now_s(redis: Redis, clock: Clock | None) -> float:
    """Seconds since the epoch from ``clock`` or, without one, from Redis ``TIME``."""
    if clock is not None:
        return clock()
    seconds, micros = redis.time()
    return float(seconds) + float(micros) / 1_000_000


def request_budget_s(settings: Settings) -> float:
    """The longest one guarded call can take: the limiter sleep plus every HTTP attempt.

    Used as the TTL of the half-open probe lock and of the single-flight lock, so a
    holder that dies frees them without starving the others for long.
    """
    attempts = settings.transport_retries + 1
    http_s = (settings.connect_timeout_s + settings.read_timeout_s) * attempts
    backoff_s = settings.transport_backoff_s * (2**settings.transport_retries)
    return settings.limiter_max_sleep_s + http_s + backoff_s + 1.0


def text(value: object) -> str:
    """A Redis reply as ``str`` whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else str(value)
