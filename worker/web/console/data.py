"""What the console's pages show, read from Redis and the evidence store.

Plain functions of a :class:`~worker.web.context.WebContext` (no Flask here), so the
pages stay thin and the same numbers can be read from a test.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from certsms.config.logging import mask_phone
from certsms.worker.evidence import EvidenceStore
from certsms.worker.guard import ProviderGuard
from certsms.worker.jobs.record import JobRecord
from certsms.worker.jobs.status import JobStatus
from certsms.worker.queue_state import QueueDepth, queue_depths
from certsms.worker.web.context import WebContext

_JOB_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_DIGITS_RE = re.compile(r"\d+")


@dataclass(frozen=True)
class Overview:
    """The overview page's numbers."""

    queues: list[QueueDepth]
    statuses: dict[str, int]
    guard: dict[str, Any]
    evidence_waiting: int
    evidence_oldest_s: float | None
    history: dict[str, list[int]]
    history_bucket_h: int


#: The overview's "over time" table: the last 24 h in 3-hour slots.
HISTORY_BUCKET_H = 3
HISTORY_BUCKETS = 8


def overview(context: WebContext, *, now_s: float | None = None) -> Overview:
    """Queue depths, jobs by status, the guard and how far evidence lags behind."""
    now_s = time.time() if now_s is None else now_s
    statuses = context.store.counts()
    waiting = context.store.entered_status(JobStatus.CERTIFIED, limit=1)
    oldest = now_s - waiting[0][1] if waiting else None
    history = context.store.status_history(
        now=now_s, bucket_s=HISTORY_BUCKET_H * 3600.0, buckets=HISTORY_BUCKETS
    )
    return Overview(
        queues=queue_depths(context.redis, context.settings),
        statuses={str(s): statuses.get(str(s), 0) for s in JobStatus},
        guard=guard_snapshot(context),
        evidence_waiting=statuses.get(str(JobStatus.CERTIFIED), 0),
        evidence_oldest_s=oldest,
        history={str(s): row for s, row in history.items() if any(row)},
        history_bucket_h=HISTORY_BUCKET_H,
    )


def guard_snapshot(context: WebContext) -> dict[str, Any]:
    """The provider guard's shared state (as ``certsms guard --json``)."""
    return dict(ProviderGuard(context.redis, context.settings).snapshot())


def show_phone(phone: str, *, sees_phones: bool) -> str:
    """The phone as this viewer may see it (masked to its last 3 digits otherwise)."""
    return phone if sees_phones else mask_phone(phone)


# --- jobs search ---------------------------------------------------------------------
class SearchError(ValueError):
    """Raised when a search field is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class JobPage:
    """One page of the jobs list."""

    jobs: list[JobRecord]
    next_cursor: str | None


def encode_cursor(position: tuple[float, str]) -> str:
    """An opaque cursor for the next page."""
    return base64.urlsafe_b64encode(f"{position[0]!r}|{position[1]}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The position an :func:`encode_cursor` cursor stands for; ``SearchError`` if not one."""
    try:
        score, _, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        if not job_id:
            raise ValueError
        return float(score), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SearchError("cursor", "is not a cursor this API returned") from None


def parse_time(field: str, text: str | None) -> float | None:
    """An ISO-8601 time (a naive one is UTC) → epoch seconds; ``SearchError`` if not one."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(field, "must be an ISO-8601 time like 2026-12-01T10:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def find_jobs(
    context: WebContext,
    *,
    status: str | None = None,
    kind: str | None = None,
    reference: str | None = None,
    idmensaje: str | None = None,
    phone: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> JobPage:
    """Jobs matching every given filter, newest first (``SearchError`` names a bad one).

    ``reference`` and ``idmensaje`` name at most one job each (their indexes);
    ``phone`` matches recipients whose number ends with the given digits (3 or more),
    so a masked number's visible digits are enough.
    """
    store = context.store
    job_status = None
    if status:
        try:
            job_status = JobStatus(status)
        except ValueError:
            raise SearchError("status", f"unknown status {status[:30]!r}") from None
    if not 1 <= limit <= 200:
        raise SearchError("limit", "must be between 1 and 200")
    if idmensaje and not idmensaje.strip().isdigit():
        raise SearchError("idMensaje", "must be the provider's numeric message id")
    digits = "".join(_DIGITS_RE.findall(phone or ""))
    if phone and len(digits) < 3:
        raise SearchError("phone", "give at least the last 3 digits")
    since_s, until_s = parse_time("since", since), parse_time("until", until)
    after = decode_cursor(cursor) if cursor else None
    single: str | None = None
    if reference or idmensaje:
        ids = set()
        if reference:
            ids.add(store.find_by_reference(reference.strip()))
        if idmensaje:
            ids.add(store.find_by_message_id(idmensaje.strip()))
        single = ids.pop() if len(ids) == 1 else None
        record = store.get(single) if single else None
        matched = (
            record is not None
            and not after
            and _matches(record, job_status, kind, digits, since_s, until_s)
        )
        return JobPage([record] if matched and record else [], None)

    def match(record: JobRecord) -> bool:
        return _matches(record, None, None, digits, None, None)

    records, position = store.page_jobs(
        status=job_status,
        kind=kind or None,
        since=since_s,
        until=until_s,
        after=after,
        limit=limit,
        match=match if digits else None,
    )
    return JobPage(records, encode_cursor(position) if position else None)


def _matches(
    record: JobRecord,
    status: JobStatus | None,
    kind: str | None,
    digits: str,
    since_s: float | None,
    until_s: float | None,
) -> bool:
    if status is not None and record.status != status:
        return False
    if kind and record.kind != kind:
        return False
    if digits and not any(p.endswith(digits) for p in record.recipients):
        return False
    created = parse_time("created_at", record.created_at) if record.created_at else None
    if since_s is not None and (created is None or created < since_s):
        return False
    return not (until_s is not None and (created is None or created > until_s))


def smart_query(text: str) -> dict[str, str]:
    """The console's one search box → filters: a job id, an idMensaje (digits, up to 10),
    a phone (11+ digits or a masked number) or else a reference."""
    text = text.strip()
    if not text:
        return {}
    if _JOB_ID_RE.match(text):
        return {"job_id": text}
    if text.isdigit() and len(text) <= 10:
        return {"idmensaje": text}
    if "*" in text or (text.lstrip("+").isdigit() and len(text.lstrip("+")) >= 11):
        return {"phone": text}
    return {"reference": text}


def evidence_of(context: WebContext, record: JobRecord) -> list[dict[str, Any]]:
    """The manifest entries of a job's stored files (oldest first)."""
    return EvidenceStore(context.settings).entries(job_id=record.id)
