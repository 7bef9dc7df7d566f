"""The query cache: credits from every answer, identical queries within a TTL, and
a short single-flight lock so concurrent processes asking the same thing make one
request (the provider treats fast repeated "empty" queries as spam).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from redis import Redis
from redis.client import Pipeline

from certsms.config.settings import Settings
from certsms.worker.guard._common import text

T = TypeVar("T")

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Record credits stamped with ARGV[2] (µs) or, when empty, Redis TIME (one clock for all hosts).
_RECORD_CREDITS = """
local now = ARGV[2]
if now == '' then
  local t = redis.call('TIME')
  now = tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000)
end
redis.call('HSET', KEYS[1], 'credits', ARGV[1], 'at', now)
return 1
"""
# Take a request's in-flight lock unless the request is memoised: {'memo', record} |
# {'ok', ''} | {'held', ''}. One round trip for the memo re-check and the lock.
_CLAIM = """
local memo = redis.call('GET', KEYS[1])
if memo then return {'memo', memo} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'ok', ''} end
return {'held', ''}
"""


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How a cached answer is stored: ``dumps`` to text, ``loads`` back."""

    dumps: Callable[[T], str]
    loads: Callable[[str], T]


JSON_CODEC: Codec[Any] = Codec(dumps=lambda v: json.dumps(v, default=str), loads=json.loads)


class QueryCache:
    """Credits, cached answers and single-flight locks in Redis."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._unlock = redis.register_script(_UNLOCK)
        self._record_credits = redis.register_script(_RECORD_CREDITS)
        self._claim = redis.register_script(_CLAIM)
        self.credits_key = settings.key("guard", "credits")

    # --- credits ---------------------------------------------------------------------
    def record_credits(
        self, credits: float, *, now_s: float | None = None, client: Pipeline | None = None
    ) -> None:
        """Remember the account's credits (from any answer's ``Cred``) as of ``now_s``
        (default: Redis ``TIME``); with ``client`` a pipeline, only queue it."""
        stamp = "" if now_s is None else repr(float(now_s))
        self._record_credits(
            keys=[self.credits_key], args=[repr(float(credits)), stamp], client=client
        )

    def cached_credits(self, *, now_s: float) -> tuple[float, float] | None:
        """``(credits, age_s)`` of the last known value, or ``None``."""
        raw = self._redis.hmget(self.credits_key, ["credits", "at"])
        if raw[0] is None or raw[1] is None:
            return None
        return float(raw[0]), max(0.0, now_s - float(raw[1]))

    # --- answers -----------------------------------------------------------------------
    def key(self, cache_key: str) -> str:
        """The Redis key of one cached answer."""
        return self._settings.key("guard", "cache", cache_key)

    def get(self, cache_key: str) -> str | None:
        """The cached answer's text, or ``None``."""
        raw = self._redis.get(self.key(cache_key))
        return None if raw is None else text(raw)

    def put(self, cache_key: str, text: str, *, ttl_s: float) -> None:
        """Cache an answer for ``ttl_s`` seconds."""
        self._redis.set(self.key(cache_key), text, px=max(1, int(ttl_s * 1000)))

    def count(self) -> int:
        """How many answers are cached now (SCAN; for ``certsms guard`` only)."""
        return sum(1 for _ in self._redis.scan_iter(match=self.key("*"), count=500))

    # --- single flight -------------------------------------------------------------------
    def lock_key(self, name: str) -> str:
        """The Redis key of one single-flight lock."""
        return self._settings.key("guard", "flight", name)

    def try_lock(self, name: str, *, ttl_s: float) -> str | None:
        """Take the single-flight lock of ``name``; its token, or ``None`` if held."""
        token = uuid.uuid4().hex
        ok = self._redis.set(self.lock_key(name), token, nx=True, px=max(1, int(ttl_s * 1000)))
        return token if ok else None

    def locked(self, name: str) -> bool:
        """Whether someone holds the single-flight lock of ``name``."""
        return bool(self._redis.exists(self.lock_key(name)))

    def unlock(self, name: str, token: str, *, client: Pipeline | None = None) -> None:
        """Release the lock if it is still ours (with ``client`` a pipeline, only queue it)."""
        self._unlock(keys=[self.lock_key(name)], args=[token], client=client)

    def claim(
        self, name: str, memo_key: str, *, ttl_s: float
    ) -> tuple[str, str | None, str | None]:
        """Lock ``name`` unless ``memo_key`` exists: ``("ok", token, None)``,
        ``("held", None, None)`` or ``("memo", None, record)``."""
        token = uuid.uuid4().hex
        verdict, record = self._claim(
            keys=[memo_key, self.lock_key(name)], args=[token, max(1, int(ttl_s * 1000))]
        )
        verdict = text(verdict)
        if verdict == "memo":
            return "memo", None, text(record)
        return verdict, (token if verdict == "ok" else None), None
