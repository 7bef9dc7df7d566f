"""Job records in Redis: one hash per job, status indexes, forward-only transitions, events.

Layout (every key under ``settings.key(...)``, i.e. ``<namespace>:...``):

- ``job:<id>``                 hash: the record (see :meth:`JobStore.get` for the fields);
                               expires ``job_retention_s`` after its last change.
- ``job:<id>:recipients``      hash: phone → JSON of the latest ``Resultado``.
- ``job:<id>:inbox``           list: the attachment events and replies of a send (bounded).
- ``jobs:all`` / ``jobs:kind:<kind>``   sorted sets of job ids by creation time.
- ``jobs:status:<status>``     sorted set of job ids by the time they entered it.
- ``jobs:by_message:<idMensaje>`` / ``jobs:by_reference:<ref>``   string → job id.
- ``events``                   stream, one entry per state change (``XADD MAXLEN ~``).

Status moves forward only (:data:`RANK`, :mod:`worker.jobs.status`); the check and
the write are one Lua script (:mod:`worker.jobs.transition`), so two workers racing
on a job cannot both win. The only backward moves are
explicit: a worker releasing its own ``in_flight`` claim after a definite not-sent
answer (``expect=`` + ``guard=``), and operator actions (``force=True``).

Event schema (v1), every value a string: ``v``, ``event``, ``job_id``, ``kind``,
``at`` (ISO-8601 UTC) and, per event, ``status``, ``previous_status``, ``attempt``,
``idmensaje``, ``res``, ``error_class``, ``reason``, ``phone``, ``result_code``,
``status_class``, ``source``.

This module is the only code that knows these keys: other modules read a
:class:`~worker.jobs.record.JobRecord` (:meth:`JobStore.get`) and change a job
through the store's methods. Field encoding is in :mod:`worker.jobs.fields`; the
recipients' forward-only rule in :mod:`worker.jobs.recipients`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import redis

from config.settings import Settings
from worker.jobs.fields import encode, utc_now_iso
from worker.jobs.recipients import RecipientChange, supersedes
from worker.jobs.record import JobRecord, RecipientState
from worker.jobs.status import RANK, SETTLED, JobStatus
from worker.jobs.transition import (
    TRANSITION_LUA,
    TransitionResult,
    transition_args,
    transition_result,
)

__all__ = [
    "RANK",
    "SETTLED",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "RecipientChange",
    "RecipientState",
    "TransitionResult",
    "utc_now_iso",
]


class JobStore:
    """Job records, their indexes and the events stream, in Redis."""

    def __init__(self, redis_client: redis.Redis, settings: Settings) -> None:
        self.redis = redis_client
        self.settings = settings
        self._transition = redis_client.register_script(TRANSITION_LUA)

    # --- keys -------------------------------------------------------------------
    def job_key(self, job_id: str) -> str:
        """The record's hash key."""
        return self.settings.key("job", job_id)

    @property
    def events_key(self) -> str:
        """The events stream's key."""
        return self.settings.key("events")

    def _index(self, *parts: str) -> str:
        return self.settings.key("jobs", *parts)

    # --- create and read --------------------------------------------------------
    def create(
        self,
        job_id: str,
        *,
        kind: str,
        payload: Mapping[str, Any],
        idempotency_key: str | None = None,
        reference: str | None = None,
        status: JobStatus = JobStatus.QUEUED,
        fields: Mapping[str, object] | None = None,
        now: float | None = None,
        fresh: bool = False,
    ) -> bool:
        """Record a new job; False (and nothing changed) when the id already exists.

        ``fresh=True``: the id was just generated (a uuid4), so the existence check's
        round trip is skipped (the enqueue hot path).
        """
        now = time.time() if now is None else now
        iso = utc_now_iso(now)
        key = self.job_key(job_id)
        record = {
            "id": job_id,
            "kind": kind,
            "status": str(status),
            "created_at": iso,
            "updated_at": iso,
            "attempts": "0",
            "payload": encode(dict(payload)),
            "idempotency_key": idempotency_key or "",
            "reference": reference or "",
        }
        for name, value in (fields or {}).items():
            record[name] = encode(value)
        if not fresh and not self.redis.hsetnx(key, "id", job_id):
            return False
        ttl = self.settings.job_retention_s
        horizon = now - ttl
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={k: v for k, v in record.items() if v != ""})
        pipe.expire(key, ttl)
        for index in (self._index("all"), self._index("kind", kind)):
            pipe.zadd(index, {job_id: now})
            pipe.zremrangebyscore(index, 0, horizon)
        pipe.zadd(self._index("status", str(status)), {job_id: now})
        pipe.zremrangebyscore(self._index("status", str(status)), 0, horizon)
        if reference:
            pipe.set(self._index("by_reference", reference), job_id, ex=ttl)
        self.append_event(
            job_id, "job_created", kind=kind, status=str(status), now=now, client=pipe
        )
        pipe.execute()  # one round trip: record, indexes and the event together
        return True

    def get(self, job_id: str) -> JobRecord | None:
        """The typed record with its recipients; None when absent.

        The producer's payload is not part of it (:meth:`payload` reads it).
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.job_key(job_id))
        pipe.hgetall(self.recipients_key(job_id))
        raw, recipients = cast(list[dict[bytes, bytes]], pipe.execute())
        return JobRecord.from_hash(raw, recipients) if raw else None

    def recipients_key(self, job_id: str) -> str:
        """The hash of the job's recipients (phone → latest status)."""
        return self.job_key(job_id) + ":recipients"

    def payload(self, job_id: str) -> dict[str, Any] | None:
        """The producer's payload as recorded (reference filled in)."""
        raw = self.redis.hget(self.job_key(job_id), "payload")
        return None if raw is None else cast(dict[str, Any], json.loads(cast(bytes, raw)))

    def status(self, job_id: str) -> JobStatus | None:
        """Only the status."""
        raw = self.redis.hget(self.job_key(job_id), "status")
        return None if raw is None else JobStatus(cast(bytes, raw).decode())

    def find_by_message_id(self, message_id: int | str) -> str | None:
        """The send job whose provider ``idMensaje`` this is."""
        raw = self.redis.get(self._index("by_message", str(message_id)))
        return None if raw is None else cast(bytes, raw).decode()

    def find_by_reference(self, reference: str) -> str | None:
        """The job whose ``Referenciausuario`` this is."""
        raw = self.redis.get(self._index("by_reference", reference))
        return None if raw is None else cast(bytes, raw).decode()

    # --- changes ----------------------------------------------------------------
    def transition(
        self,
        job_id: str,
        to: JobStatus,
        *,
        force: bool = False,
        expect: Iterable[JobStatus] | None = None,
        guard: tuple[str, str] | None = None,
        event: str = "job_status_changed",
        now: float | None = None,
        want: str = "",
        **fields: object,
    ) -> TransitionResult:
        """Move the job to ``to`` and write ``fields``, atomically, if allowed.

        Allowed when ``to`` ranks above the current status; or, with ``expect``, when
        the current status is one of those; or always with ``force`` (operator). With
        ``guard=(field, value)`` the record's field must also hold that value. A field
        named ``+name`` is incremented by its value; a None value deletes the field.
        One ``job_status_changed`` event is appended in the same script, and a send's
        ``idmensaje`` is indexed there too. The result tells how many recipient
        statuses are recorded and, with ``want``, that field's value after the move.
        """
        now = time.time() if now is None else now
        idmensaje = fields.get("idmensaje")
        by_message = self._index("by_message", encode(idmensaje)) if idmensaje is not None else ""
        args = transition_args(
            to,
            fields,
            settings=self.settings,
            status_prefix=self._index("status") + ":",
            now=now,
            force=force,
            expect=expect,
            guard=guard,
            event=event,
            by_message_key=by_message,
            want=want,
            reference_prefix=self._index("by_reference") + ":",
            message_prefix=self._index("by_message") + ":",
        )
        raw = self._transition(keys=[self.job_key(job_id), self.events_key], args=args)
        return transition_result(cast(list[Any], raw))

    def set_fields(self, job_id: str, **fields: object) -> None:
        """Write fields that are not a state change (e.g. ``message_id``)."""
        mapping = {k: encode(v) for k, v in fields.items() if v is not None}
        if mapping:
            self.redis.hset(self.job_key(job_id), mapping=cast(Any, mapping))

    def set_field_once(self, job_id: str, name: str, value: object) -> bool:
        """Write one field unless it is set already; True when this call wrote it."""
        return bool(self.redis.hsetnx(self.job_key(job_id), name, encode(value)))

    def increment(self, job_id: str, name: str, by: int = 1) -> int:
        """Add ``by`` to a counter field; its new value."""
        return int(self.redis.hincrby(self.job_key(job_id), name, by))

    def entered_status(
        self,
        status: JobStatus,
        *,
        since: float | str = "-inf",
        until: float | str = "+inf",
        limit: int = 500,
    ) -> list[tuple[str, float]]:
        """Jobs that entered ``status`` between ``since`` and ``until`` (epoch s), oldest
        first, with the time they entered it; at most ``limit``."""
        rows = cast(
            list[tuple[bytes, float]],
            self.redis.zrangebyscore(
                self._index("status", str(status)),
                since,
                until,
                withscores=True,
                start=0,
                num=limit,
            ),
        )
        return [(member.decode(), float(score)) for member, score in rows]

    def add_to_inbox(self, job_id: str, entry: Mapping[str, Any], *, max_entries: int) -> None:
        """Append an attachment event or reply to the job's inbox (the newest kept)."""
        key = self.job_key(job_id) + ":inbox"
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(key, json.dumps(dict(entry), sort_keys=True, default=str))
        pipe.ltrim(key, -max_entries, -1)
        pipe.expire(key, self.settings.job_retention_s)
        pipe.execute()

    def inbox(self, job_id: str) -> list[dict[str, Any]]:
        """The attachment events and replies recorded on a job, oldest first."""
        raw = self.redis.lrange(self.job_key(job_id) + ":inbox", 0, -1)
        return [json.loads(item) for item in cast(list[bytes], raw)]

    def update_recipient(
        self,
        job_id: str,
        phone: str,
        *,
        result_code: int,
        status_class: str,
        at: datetime | None,
        source: str,
    ) -> RecipientChange:
        """Record a recipient's latest ``Resultado`` if it moves forward (rank, then time).

        A late or duplicate update (lower rank, or same rank and not newer) changes
        nothing. A change appends a ``recipient_status_changed`` event.
        """
        key = self.recipients_key(job_id)
        klass = str(status_class).lower()
        at_iso = (at or datetime.now(UTC)).astimezone(UTC).isoformat()
        entry = {"result_code": int(result_code), "status_class": klass, "at": at_iso}
        entry["source"] = source
        outcome: dict[str, Any] = {}

        def apply(pipe: redis.client.Pipeline) -> None:
            old_raw = pipe.hget(key, phone)
            old = json.loads(cast(bytes, old_raw)) if old_raw else None
            outcome["old"] = old
            if not supersedes(old, status_class=klass, at_iso=at_iso, code=result_code):
                outcome["changed"] = False
                return
            pipe.multi()
            pipe.hset(key, phone, json.dumps(entry, sort_keys=True))
            pipe.expire(key, self.settings.job_retention_s)
            outcome["changed"] = True

        self.redis.transaction(apply, key)
        old = outcome.get("old")
        change = RecipientChange(
            phone=phone,
            changed=bool(outcome.get("changed")),
            previous_code=int(old["result_code"]) if old else None,
            previous_class=str(old["status_class"]) if old else None,
            result_code=int(result_code),
            status_class=klass,
        )
        if change.changed:
            self.append_event(
                job_id,
                "recipient_status_changed",
                phone=phone,
                result_code=result_code,
                status_class=klass,
                source=source,
            )
        return change

    def append_event(
        self,
        job_id: str | None,
        event: str,
        *,
        now: float | None = None,
        client: redis.client.Pipeline | None = None,
        **fields: object,
    ) -> None:
        """Append one entry to the events stream (bounded with ``MAXLEN ~``);
        with ``client`` a pipeline, only queue it."""
        entry: dict[str, str] = {"v": "1", "event": event, "job_id": job_id or ""}
        if job_id and "kind" not in fields:
            kind = self.redis.hget(self.job_key(job_id), "kind")
            entry["kind"] = cast(bytes, kind).decode() if kind else ""
        entry["at"] = utc_now_iso(now)
        for name, value in fields.items():
            if value is not None:
                entry[name] = encode(value)
        (client if client is not None else self.redis).xadd(
            self.events_key,
            cast(dict[Any, Any], entry),
            maxlen=self.settings.events_maxlen,
            approximate=True,
        )

    def events(self, *, count: int = 100) -> list[dict[str, str]]:
        """The latest ``count`` events, oldest first (for tests and the CLI)."""
        rows = cast(list[Any], self.redis.xrevrange(self.events_key, count=count))
        out = []
        for entry_id, data in reversed(rows):
            item = {k.decode(): v.decode() for k, v in data.items()}
            item["id"] = entry_id.decode()
            out.append(item)
        return out

    # --- listing ----------------------------------------------------------------
    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """The newest jobs first, filtered by status, kind and time (epoch seconds)."""
        if status is not None:
            index = self._index("status", str(status))
        elif kind is not None:
            index = self._index("kind", kind)
        else:
            index = self._index("all")
        low = "-inf" if since is None else repr(since)
        found: list[JobRecord] = []
        offset, page = 0, max(limit, 50)
        while len(found) < limit:
            ids = cast(
                list[bytes],
                self.redis.zrevrangebyscore(index, "+inf", low, start=offset, num=page),
            )
            if not ids:
                break
            offset += len(ids)
            for raw in ids:
                record = self.get(raw.decode())
                if record is None:
                    continue
                if kind is not None and record.kind != kind:
                    continue
                if status is not None and record.status != status:
                    continue
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status index (for ``certsms jobs --json``)."""
        pipe = self.redis.pipeline()
        for status in JobStatus:
            pipe.zcard(self._index("status", str(status)))
        return {str(s): int(n) for s, n in zip(JobStatus, pipe.execute(), strict=True) if n}
