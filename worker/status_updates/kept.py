"""Kept callbacks: provider callbacks that matched no job yet, kept to be applied later.

A callback can arrive before certsms can place it: the worker that posted the send
was killed before it recorded the answer (the job is ``in_flight``, then
``uncertain``, without its ``idMensaje``), or the answer is still on its way back.
Such a callback is never dropped: its body is kept here with the reason, indexed by
its ``idMensaje`` and its ``Referencia``, and applied again
(:func:`worker.status_updates.replay_kept`) when a job learns that ``idMensaje``
(``sent``/``scheduled``) or turns ``uncertain``.

Layout (under ``settings.key(...)``; a reference appears hashed, never as given):

- ``kept-callback:<digest>``                 string: ``{"fields", "reason", "kept_at"}``
- ``kept-callbacks:message:<idMensaje>``     set of digests
- ``kept-callbacks:reference:<sha256(ref)>`` set of digests
- ``kept-callbacks:all``                     sorted set: digest → when it was kept

The digest is the body's (an identical body retried by the provider is kept once).
Everything expires ``job_retention_s`` after it was kept. :meth:`KeptCallbacks.take`
removes what it returns in one transaction, so two replays never apply one body twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from certsms.config.settings import Settings


def body_digest(fields: Mapping[str, str]) -> str:
    """The identity of a callback body (keys compared case-insensitively)."""
    canonical = json.dumps({k.lower(): v for k, v in fields.items()}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class KeptCallback:
    """One kept body and why it was kept."""

    fields: dict[str, str]
    reason: str
    kept_at: float


class KeptCallbacks:
    """See the module docstring."""

    def __init__(self, redis_client: redis.Redis, settings: Settings) -> None:
        self.redis = redis_client
        self.settings = settings

    def _entry(self, digest: str) -> str:
        return self.settings.key("kept-callback", digest)

    def _by_message(self, message_id: int | str) -> str:
        return self.settings.key("kept-callbacks", "message", str(message_id))

    def _by_reference(self, reference: str) -> str:
        digest = hashlib.sha256(reference.encode()).hexdigest()[:24]
        return self.settings.key("kept-callbacks", "reference", digest)

    @property
    def _all(self) -> str:
        return self.settings.key("kept-callbacks", "all")

    def keep(
        self,
        fields: Mapping[str, str],
        *,
        message_id: int | None,
        reference: str | None,
        reason: str,
        now: float | None = None,
    ) -> str:
        """Keep one body under its ``idMensaje`` and ``Referencia``; its digest."""
        now = time.time() if now is None else now
        ttl = self.settings.job_retention_s
        digest = body_digest(fields)
        document = {"fields": dict(fields), "reason": reason, "kept_at": now}
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._entry(digest), json.dumps(document, sort_keys=True), ex=ttl)
        for index in self._indexes(message_id, reference):
            pipe.sadd(index, digest)
            pipe.expire(index, ttl)
        pipe.zadd(self._all, {digest: now})
        pipe.zremrangebyscore(self._all, "-inf", now - ttl)
        pipe.execute()
        return digest

    def _indexes(self, message_id: int | None, reference: str | None) -> list[str]:
        indexes = [self._by_message(message_id)] if message_id else []
        return indexes + ([self._by_reference(reference)] if reference else [])

    def take(self, *, message_id: int | None, reference: str | None) -> list[KeptCallback]:
        """Remove and return the bodies kept under ``message_id`` or ``reference``."""
        indexes = self._indexes(message_id, reference)
        if not indexes:
            return []
        digests = sorted({d.decode() for d in cast(set[bytes], self.redis.sunion(indexes))})
        if not digests:
            return []
        pipe = self.redis.pipeline(transaction=True)
        for digest in digests:
            pipe.get(self._entry(digest))
        pipe.delete(*(self._entry(d) for d in digests))
        for index in indexes:
            pipe.srem(index, *digests)
        pipe.zrem(self._all, *digests)
        raw = cast(list[Any], pipe.execute())[: len(digests)]
        taken = []
        for item in raw:
            if item is None:  # taken by a concurrent replay, or expired
                continue
            document = json.loads(item)
            taken.append(
                KeptCallback(
                    fields={str(k): str(v) for k, v in document["fields"].items()},
                    reason=str(document.get("reason", "")),
                    kept_at=float(document.get("kept_at", 0.0)),
                )
            )
        return sorted(taken, key=lambda kept: kept.kept_at)

    def count(self) -> int:
        """How many bodies are kept (entries older than the retention left out)."""
        horizon = time.time() - self.settings.job_retention_s
        return int(cast(int, self.redis.zcount(self._all, horizon, "+inf")))
