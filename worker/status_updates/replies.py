"""Attachment events, replies and unrecognised callbacks: recorded on their job and in
the events stream.

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
from typing import Any

import structlog

from certsms.mensatek.callbacks import (
    AttachmentEvent,
    InboundReply,
    StatusCallback,
    UnrecognisedCallback,
    read_callback,
)
from certsms.worker.jobs.store import JobStore
from certsms.worker.status_updates._shared import OUTCOME_PENDING, Enqueue, find_job, match_job
from certsms.worker.status_updates.kept import KeptCallbacks
from certsms.worker.status_updates.recipients import Outcome, apply_recipient_status

log = structlog.get_logger(__name__)

_INBOX_MAX = 1000


def _first_time(store: JobStore, fields: Mapping[str, str]) -> bool:
    """Whether this exact callback body is new (duplicates of events are recorded once)."""
    canonical = json.dumps({k.lower(): v for k, v in fields.items()}, sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    key = store.settings.key("callback-seen", digest)
    return bool(store.redis.set(key, "1", nx=True, ex=store.settings.job_retention_s))


def _record_on_job(store: JobStore, job_id: str, kind: str, entry: Mapping[str, Any]) -> None:
    store.add_to_inbox(job_id, {"type": kind, **entry}, max_entries=_INBOX_MAX)
    store.set_fields(job_id, **{f"last_{kind}": json.dumps(dict(entry), default=str)})


def _record(
    store: JobStore,
    reference: str | None,
    kind: str,
    event: str,
    entry: Mapping[str, Any],
    fields: Mapping[str, str] | None = None,
) -> str | None:
    """Find the job (``entry["idmensaje"]``, else ``reference``), record on it and in the
    stream; with no job (yet), keep the body (``fields``) for a later replay."""
    match = match_job(store, message_id=entry["idmensaje"], reference=reference)
    if match.job_id:
        _record_on_job(store, match.job_id, kind, entry)
        store.append_event(match.job_id, event, **entry)
        return match.job_id
    if fields is not None:
        KeptCallbacks(store.redis, store.settings).keep(
            fields, message_id=entry["idmensaje"], reference=reference, reason=match.reason
        )
    log.warning(
        "callback_unmatched", service=kind, idmensaje=entry["idmensaje"], reason=match.reason
    )
    store.append_event(None, "callback_unmatched", service=kind, reason=match.reason, **entry)
    return None


def inbox(store: JobStore, job_id: str) -> list[dict[str, Any]]:
    """The attachment events and replies recorded on a job, oldest first."""
    return store.inbox(job_id)


def apply_attachment_event(
    store: JobStore, event: AttachmentEvent, fields: Mapping[str, str] | None = None
) -> str | None:
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
    job_id = _record(store, event.reference, "attachment_event", "attachment_event", entry, fields)
    log.info("attachment_event_recorded", job_id=job_id, event_type=event.event_type)
    return job_id


def apply_reply(
    store: JobStore, reply: InboundReply, fields: Mapping[str, str] | None = None
) -> str | None:
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
    job_id = _record(store, reply.reference, "reply", "reply_received", entry, fields)
    log.info("reply_recorded", job_id=job_id, certified=reply.certified)
    return job_id


def apply_unrecognised(
    store: JobStore,
    callback: UnrecognisedCallback,
    fields: Mapping[str, str],
    warnings: list[str],
) -> str | None:
    """Keep a callback certsms cannot apply: its raw body and why, on its job (found by
    any message id or the reference) and as a ``callback_unrecognised`` event."""
    entry: dict[str, Any] = {
        "idmensaje": callback.message_id,
        "service": callback.service,
        "reason": callback.reason,
        "field": callback.field,
        "warnings": warnings,
        "body": dict(fields),
    }
    job_id = find_job(store, message_id=callback.message_id, reference=callback.reference)
    if job_id:
        _record_on_job(store, job_id, "unrecognised", entry)
    store.append_event(
        job_id,
        "callback_unrecognised",
        idmensaje=callback.message_id,
        service=callback.service,
        reason=callback.reason,
        body=json.dumps(dict(fields), sort_keys=True, ensure_ascii=False),
    )
    log.warning(
        "callback_unrecognised",
        job_id=job_id,
        service=(callback.service or "")[:40],
        reason=callback.reason,
        field=callback.field,
    )
    return job_id


def process_callback_fields(
    store: JobStore, fields: Mapping[str, str], *, enqueue: Enqueue, replay: bool = False
) -> Outcome | str | None:
    """Read a queued callback body and apply it (what the ``process_callback`` actor runs).

    Never refuses a body (:func:`~mensatek.callbacks.read_callback`): an
    unrecognised one is kept on its job, if one can be found, and in the stream
    (:func:`apply_unrecognised`), and changes no status. One that cannot be placed
    yet is kept (:mod:`worker.status_updates.kept`) and applied again by
    :func:`replay_kept`; ``replay=True`` is that second application.
    """
    callback, warnings = read_callback(fields)
    if isinstance(callback, UnrecognisedCallback):
        if not _first_time(store, fields):
            return None
        return apply_unrecognised(store, callback, fields, warnings)
    if isinstance(callback, StatusCallback):
        outcome = apply_recipient_status(
            store,
            message_id=callback.message_id,
            reference=callback.reference,
            phone=callback.phone,
            result_code=callback.result_code,
            at=callback.reported_at,
            source="callback",
            enqueue=enqueue,
            fields=fields,
        )
        if outcome.kept and not replay:
            _replay_if_placeable(store, callback.message_id, callback.reference, enqueue)
        return outcome
    if not replay and not _first_time(store, fields):
        log.info("callback_duplicate_ignored", service=callback.kind)
        return None
    if isinstance(callback, AttachmentEvent):
        job_id = apply_attachment_event(store, callback, fields)
    else:
        job_id = apply_reply(store, callback, fields)
    if job_id is None and not replay:
        _replay_if_placeable(store, callback.message_id, callback.reference, enqueue)
    return job_id


def _replay_if_placeable(
    store: JobStore, message_id: int | None, reference: str | None, enqueue: Enqueue
) -> None:
    """Close the race between keeping a body and its job learning its ``idMensaje``: if
    the job can take it now, whoever gets there (here, or the job's own replay) applies it."""
    match = match_job(store, message_id=message_id, reference=reference)
    head = store.head(match.job_id) if match.job_id else None
    if head is not None and (head.status not in OUTCOME_PENDING or head.idmensaje):
        replay_kept(store, head.id, enqueue=enqueue)


def replay_kept(store: JobStore, job_id: str, *, enqueue: Enqueue) -> int:
    """Apply the callbacks kept for this send (under its ``idMensaje`` or reference);
    how many were taken. Call it when a send learns its ``idMensaje`` or turns
    ``uncertain``: a callback that overtook the send's answer then reconciles it."""
    head = store.head(job_id)
    if head is None or head.kind != "send":
        return 0
    taken = KeptCallbacks(store.redis, store.settings).take(
        message_id=head.idmensaje, reference=head.reference
    )
    for kept in taken:
        process_callback_fields(store, kept.fields, enqueue=enqueue, replay=True)
    if taken:
        log.info("kept_callbacks_replayed", job_id=job_id, count=len(taken))
    return len(taken)
