"""Job records in Redis: one hash per job, status indexes, forward-only transitions, events.

Layout (every key under ``settings.key(...)``, i.e. ``<namespace>:...``):

- ``job:<id>``                 hash: the record (see :meth:`JobStore.get` for the fields);
                               expires ``job_retention_s`` after its last change.
- ``job:<id>:recipients``      hash: phone → JSON of the latest ``Resultado``.
- ``job:<id>:inbox``           list: the attachment events and replies of a send (bounded).
- ``job:<id>:phones``          set: the phones a send was addressed to (its recipients).
- ``job:<id>:classes``         hash: recipient class → how many recipients are in it, kept by
                               :meth:`JobStore.update_recipient` (field ``recipients_total`` on
                               the record: how many recipients in all).
- ``jobs:all`` / ``jobs:kind:<kind>``   sorted sets of job ids by creation time.
- ``jobs:status:<status>``     sorted set of job ids by the time they entered it.
- ``jobs:by_message:<idMensaje>`` / ``jobs:by_reference:<ref>``   string → job id.
- ``events``                   stream, one entry per state change (``XADD MAXLEN ~``),
                               trimmed by age too (:meth:`JobStore.trim_events`).

Job ids are checked (:func:`worker.jobs.contract.job_id_problem`: no ``:``) before
any key is built from one: :meth:`JobStore.job_key` raises :class:`InvalidJobId` and
the readers (:meth:`JobStore.get`, :meth:`JobStore.status`, :meth:`JobStore.payload`)
answer None, so ``<id>:inbox`` can never name another job's key. Keys built from a
phone number use its hash (:func:`phone_digest`), never the number.

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

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any, cast

import redis

from certsms.config.settings import Settings
from certsms.worker.errors import JobError
from certsms.worker.jobs.contract import job_id_problem
from certsms.worker.jobs.fields import encode, utc_now_iso
from certsms.worker.jobs.recipients import RecipientChange, supersedes
from certsms.worker.jobs.record import JobRecord, RecipientState
from certsms.worker.jobs.status import RANK, SETTLED, JobStatus
from certsms.worker.jobs.transition import (
    TRANSITION_LUA,
    TransitionResult,
    transition_args,
    transition_result,
)
from certsms.worker.redis_client import wait_for_replicas

__all__ = [
    "RANK",
    "SETTLED",
    "InvalidJobId",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "RecipientChange",
    "RecipientState",
    "TransitionResult",
    "phone_digest",
    "utc_now_iso",
]


#: The fields :meth:`JobStore.head` reads (everything but the payload and unknown fields).
_HEAD_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclass_fields(JobRecord) if f.name not in ("recipients", "other")
)


class InvalidJobId(JobError):
    """Raised when a key would be built from a string that is not a valid job id."""


def phone_digest(phone: str) -> str:
    """The name a phone number has inside Redis key names: sha256 of its digits, 24 hex.

    Key names show up in ``SCAN``, ``MONITOR``, slow logs and memory reports, so they
    never carry the number itself; the namespace acts as the salt's scope (the digest
    only has to be stable within one deployment)."""
    digits = "".join(c for c in str(phone) if c.isdigit())
    return hashlib.sha256(digits.encode()).hexdigest()[:24]


class JobStore:
    """Job records, their indexes and the events stream, in Redis."""

    def __init__(self, redis_client: redis.Redis, settings: Settings) -> None:
        self.redis = redis_client
        self.settings = settings
        self._transition = redis_client.register_script(TRANSITION_LUA)

    # --- keys -------------------------------------------------------------------
    def job_key(self, job_id: str) -> str:
        """The record's hash key; :class:`InvalidJobId` for a string that is no job id."""
        problem = job_id_problem(job_id)
        if problem is not None:
            raise InvalidJobId(f"job id {str(job_id)[:80]!r}: {problem}")
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
            # NX: a reference names one job (the producer claims it first,
            # :meth:`claim_reference`); a raw message never steals it
            pipe.set(self._index("by_reference", reference), job_id, ex=ttl, nx=True)
        self.append_event(
            job_id, "job_created", kind=kind, status=str(status), now=now, client=pipe
        )
        pipe.execute()  # one round trip: record, indexes and the event together
        wait_for_replicas(self.redis, self.settings)
        return True

    def get(self, job_id: str) -> JobRecord | None:
        """The typed record with its recipients; None when absent.

        The producer's payload is not part of it (:meth:`payload` reads it).
        A string that is not a valid job id names no job: None.
        """
        if job_id_problem(job_id) is not None:
            return None
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
        if job_id_problem(job_id) is not None:
            return None
        raw = self.redis.hget(self.job_key(job_id), "payload")
        return None if raw is None else cast(dict[str, Any], json.loads(cast(bytes, raw)))

    def status(self, job_id: str) -> JobStatus | None:
        """Only the status (None for no job, or a string that is not a job id)."""
        if job_id_problem(job_id) is not None:
            return None
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

    def claim_reference(self, reference: str, job_id: str) -> str | None:
        """Make ``reference`` name ``job_id``; the job that holds it instead, or None.

        A reference stays with its job while the job is kept, except when that job
        never reached the provider (``rejected``; or ``failed``/``cancelled``/``dead``
        without an ``idMensaje``) or is gone: then the new job takes it over.
        """
        key = self._index("by_reference", reference)
        if self.redis.set(key, job_id, ex=self.settings.job_retention_s, nx=True):
            return None  # a new reference: one round trip
        free = {JobStatus.REJECTED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DEAD}
        held: dict[str, str] = {}

        def claim(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            holder = cast(bytes, raw).decode() if raw else None
            if holder and holder != job_id and job_id_problem(holder) is None:
                status, idmensaje = cast(
                    list[bytes | None], pipe.hmget(self.job_key(holder), ["status", "idmensaje"])
                )
                never_sent = status is not None and (
                    status.decode() == JobStatus.REJECTED
                    or (JobStatus(status.decode()) in free and not idmensaje)
                )
                if status is not None and not never_sent:
                    held["holder"] = holder
                    return
            pipe.multi()
            pipe.set(key, job_id, ex=self.settings.job_retention_s)

        self.redis.transaction(claim, key)
        return held.get("holder")

    # --- a send's recipients: who they are, how many are in each class ------------
    def phones_key(self, job_id: str) -> str:
        """The set of the phones a send was addressed to (its recipients index)."""
        return self.job_key(job_id) + ":phones"

    def class_counts_key(self, job_id: str) -> str:
        """The hash of recipient class → how many recipients are recorded in it."""
        return self.job_key(job_id) + ":classes"

    def index_recipients(self, job_id: str, phones: Iterable[str], *, fresh: bool = False) -> None:
        """Record whom a send was for and count its recorded recipients by class, once.

        After this, :meth:`is_recipient` and :meth:`recipient_counts` answer in a
        constant number of commands whatever the job's size; :meth:`update_recipient`
        keeps the counts. Atomic against concurrent updates (``WATCH``); a no-op when
        the job is indexed already (field ``recipients_total``). ``fresh=True``: the
        job was just created (no status can be recorded yet): one round trip.
        """
        wanted = {str(p) for p in phones if p}
        job_key, recipients_key = self.job_key(job_id), self.recipients_key(job_id)
        phones_key, counts_key = self.phones_key(job_id), self.class_counts_key(job_id)
        ttl = self.settings.job_retention_s
        if fresh:
            pipe = self.redis.pipeline(transaction=True)
            ordered = sorted(wanted)
            for start in range(0, len(ordered), 1000):
                pipe.sadd(phones_key, *ordered[start : start + 1000])
            pipe.hset(job_key, "recipients_total", str(len(wanted)))
            pipe.expire(phones_key, ttl)
            pipe.execute()
            return

        def build(pipe: redis.client.Pipeline) -> None:
            if pipe.hexists(job_key, "recipients_total") or not pipe.exists(job_key):
                return
            recorded = cast(dict[bytes, bytes], pipe.hgetall(recipients_key))
            counts: dict[str, int] = {}
            for raw in recorded.values():
                klass = str(json.loads(raw).get("status_class", "unknown"))
                counts[klass] = counts.get(klass, 0) + 1
            everyone = sorted(wanted | {phone.decode() for phone in recorded})
            pipe.multi()
            pipe.delete(phones_key, counts_key)
            for start in range(0, len(everyone), 1000):
                pipe.sadd(phones_key, *everyone[start : start + 1000])
            if counts:
                pipe.hset(counts_key, mapping=cast(Any, counts))
            pipe.hset(job_key, "recipients_total", str(len(everyone)))
            pipe.expire(phones_key, ttl)
            pipe.expire(counts_key, ttl)

        self.redis.transaction(build, job_key, recipients_key)

    def is_recipient(self, job_id: str, phone: str) -> bool | None:
        """Whether ``phone`` is one of the send's recipients; None when not indexed yet."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hexists(self.job_key(job_id), "recipients_total")
        pipe.sismember(self.phones_key(job_id), phone)
        indexed, member = pipe.execute()
        return bool(member) if indexed else None

    def recipient_counts(self, job_id: str) -> tuple[int | None, dict[str, int]]:
        """``(recipients in all, recorded recipients per class)``; ``(None, {})`` when
        the job is not indexed yet (:meth:`index_recipients`)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.job_key(job_id), "recipients_total")
        pipe.hgetall(self.class_counts_key(job_id))
        total, counts = pipe.execute()
        if total is None:
            return None, {}
        return int(total), {k.decode(): int(v) for k, v in counts.items() if int(v) > 0}

    def recipient(self, job_id: str, phone: str) -> RecipientState | None:
        """One recipient's recorded state (None: no status yet)."""
        raw = self.redis.hget(self.recipients_key(job_id), phone)
        return None if raw is None else RecipientState.from_json(cast(bytes, raw))

    def head(self, job_id: str) -> JobRecord | None:
        """The record without its recipients, payload or unknown fields: what callbacks
        read, in one command of a size that does not grow with the job."""
        if job_id_problem(job_id) is not None:
            return None
        raw = cast(list[bytes | None], self.redis.hmget(self.job_key(job_id), list(_HEAD_FIELDS)))
        found = {name.encode(): value for name, value in zip(_HEAD_FIELDS, raw, strict=True)}
        return JobRecord.from_hash({k: v for k, v in found.items() if v is not None}, {})

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
        result = transition_result(cast(list[Any], raw))
        if result:
            wait_for_replicas(self.redis, self.settings)
        return result

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

    def status_history(
        self, *, now: float, bucket_s: float, buckets: int
    ) -> dict[JobStatus, list[int]]:
        """Jobs now in each status, counted by when they entered it: ``buckets`` slots of
        ``bucket_s`` seconds ending at ``now`` (oldest first); one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        start = now - bucket_s * buckets
        for status in JobStatus:
            for n in range(buckets):
                low, high = start + n * bucket_s, start + (n + 1) * bucket_s
                pipe.zcount(self._index("status", str(status)), f"({low!r}", repr(high))
        counts = iter(cast(list[int], pipe.execute()))
        return {status: [int(next(counts)) for _ in range(buckets)] for status in JobStatus}

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
            counts_key = self.class_counts_key(job_id)  # see index_recipients
            if old:
                pipe.hincrby(counts_key, str(old.get("status_class")), -1)
            pipe.hincrby(counts_key, klass, 1)
            pipe.expire(counts_key, self.settings.job_retention_s)
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

    def trim_events(self, *, now: float) -> int:
        """Drop events older than ``events_max_age_s`` (``now``: epoch seconds on Redis'
        clock, which also stamps the entry ids); how many went (``XTRIM MINID ~``, so
        whole stream nodes go at once and a few older entries may stay a while)."""
        cutoff_ms = max(0, int((now - self.settings.events_max_age_s) * 1000))
        return int(
            cast(
                Any,
                self.redis.xtrim(self.events_key, minid=f"{cutoff_ms}-0", approximate=True),
            )
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

    def page_jobs(
        self,
        *,
        status: JobStatus | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 50,
        match: Callable[[JobRecord], bool] | None = None,
        scan_limit: int = 10_000,
    ) -> tuple[list[JobRecord], tuple[float, str] | None]:
        """One page of jobs, newest first, and the cursor of the next page (None: last).

        Times are epoch seconds: of creation, or with ``status`` of entering that status.
        ``after`` is the previous page's cursor ``(score, job id)``; ``match`` filters
        records (e.g. by phone), reading at most ``scan_limit`` ids per page.
        """
        if status is not None:
            index = self._index("status", str(status))
        elif kind is not None:
            index = self._index("kind", kind)
        else:
            index = self._index("all")
        high: float | str = "+inf" if until is None else until
        if after is not None:
            high = after[0] if until is None else min(until, after[0])
        low: float | str = "-inf" if since is None else since
        found: list[JobRecord] = []
        offset, scanned, chunk = 0, 0, max(limit * 2, 100)
        last: tuple[float, str] | None = None
        while scanned < scan_limit:
            rows = cast(
                list[tuple[bytes, float]],
                self.redis.zrevrangebyscore(
                    index, high, low, start=offset, num=chunk, withscores=True
                ),
            )
            if not rows:
                return found, None
            offset += len(rows)
            for raw, score in rows:
                job_id = raw.decode()
                # members with equal scores come in descending order: skip up to the cursor
                if after is not None and score == after[0] and job_id >= after[1]:
                    continue
                scanned += 1
                last = (score, job_id)
                record = self.get(job_id)
                if record is None or (kind is not None and record.kind != kind):
                    continue
                if status is not None and record.status != status:
                    continue
                if match is not None and not match(record):
                    continue
                found.append(record)
                if len(found) >= limit:
                    return found, last
                if scanned >= scan_limit:
                    break
        return found, last

    def job_events(self, job_id: str, *, since: float | None = None) -> list[dict[str, str]]:
        """Every event of one job still in the stream, oldest first (read from ``since``,
        epoch seconds, e.g. the job's creation, so old entries are not scanned)."""
        start = "-" if since is None else f"{int(since * 1000)}-0"
        out: list[dict[str, str]] = []
        while True:
            rows = cast(list[Any], self.redis.xrange(self.events_key, start, "+", count=1000))
            for entry_id, data in rows:
                item = {k.decode(): v.decode() for k, v in data.items()}
                if item.get("job_id") == job_id:
                    item["id"] = entry_id.decode()
                    out.append(item)
            if len(rows) < 1000:
                return out
            start = "(" + rows[-1][0].decode()

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status index (for ``certsms jobs --json``)."""
        pipe = self.redis.pipeline()
        for status in JobStatus:
            pipe.zcard(self._index("status", str(status)))
        return {str(s): int(n) for s, n in zip(JobStatus, pipe.execute(), strict=True) if n}
