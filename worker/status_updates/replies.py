"""Attachment events and replies: recorded on their job and in the events stream.

:func:`process_callback_fields` is what the ``process_callback`` actor runs for a
queued callback body: a recipient status goes to
:func:`~worker.status_updates.recipients.apply_recipient_status`; an attachment
event (``EVENTOSSMSCERTIFICADO``) or a reply (``SMSRECIBIDO``) is recorded once
(a duplicate body is ignored) in the job's inbox (bounded to the latest entries).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, cast

import structlog

from mensatek.callbacks import (
    AttachmentEvent,
    InboundReply,
    StatusCallback,
    parse_callback,
)
from worker.jobs.store import JobStore
from worker.status_updates._shared import Enqueue, find_job
from worker.status_updates.recipients import Outcome, apply_recipient_status

log = structlog.get_logger(__name__)

_INBOX_MAX = 1000


def _first_time(store: JobStore, fields: Mapping[str, str]) -> bool:
    """Whether this exact callback body is new (duplicates of events are recorded once)."""
    canonical = json.dumps({k.lower(): v for k, v in fields.items()}, sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    key = store.settings.key("callback-seen", digest)
    return bool(store.redis.set(key, "1", nx=True, ex=store.settings.job_retention_s))


def _record_on_job(store: JobStore, job_id: str, kind: str, entry: Mapping[str, Any]) -> None:
    key = store.settings.key("job", job_id, "inbox")
    pipe = store.redis.pipeline(transaction=True)
    pipe.rpush(key, json.dumps({"type": kind, **entry}, sort_keys=True, default=str))
    pipe.ltrim(key, -_INBOX_MAX, -1)
    pipe.expire(key, store.settings.job_retention_s)
    pipe.execute()
    store.set_fields(job_id, **{f"last_{kind}": json.dumps(dict(entry), default=str)})


def _record(
    store: JobStore, reference: str | None, kind: str, event: str, entry: Mapping[str, Any]
) -> str | None:
    """Find the job (``entry["idmensaje"]``, else ``reference``), record on it and in the stream."""
    job_id = find_job(store, message_id=entry["idmensaje"], reference=reference)
    if job_id:
        _record_on_job(store, job_id, kind, entry)
    store.append_event(job_id, event, **entry)
    return job_id


def inbox(store: JobStore, job_id: str) -> list[dict[str, Any]]:
    """The attachment events and replies recorded on a job, oldest first."""
    raw = store.redis.lrange(store.settings.key("job", job_id, "inbox"), 0, -1)
    return [json.loads(item) for item in cast(list[bytes], raw)]


def apply_attachment_event(store: JobStore, event: AttachmentEvent) -> str | None:
    """Record an ``EVENTOSSMSCERTIFICADO`` on its job and in the stream; the job id."""
    entry: dict[str, Any] = {
        "idmensaje": event.message_id,
        "phone": event.phone,
        "event_type": event.event_type,
        "attachment_type": event.attachment_type,
        "file": event.file_name,
        "at": event.at.isoformat() if event.at else None,
        "value": event.value,
        "ip": event.ip,
        "port": event.port,
    }
    job_id = _record(store, event.reference, "attachment_event", "attachment_event", entry)
    log.info("attachment_event_recorded", job_id=job_id, event_type=event.event_type)
    return job_id


def apply_reply(store: JobStore, reply: InboundReply) -> str | None:
    """Record an ``SMSRECIBIDO`` on the job it answers (by ``idM``) and in the stream."""
    entry: dict[str, Any] = {
        "idmensaje": reply.message_id,
        "phone": reply.sender,
        "receiver": reply.receiver,
        "text": reply.text,
        "certified": reply.certified,
        "at": reply.received_at.isoformat() if reply.received_at else None,
        "internal_id": reply.internal_id,
    }
    job_id = _record(store, reply.reference, "reply", "reply_received", entry)
    log.info("reply_recorded", job_id=job_id, certified=reply.certified)
    return job_id


def process_callback_fields(
    store: JobStore, fields: Mapping[str, str], *, enqueue: Enqueue
) -> Outcome | str | None:
    """Parse a queued callback body and apply it (what the ``process_callback`` actor runs).

    Raises :class:`~mensatek.callbacks.CallbackInvalid` for a body that does not
    parse (the web validated it already, so this means a broken message).
    """
    callback = parse_callback(fields)
    if isinstance(callback, StatusCallback):
        return apply_recipient_status(
            store,
            message_id=callback.message_id,
            reference=callback.reference,
            phone=callback.phone,
            result_code=callback.result_code,
            at=callback.reported_at,
            source="callback",
            enqueue=enqueue,
        )
    if not _first_time(store, fields):
        log.info("callback_duplicate_ignored", service=callback.kind)
        return None
    if isinstance(callback, AttachmentEvent):
        return apply_attachment_event(store, callback)
    return apply_reply(store, callback)
