"""Dead letters: dramatiq's Redis dead-letter sets, plus our record of why.

dramatiq moves a failed message to the sorted set ``<ns>:<queue>.XQ`` (member: the
``redis_message_id``, score: when) and its data to the hash ``<ns>:<queue>.XQ.msgs``;
it drops them after ``dead_message_ttl`` (7 days) and offers no API. Next to each,
certsms keeps ``<namespace>:dead:<redis_message_id>`` (JSON: reason, job_id, queue,
actor, message_id, error, at) with the same lifetime. ``certsms dead`` lists, shows,
retries and purges them, for every queue certsms consumes
(:data:`worker.jobs.contract.ALL_QUEUES`: sends, queries, files and the provider
callbacks). A dead callback has no job: retrying it queues the callback again.
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from typing import Any, cast

import redis
from dramatiq.broker import Broker, MessageProxy
from dramatiq.message import Message

from certsms.config.settings import Settings
from certsms.worker.dramatiq_keys import dead_letters_key, dead_messages_key, queue_of_delayed
from certsms.worker.errors import InvalidTransition, JobError, error_record
from certsms.worker.jobs.contract import ALL_QUEUES
from certsms.worker.jobs.store import RANK, JobStatus, JobStore, utc_now_iso

DEAD_TTL_S = 7 * 86_400


def _record_key(settings: Settings, rid: str) -> str:
    return settings.key("dead", rid)


def record_dead_letter(
    client: redis.Redis,
    settings: Settings,
    *,
    redis_message_id: str,
    reason: str,
    queue_name: str | None,
    job_id: str | None,
    message_id: str | None,
    actor_name: str | None,
    error: dict[str, Any] | None = None,
) -> None:
    """Write our record of why a message was dead-lettered."""
    record = {
        "id": redis_message_id,
        "reason": reason,
        "queue": queue_name,
        "job_id": job_id,
        "message_id": message_id,
        "actor": actor_name,
        "error": error,
        "at": utc_now_iso(),
    }
    client.set(_record_key(settings, redis_message_id), json.dumps(record), ex=DEAD_TTL_S)


def dead_letter_message(
    broker: Broker,
    settings: Settings,
    message: MessageProxy,
    *,
    reason: str,
    exception: BaseException | None,
) -> None:
    """Record why ``message`` is being nacked and move its job to ``dead``."""
    client = cast(redis.Redis, broker.client)  # type: ignore[attr-defined]
    kwargs = message.kwargs if isinstance(message.kwargs, dict) else {}
    job_id = kwargs.get("job_id") if isinstance(kwargs.get("job_id"), str) else None
    error = error_record(exception) if exception is not None else None
    rid = str(message.options.get("redis_message_id") or message.message_id)
    record_dead_letter(
        client,
        settings,
        redis_message_id=rid,
        reason=reason,
        queue_name=message.queue_name,
        job_id=job_id,
        message_id=message.message_id,
        actor_name=message.actor_name,
        error=error,
    )
    if job_id:
        store = JobStore(client, settings)
        fields: dict[str, Any] = {"reason": reason, "dead_letter_id": rid}
        if error is not None:
            fields["error"] = error
        for _ in range(3):
            # a send in flight may have reached the provider: its outcome is unknown, so
            # it is uncertain (settled by `certsms resolve`), never dead (and retryable)
            done = store.transition(
                job_id,
                JobStatus.UNCERTAIN,
                expect=[JobStatus.IN_FLIGHT],
                **{**fields, "reason": f"{reason} (while in_flight: outcome unknown)"},
            )
            if done or done.reason == "missing":
                return
            done = store.transition(job_id, JobStatus.DEAD, expect=_DEAD_FROM, **fields)
            if done or done.previous != JobStatus.IN_FLIGHT:
                return


#: The statuses a dead-lettered message's job moves to ``dead`` from (forward only),
#: except ``in_flight`` (which becomes ``uncertain``).
_DEAD_FROM = [s for s, r in RANK.items() if r < RANK[JobStatus.DEAD] and s != JobStatus.IN_FLIGHT]


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message: dramatiq's copy and our record."""

    id: str
    queue: str
    at: float
    message: dict[str, Any] | None
    record: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Plain JSON for ``certsms dead list``."""
        message = self.message or {}
        kwargs = message.get("kwargs") if isinstance(message.get("kwargs"), dict) else {}
        return {
            "id": self.id,
            "queue": self.queue,
            "dead_at": utc_now_iso(self.at),
            "actor": message.get("actor_name") or self.record.get("actor"),
            "job_id": self.record.get("job_id") or (kwargs or {}).get("job_id"),
            "reason": self.record.get("reason") or "unknown (no certsms record)",
        }

    def detail(self) -> dict[str, Any]:
        """Plain JSON for ``certsms dead show`` (the message without its payload)."""
        data = self.summary()
        data["record"] = self.record
        if self.message is not None:
            shown = {k: v for k, v in self.message.items() if k != "kwargs"}
            shown["options"] = {
                k: v for k, v in (self.message.get("options") or {}).items() if k != "traceback"
            }
            shown["traceback"] = (self.message.get("options") or {}).get("traceback")
            data["message"] = shown
        return data


class DeadLetters:
    """List, show, retry and purge dead letters of every certsms queue (the callbacks
    queue included) and of any other queue declared on the broker."""

    def __init__(self, broker: Broker, settings: Settings, *, queues: tuple[str, ...] = ALL_QUEUES):
        self.broker = broker
        self.settings = settings
        self.client = cast(redis.Redis, broker.client)  # type: ignore[attr-defined]
        self.namespace = str(broker.namespace)  # type: ignore[attr-defined]
        extra = tuple(q for q in sorted(broker.get_declared_queues()) if q not in queues)
        self.queues = queues + extra

    def _xq(self, queue: str) -> str:
        return dead_letters_key(self.namespace, queue)

    def _load(self, queue: str, rid: str, at: float) -> DeadLetter:
        raw = self.client.hget(dead_messages_key(self.namespace, queue), rid)
        message: dict[str, Any] | None = None
        if raw is not None:
            try:
                message = json.loads(cast(bytes, raw))
            except ValueError:
                message = {"undecodable": cast(bytes, raw)[:200].decode("utf-8", "replace")}
        rec_raw = self.client.get(_record_key(self.settings, rid))
        record = json.loads(cast(bytes, rec_raw)) if rec_raw else {}
        return DeadLetter(id=rid, queue=queue, at=at, message=message, record=record)

    def list(self, *, limit: int = 100) -> builtins.list[DeadLetter]:
        """The newest dead letters first."""
        found: list[DeadLetter] = []
        for queue in self.queues:
            rows = self.client.zrevrange(self._xq(queue), 0, limit - 1, withscores=True)
            for rid, score in cast(list[tuple[bytes, float]], rows):
                found.append(self._load(queue, rid.decode(), float(score) / 1000))
        found.sort(key=lambda d: d.at, reverse=True)
        return found[:limit]

    def get(self, rid: str) -> DeadLetter | None:
        """One dead letter by its id (the ``redis_message_id``)."""
        for queue in self.queues:
            score = self.client.zscore(self._xq(queue), rid)
            if score is not None:
                return self._load(queue, rid, float(score) / 1000)
        return None

    def _remove(self, letter: DeadLetter) -> None:
        pipe = self.client.pipeline()
        pipe.zrem(self._xq(letter.queue), letter.id)
        pipe.hdel(dead_messages_key(self.namespace, letter.queue), letter.id)
        pipe.delete(_record_key(self.settings, letter.id))
        pipe.execute()

    def retry(self, rid: str) -> dict[str, Any]:
        """Enqueue a fresh copy (retry count reset) and remove the dead letter.

        The job goes back to ``queued`` (an operator retry). A send whose outcome
        is unknown or known (uncertain, sent, ...) is refused: use ``certsms resolve``.
        """
        letter = self.get(rid)
        if letter is None:
            raise JobError(f"no dead letter {rid!r}")
        if letter.message is None or "actor_name" not in letter.message:
            raise InvalidTransition(f"dead letter {rid} is not a decodable message; purge it")
        data = letter.message
        options = {
            k: v
            for k, v in (data.get("options") or {}).items()
            if k not in ("retries", "traceback", "requeue_timestamp", "redis_message_id", "eta")
            and not str(k).startswith("certsms_")
        }
        message: Message[Any] = Message(
            queue_name=queue_of_delayed(str(data["queue_name"])),
            actor_name=str(data["actor_name"]),
            args=tuple(data.get("args") or ()),
            kwargs=dict(data.get("kwargs") or {}),
            options=options,
        )
        job_id = letter.summary().get("job_id")
        store = JobStore(self.client, self.settings)
        record = store.get(job_id) if isinstance(job_id, str) else None
        if isinstance(job_id, str) and record is not None:
            current = record.status
            allowed = {JobStatus.DEAD, JobStatus.FAILED, JobStatus.QUEUED, JobStatus.RUNNING}
            if record.kind == "send" and int(record.attempts or 0) > 0:
                # it was posted before: only a definite not-sent outcome may be posted again
                allowed = set() if record.idmensaje else allowed - {JobStatus.RUNNING}
            if current not in allowed:
                raise InvalidTransition(
                    f"job {job_id} is {current}; only dead or failed jobs that did not reach "
                    "the provider are retried (settle a send whose outcome is unknown or "
                    "known with `certsms resolve`)"
                )
            moved = store.transition(
                job_id,
                JobStatus.QUEUED,
                expect=list(allowed),
                reason="operator retry",
                event="job_retried",
            )
            if not moved:
                raise InvalidTransition(f"job {job_id} changed to {moved.previous}; try again")
        self.broker.enqueue(message)
        self._remove(letter)
        return {"id": rid, "job_id": job_id, "message_id": message.message_id, "retried": True}

    def purge(self, rid: str | None = None, *, older_than_s: float | None = None) -> int:
        """Remove one dead letter, or all (older than ``older_than_s`` when given)."""
        if rid is not None:
            letter = self.get(rid)
            if letter is None:
                return 0
            self._remove(letter)
            return 1
        cutoff = None if older_than_s is None else time.time() - older_than_s
        removed = 0
        for letter in self.list(limit=1_000_000):
            if cutoff is None or letter.at < cutoff:
                self._remove(letter)
                removed += 1
        return removed
