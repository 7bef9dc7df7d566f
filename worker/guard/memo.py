"""The failure memo: never send again a request the provider already rejected.

A rejected request is fingerprinted — sha256 of the function and the canonical JSON
of its fingerprint parameters (secrets dropped) — and its first rejection is kept
for ``memo_ttl_s``. An identical request then raises :class:`RepeatedRejection`
without reaching the provider, because repeated erroneous requests are what the
provider treats as spam.

Not memoised: :class:`AuthenticationFailed` (the breaker handles it, and the
fingerprint has no credentials, so the memo would outlive a credentials fix) and
:class:`InsufficientCredits` (the same send succeeds once credits are topped up;
the rejection budget still counts it), and :class:`NotFound` from the idempotent
queries (``certificate``, ``report``: a ``-4`` "no data for these data *yet*" turns
into an answer once the provider has indexed the message; the budget still counts it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import structlog
from redis import Redis

from certsms.config.settings import Settings
from certsms.mensatek.errors import (
    AuthenticationFailed,
    InsufficientCredits,
    NotFound,
    ProviderRejected,
)
from certsms.worker import metrics
from certsms.worker.guard._common import text
from certsms.worker.guard.errors import RepeatedRejection

log = structlog.get_logger(__name__)

NOT_MEMOISED: tuple[type[ProviderRejected], ...] = (AuthenticationFailed, InsufficientCredits)
NOT_FOUND_RETRYABLE: frozenset[str] = frozenset({"certificate", "report"})
"""Query functions whose :class:`NotFound` means "not yet": remembered only for
``memo_not_yet_ttl_s`` (minutes), so a later retry reaches the provider while an
immediate repeat of the same failing query does not."""
_SECRET_MARKERS = ("token", "password", "secret", "authorization", "apikey", "api_key")


def _strip_secrets(value: object) -> object:
    if isinstance(value, Mapping):
        return {
            str(k): _strip_secrets(v)
            for k, v in value.items()
            if not any(m in str(k).lower() for m in _SECRET_MARKERS)
        }
    if isinstance(value, list | tuple):
        return [_strip_secrets(v) for v in value]
    return value


def fingerprint(function: str, params: Mapping[str, object]) -> str:
    """sha256 hex of ``function`` and the canonical JSON of ``params`` (secret keys dropped)."""
    canonical = json.dumps(
        _strip_secrets(params),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(f"{function}\n{canonical}".encode()).hexdigest()


def is_memoised(error: BaseException, function: str) -> bool:
    """Whether this error of ``function`` is remembered: a provider rejection other
    than :data:`NOT_MEMOISED` (see :func:`memo_ttl_s` for how long)."""
    return isinstance(error, ProviderRejected) and not isinstance(error, NOT_MEMOISED)


def memo_ttl_s(settings: Settings, error: BaseException, function: str) -> int:
    """How long a rejection is remembered: ``memo_ttl_s``, or ``memo_not_yet_ttl_s``
    for a "not yet" :class:`NotFound` of a query in :data:`NOT_FOUND_RETRYABLE`."""
    if isinstance(error, NotFound) and function in NOT_FOUND_RETRYABLE:
        return min(settings.memo_not_yet_ttl_s, settings.memo_ttl_s)
    return settings.memo_ttl_s


class FailureMemo:
    """Shared memo of rejected requests (one Redis key per fingerprint + a time index)."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self.index_key = settings.key("guard", "memo")

    def key(self, digest: str) -> str:
        """The Redis key of one fingerprint's first rejection."""
        return self._settings.key("guard", "memo", digest)

    def check(self, function: str, params: Mapping[str, object]) -> None:
        """Raise :class:`RepeatedRejection` when this exact request was rejected before."""
        digest = fingerprint(function, params)
        self.refuse_if_known(function, digest, self._redis.get(self.key(digest)))

    def refuse_if_known(self, function: str, digest: str, raw: str | bytes | None) -> None:
        """Raise :class:`RepeatedRejection` when ``raw`` (the memo entry) exists."""
        if raw is None:
            return
        first = json.loads(raw)
        metrics.MEMO_HITS.labels(function=function).inc()
        log.warning(
            "repeated_rejection_refused",
            function=function,
            fingerprint=digest[:16],
            first_res=first.get("res"),
            first_at=first.get("at"),
        )
        raise RepeatedRejection(first, function=function)

    def remember(
        self, function: str, params: Mapping[str, object], error: ProviderRejected, *, now_s: float
    ) -> bool:
        """Store the first rejection of this request; ``False`` if already known or exempt."""
        if not is_memoised(error, function):
            return False
        digest = fingerprint(function, params)
        record = {
            "fingerprint": digest,
            "function": function,
            "class": type(error).__name__,
            "res": error.res,
            "http_status": error.http_status,
            "provider_text": error.provider_text,
            "message": error.message,
            "request_id": error.request_id,
            "at": now_s,
        }
        ttl_s = memo_ttl_s(self._settings, error, function)
        stored = bool(self._redis.set(self.key(digest), json.dumps(record), nx=True, ex=ttl_s))
        if stored:
            pipe = self._redis.pipeline()
            pipe.zadd(self.index_key, {digest: now_s})
            pipe.zremrangebyscore(self.index_key, "-inf", now_s - ttl_s)
            pipe.expire(self.index_key, ttl_s + 60)
            pipe.execute()
            log.info(
                "rejection_memoised",
                function=function,
                fingerprint=digest[:16],
                res=error.res,
                error=type(error).__name__,
            )
        return stored

    def state(self, now_s: float, *, recent: int = 10) -> dict[str, object]:
        """How many rejections are remembered and the most recent ones."""
        self._redis.zremrangebyscore(self.index_key, "-inf", now_s - self._settings.memo_ttl_s)
        count = int(self._redis.zcard(self.index_key))
        digests = [text(d) for d in self._redis.zrevrange(self.index_key, 0, recent - 1)]
        entries = []
        if digests:
            for raw in self._redis.mget([self.key(d) for d in digests]):
                if raw is not None:
                    entries.append(json.loads(raw))
        return {"count": count, "ttl_s": self._settings.memo_ttl_s, "recent": entries}

    def clear(self) -> int:
        """Forget every remembered rejection; returns how many were dropped."""
        digests = [text(d) for d in self._redis.zrange(self.index_key, 0, -1)]
        keys = [self.key(d) for d in digests]
        for batch_start in range(0, len(keys), 500):
            self._redis.delete(*keys[batch_start : batch_start + 500])
        self._redis.delete(self.index_key)
        return len(digests)
