"""Idempotency keys: one job per key, whoever asks first, however many ask at once.

``<namespace>:idem:<key>`` holds ``{"job_id", "payload_hash", "kind"}``, written with
``SET NX`` and the job retention as TTL. The first producer wins and gets to create
the job; every later one with the same payload gets the first job's id and queues
nothing; a different payload under the same key is an :class:`IdempotencyConflict`.
The payload hash is taken over the kind and the payload with its keys lower-cased
(provider names are case-insensitive), before the reference is filled in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from config.settings import Settings
from worker.errors import IdempotencyConflict


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

    def _key(self, key: str) -> str:
        return self.settings.key("idem", key)

    def claim(self, key: str, *, job_id: str, kind: str, payload: Mapping[str, Any]) -> Claim:
        """Claim ``key`` for ``job_id``; or the earlier job's id for the same payload.

        Raises :class:`IdempotencyConflict` when the key holds a different payload.
        """
        digest = payload_hash(kind, payload)
        value = json.dumps({"job_id": job_id, "payload_hash": digest, "kind": kind})
        if self.redis.set(self._key(key), value, nx=True, ex=self.settings.job_retention_s):
            return Claim(job_id=job_id, created=True)
        raw = self.redis.get(self._key(key))
        if raw is None:  # expired between the two commands: try once more
            return self.claim(key, job_id=job_id, kind=kind, payload=payload)
        existing = json.loads(cast(bytes, raw))
        if existing.get("payload_hash") != digest:
            raise IdempotencyConflict(key, str(existing.get("job_id")))
        return Claim(job_id=str(existing["job_id"]), created=False)

    def release(self, key: str, *, job_id: str) -> None:
        """Forget ``key`` if it still belongs to ``job_id`` (the enqueue failed)."""
        raw = self.redis.get(self._key(key))
        if raw is not None and json.loads(cast(bytes, raw)).get("job_id") == job_id:
            self.redis.delete(self._key(key))

    def lookup(self, key: str) -> str | None:
        """The job id holding ``key``, if any."""
        raw = self.redis.get(self._key(key))
        return None if raw is None else str(json.loads(cast(bytes, raw))["job_id"])
