"""Idempotency keys: one job per key, whoever asks first, however many ask at once.

``<namespace>:idem:<key>`` holds ``{"job_id", "payload_hash", "kind"}``, written with
``SET NX`` and the job retention as TTL. The first producer wins and gets to create
the job; every later one with the same payload gets the first job's id and queues
nothing; a different payload under the same key is an :class:`IdempotencyConflict`.
The payload hash is taken over the kind and the payload with its keys lower-cased
(provider names are case-insensitive), before the reference is filled in.

A key whose job never came to be is taken over: when the caller passes
``job_status`` and the key's job is ``rejected`` (its enqueue failed) or has no
record although the claim is older than :data:`CLAIM_GRACE_S` (the producer died
between the claim and the record), the next claim replaces the key with a
compare-and-set on its stored value and creates a new job, whatever the old
payload was. A claim younger than the grace whose record is not written yet is
still honoured (its producer is about to write it).

Keys certsms makes for itself (one certificate download per certified recipient,
evidence retries, auto-deletes: ``certificate:<idMensaje>:<phone>`` …) live in
their own namespace, ``<namespace>:idem-internal:<sha256(key)[:32]>`` (``internal=True``):
a producer's ``Idempotency-Key`` that spells the same text claims
``<namespace>:idem:<key>`` and can neither block nor hijack a real download; the
hash keeps the phone numbers those keys contain out of Redis key names.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from certsms.config.settings import Settings
from certsms.worker.errors import IdempotencyConflict
from certsms.worker.jobs.status import JobStatus

#: How long a claim whose job record is missing is still honoured (its producer is
#: between the claim and the record); after that the key is taken over.
CLAIM_GRACE_S = 30.0

#: Replace the key's value only if it still is the value the caller read.
_TAKEOVER_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k).lower(): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return value


def payload_hash(kind: str, payload: Mapping[str, Any]) -> str:
    """A stable sha256 of the kind and the payload (keys lower-cased, sorted)."""
    text = json.dumps([kind, _canonical(payload)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The answer of :meth:`IdempotencyKeys.claim`: whose job it is, and whether it is new."""

    job_id: str
    created: bool


class IdempotencyKeys:
    """``SET NX`` claims of idempotency keys."""

    def __init__(self, redis_client: redis.Redis, settings: Settings) -> None:
        self.redis = redis_client
        self.settings = settings

    def _key(self, key: str, internal: bool = False) -> str:
        if internal:
            digest = hashlib.sha256(key.encode()).hexdigest()[:32]
            return self.settings.key("idem-internal", digest)
        return self.settings.key("idem", key)

    def claim(
        self,
        key: str,
        *,
        job_id: str,
        kind: str,
        payload: Mapping[str, Any],
        job_status: Callable[[str], JobStatus | None] | None = None,
        now: float | None = None,
        internal: bool = False,
    ) -> Claim:
        """Claim ``key`` for ``job_id``; or the earlier job's id for the same payload.

        Raises :class:`IdempotencyConflict` when the key holds a different payload.
        With ``job_status`` (the status of a job id, None when it has no record), a
        key whose job is rejected or missing (see the module docstring) is taken over.
        ``internal``: a key certsms made for itself (its own namespace).
        """
        redis_key = self._key(key, internal)
        digest = payload_hash(kind, payload)
        now = time.time() if now is None else now
        value = json.dumps(
            {"job_id": job_id, "payload_hash": digest, "kind": kind, "claimed_at": now}
        )
        ttl = self.settings.job_retention_s
        for _ in range(10):
            if self.redis.set(redis_key, value, nx=True, ex=ttl):
                return Claim(job_id=job_id, created=True)
            raw = self.redis.get(redis_key)
            if raw is None:  # expired between the two commands: try once more
                continue
            existing = json.loads(cast(bytes, raw))
            if job_status is not None and self._abandoned(existing, job_status, now):
                if self._takeover(redis_key, cast(bytes, raw), value, ttl):
                    return Claim(job_id=job_id, created=True)
                continue  # another producer changed the key first: look again
            if existing.get("payload_hash") != digest:
                raise IdempotencyConflict(key, str(existing.get("job_id")))
            return Claim(job_id=str(existing["job_id"]), created=False)
        raise RuntimeError(f"idempotency key {key!r} kept changing")  # pragma: no cover

    @staticmethod
    def _abandoned(
        existing: Mapping[str, Any], job_status: Callable[[str], JobStatus | None], now: float
    ) -> bool:
        """Whether the key's job never came to be (rejected, or no record past the grace)."""
        status = job_status(str(existing.get("job_id")))
        if status is not None:
            return status == JobStatus.REJECTED
        claimed_at = existing.get("claimed_at")
        return not isinstance(claimed_at, int | float) or now - claimed_at >= CLAIM_GRACE_S

    def _takeover(self, redis_key: str, old: bytes, new: str, ttl: int) -> bool:
        return bool(self.redis.eval(_TAKEOVER_LUA, 1, redis_key, old, new, ttl))

    def release(self, key: str, *, job_id: str, internal: bool = False) -> None:
        """Forget ``key`` if it still belongs to ``job_id`` (the enqueue failed)."""
        redis_key = self._key(key, internal)
        raw = self.redis.get(redis_key)
        if raw is not None and json.loads(cast(bytes, raw)).get("job_id") == job_id:
            self.redis.delete(redis_key)

    def lookup(self, key: str, *, internal: bool = False) -> str | None:
        """The job id holding ``key``, if any."""
        raw = self.redis.get(self._key(key, internal))
        return None if raw is None else str(json.loads(cast(bytes, raw))["job_id"])
