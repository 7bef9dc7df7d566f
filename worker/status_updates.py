"""Recipient status updates: callbacks and the report poller both land here.

:func:`apply_recipient_status` is the one way a recipient's ``Resultado`` enters a job:

1. find the send job by ``idMensaje``, else by ``Referencia``;
2. reconcile an ``uncertain`` send: the provider knows the message, so it was sent
   (→ ``sent`` with that ``idMensaje``);
3. record the recipient's code forward-only (:meth:`JobStore.update_recipient`:
   ``pending``/``unknown`` < ``delivered`` < final classes; a late, duplicate or
   out-of-order update changes nothing; a final class is never replaced);
4. derive the job's status from all its recipients (:func:`derive_job_status`) and
   move it forward (never back);
5. when the recipient is certified, enqueue exactly one certificate download for
   (message, phone), however many times and however concurrently the status arrives
   (``SET NX`` on ``<ns>:certificate-trigger:<idMensaje>:<phone>``).

Multi-recipient jobs (documented in README): a job is ``delivered`` when every
recipient is delivered or final; ``certified`` when every recipient is final and at
least one is certified; ``failed`` (or ``cancelled`` when all were cancelled) when
every recipient is final and none is certified; ``evidence_stored`` when it is
certified and every certified recipient's certificate is in the evidence store.
Recipients the job sent to but that have no status yet count as pending.

:func:`certificate_downloaded` is what the certificate actor calls with the ZIP the
client fetched: it stores it (:class:`~worker.evidence.EvidenceStore`), and completes
the job (``evidence_stored`` and, when asked, deletion of the library files the
message used) via :func:`complete_evidence`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import structlog

from mensatek.status import StatusClass, classify
from worker.evidence import EvidenceStore, StoredEvidence
from worker.jobs.store import RANK, JobStatus, JobStore, RecipientChange
from worker.web.callback_schema import (
    AttachmentEvent,
    InboundReply,
    StatusCallback,
    parse_callback,
)

log = structlog.get_logger(__name__)

Enqueue = Callable[[str, Mapping[str, Any], str | None], str]
"""``(kind, payload, idempotency_key) -> job id``: the producer API's generic enqueue."""

FINAL_CLASSES = frozenset(
    {StatusClass.CERTIFIED, StatusClass.FAILED, StatusClass.CANCELLED, StatusClass.EXPIRED}
)
#: Job statuses whose message reached the provider (where recipient states may drive it).
_SENT_STATUSES = frozenset(
    {JobStatus.SENT, JobStatus.SCHEDULED, JobStatus.DELIVERED, JobStatus.CERTIFIED}
)
DELETE_OPTION_KEYS = ("delete_files_after_certificate", "autoborrado")
"""Where a send job asks for its library files to be deleted once certified."""
_INBOX_MAX = 1000


def _default_enqueue(kind: str, payload: Mapping[str, Any], idempotency_key: str | None) -> str:
    from tasks import enqueue

    return str(enqueue(kind, payload, idempotency_key=idempotency_key))


@dataclass(frozen=True)
class Outcome:
    """What :func:`apply_recipient_status` did."""

    job_id: str | None
    status_class: StatusClass
    recipient: RecipientChange | None = None
    reconciled: bool = False
    job_status: str | None = None  # after the update
    certificate_job_id: str | None = None  # set when this call enqueued the download

    @property
    def found(self) -> bool:
        """Whether the update matched a job."""
        return self.job_id is not None


def find_job(store: JobStore, *, message_id: int | None, reference: str | None) -> str | None:
    """The send job of ``idMensaje``, else of ``Referencia``."""
    if message_id:
        job_id = store.find_by_message_id(message_id)
        if job_id:
            return job_id
    if reference:
        return store.find_by_reference(reference)
    return None


def _lower_keys(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in payload.items()}


def expected_phones(payload: Mapping[str, Any] | None) -> set[str]:
    """The recipients' phones named in a send payload (any accepted shape), digits only."""
    if not payload:
        return set()
    keys = _lower_keys(payload)
    raw = keys.get("destinatarios", keys.get("recipients"))
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                raw = []
        else:
            raw = [part for part in text.replace(",", ";").split(";") if part.strip()]
    phones: set[str] = set()
    for item in raw if isinstance(raw, list | tuple) else []:
        value = item
        if isinstance(item, Mapping):
            fields = _lower_keys(item)
            value = fields.get("movil", fields.get("phone", ""))
        digits = "".join(c for c in str(value) if c.isdigit())
        if digits.startswith("00"):
            digits = digits[2:]
        if digits:
            phones.add(digits)
    return phones


def derive_job_status(classes: list[StatusClass]) -> JobStatus | None:
    """The job status its recipients' classes justify, or None (still pending)."""
    if not classes:
        return None
    if all(c in FINAL_CLASSES for c in classes):
        if StatusClass.CERTIFIED in classes:
            return JobStatus.CERTIFIED
        if all(c is StatusClass.CANCELLED for c in classes):
            return JobStatus.CANCELLED
        return JobStatus.FAILED
    if all(c is StatusClass.DELIVERED or c in FINAL_CLASSES for c in classes):
        return JobStatus.DELIVERED
    return None


def _recipient_classes(store: JobStore, job_id: str, record: Mapping[str, Any]) -> dict[str, str]:
    """phone → class for every recipient, ``pending`` for those without a status yet."""
    classes = {
        phone: str(entry.get("status_class", "pending"))
        for phone, entry in (record.get("recipients") or {}).items()
    }
    for phone in expected_phones(store.payload(job_id)):
        classes.setdefault(phone, StatusClass.PENDING.value)
    return classes


def refresh_job_status(store: JobStore, job_id: str, *, source: str = "recompute") -> str | None:
    """Move the job forward to what its recipients justify; returns its status after.

    Safe to call at any time and from anywhere (e.g. by the send actor right after it
    records ``sent``, in case callbacks overtook it): it only moves forward and only
    once the job's message is known to have reached the provider.
    """
    record = store.get(job_id)
    if record is None:
        return None
    current = JobStatus(record["status"])
    if current not in _SENT_STATUSES:
        return current.value
    classes = _recipient_classes(store, job_id, record)
    target = derive_job_status([StatusClass(c) for c in classes.values()])
    if target is not None and RANK[target] > RANK[current]:
        fields: dict[str, Any] = {"source": source}
        if target is JobStatus.FAILED:
            fields["reason"] = "no recipient was certified"
        if store.transition(job_id, target, **fields):
            log.info("job_status_derived", job_id=job_id, status=target.value, source=source)
            current = target
        else:
            current = store.status(job_id) or current
    if current is JobStatus.CERTIFIED:
        complete_evidence(store, job_id)
        current = store.status(job_id) or current
    return current.value


def apply_recipient_status(
    store: JobStore,
    *,
    message_id: int | None,
    reference: str | None,
    phone: str,
    result_code: int,
    at: datetime | None,
    source: str,
    enqueue: Enqueue | None = None,
) -> Outcome:
    """Apply one recipient status (see the module docstring); idempotent and concurrent-safe."""
    settings = store.settings
    status_class = classify(result_code, certified_codes=settings.certified_codes)
    job_id = find_job(store, message_id=message_id, reference=reference)
    if job_id is None:
        log.warning(
            "recipient_status_unmatched",
            message_id=message_id,
            reference=reference,
            phone=phone,
            result_code=result_code,
            source=source,
        )
        store.append_event(
            None,
            "recipient_status_unmatched",
            idmensaje=message_id,
            reference=reference,
            phone=phone,
            result_code=result_code,
            status_class=status_class.value,
            source=source,
        )
        return Outcome(job_id=None, status_class=status_class)
    if source == "callback":  # the report poller (status_source=both) polls silent jobs only
        store.set_fields(job_id, last_callback_ts=repr(time.time()))
    record = store.get(job_id) or {}
    reconciled = False
    if message_id and record.get("status") == JobStatus.UNCERTAIN.value:
        reconciled = bool(
            store.transition(
                job_id,
                JobStatus.SENT,
                expect=[JobStatus.UNCERTAIN],
                event="job_reconciled",
                idmensaje=message_id,
                reason=f"provider reported the message ({source})",
                source=source,
            )
        )
        if reconciled:
            log.info("uncertain_send_reconciled", job_id=job_id, message_id=message_id)
    known = message_id or record.get("idmensaje")
    previous = (record.get("recipients") or {}).get(phone) or {}
    if previous.get("status_class") in FINAL_CLASSES and previous.get("result_code") != result_code:
        # a final class is never replaced (e.g. a stale failure after certified)
        change = RecipientChange(
            phone=phone,
            changed=False,
            previous_code=int(previous["result_code"]),
            previous_class=str(previous["status_class"]),
            result_code=int(result_code),
            status_class=status_class.value,
        )
    else:
        change = store.update_recipient(
            job_id,
            phone,
            result_code=result_code,
            status_class=status_class.value,
            at=at,
            source=source,
        )
    if not change.changed:
        log.info(
            "recipient_status_ignored",
            job_id=job_id,
            phone=phone,
            result_code=result_code,
            current_code=change.previous_code,
            source=source,
        )
    job_status = refresh_job_status(store, job_id, source=source)
    certificate_job_id = None
    if status_class is StatusClass.CERTIFIED and known:
        # whether or not this update changed anything: a trigger lost to a crash
        # between update and enqueue is redone by the next (duplicate) callback
        certificate_job_id = trigger_certificate(
            store, job_id=job_id, message_id=int(known), phone=phone, enqueue=enqueue
        )
    return Outcome(
        job_id=job_id,
        status_class=status_class,
        recipient=change,
        reconciled=reconciled,
        job_status=job_status,
        certificate_job_id=certificate_job_id,
    )


def certificate_trigger_key(store: JobStore, message_id: int | str, phone: str) -> str:
    """The ``SET NX`` marker that makes a certificate download happen once."""
    return store.settings.key("certificate-trigger", str(message_id), phone)


def trigger_certificate(
    store: JobStore,
    *,
    job_id: str | None,
    message_id: int,
    phone: str,
    enqueue: Enqueue | None = None,
) -> str | None:
    """Enqueue the certificate download of (message, phone) unless already enqueued.

    Returns the certificate job's id when this call enqueued it, else None. If the
    enqueue fails the marker is removed, so the next attempt can try again.
    """
    key = certificate_trigger_key(store, message_id, phone)
    ttl_s = max(store.settings.job_retention_s, store.settings.evidence_give_up_s)
    if not store.redis.set(key, job_id or "-", nx=True, ex=ttl_s):
        return None
    try:
        cert_job_id = (enqueue or _default_enqueue)(
            "certificate",
            {"Idmensaje": message_id, "Telefono": phone},
            f"certificate:{message_id}:{phone}",
        )
    except BaseException:
        store.redis.delete(key)
        raise
    store.redis.set(key, cert_job_id, xx=True, keepttl=True)
    store.append_event(
        job_id,
        "certificate_download_enqueued",
        idmensaje=message_id,
        phone=phone,
        certificate_job_id=cert_job_id,
    )
    log.info(
        "certificate_download_enqueued",
        job_id=job_id,
        message_id=message_id,
        phone=phone,
        certificate_job_id=cert_job_id,
    )
    return cert_job_id


# --- evidence -----------------------------------------------------------------------------
def certificate_downloaded(
    store: JobStore,
    *,
    message_id: int | str,
    phone: str,
    path: Path,
    sha256: str | None = None,
    evidence: EvidenceStore | None = None,
    enqueue: Enqueue | None = None,
) -> StoredEvidence:
    """Store a downloaded certificate ZIP and complete its send job when it was the last.

    Called by the certificate actor with the client's ``CertificateResult.path`` and
    ``.sha256``; raises :class:`~worker.evidence.EvidenceError` for a bad file.
    """
    evidence = evidence or EvidenceStore(store.settings)
    job_id = store.find_by_message_id(message_id)
    stored = evidence.store(
        path, message_id=message_id, phone=phone, job_id=job_id, expected_sha256=sha256
    )
    if stored.outcome != "identical":
        store.append_event(
            job_id,
            "certificate_stored" if stored.outcome == "stored" else "certificate_conflict",
            idmensaje=message_id,
            phone=phone,
            sha256=stored.sha256,
            size_bytes=stored.size_bytes,
            path=str(stored.path),
        )
    if job_id is not None:
        complete_evidence(store, job_id, evidence=evidence, enqueue=enqueue)
    return stored


def complete_evidence(
    store: JobStore,
    job_id: str,
    *,
    evidence: EvidenceStore | None = None,
    enqueue: Enqueue | None = None,
) -> bool:
    """``certified`` → ``evidence_stored`` once every certified recipient's ZIP is stored.

    The call that makes the transition also deletes the message's library files when
    the job asked for it (only now: the provider needs a file until the certificate
    exists). Returns whether this call made the transition.
    """
    record = store.get(job_id)
    if record is None or record.get("status") != JobStatus.CERTIFIED.value:
        return False
    message_id = record.get("idmensaje")
    if not message_id:
        return False
    evidence = evidence or EvidenceStore(store.settings)
    certified = [
        phone
        for phone, entry in (record.get("recipients") or {}).items()
        if entry.get("status_class") == StatusClass.CERTIFIED.value
    ]
    if not certified or not all(evidence.has(message_id, phone) for phone in certified):
        return False
    done = bool(
        store.transition(
            job_id,
            JobStatus.EVIDENCE_STORED,
            evidence_dir=str(evidence.path_for(message_id, certified[0]).parent),
            source="evidence",
        )
    )
    if done:
        log.info("job_evidence_stored", job_id=job_id, message_id=message_id)
        delete_library_files(store, job_id, enqueue=enqueue)
    return done


def library_files_to_delete(payload: Mapping[str, Any] | None) -> list[str]:
    """The ``(FILE:…)`` names of a send payload that asked for deletion after certification."""
    if not payload:
        return []
    keys = _lower_keys(payload)
    options = keys.get("options") if isinstance(keys.get("options"), Mapping) else {}
    flags = [keys.get(name) for name in DELETE_OPTION_KEYS]
    flags += [_lower_keys(options or {}).get(name) for name in DELETE_OPTION_KEYS]
    if not any(str(flag).strip().lower() in ("1", "true", "si", "sí", "yes") for flag in flags):
        return []
    from mensatek.macros import parse_macros

    message = keys.get("mensaje", keys.get("message", ""))
    names = {m.content.strip() for m in parse_macros(str(message)) if m.type == "FILE"}
    return sorted(name for name in names if name)


def delete_library_files(
    store: JobStore, job_id: str, *, enqueue: Enqueue | None = None
) -> list[str]:
    """Enqueue one ``delete_file`` job per library file the job asked to delete."""
    names = library_files_to_delete(store.payload(job_id))
    for name in names:
        delete_job = (enqueue or _default_enqueue)(
            "delete_file", {"Nombre": name}, f"autodelete:{job_id}:{name}"
        )
        store.append_event(
            job_id, "library_file_delete_enqueued", file=name, delete_job_id=delete_job
        )
        log.info("library_file_delete_enqueued", job_id=job_id, file=name, delete_job_id=delete_job)
    return names


# --- attachment events and replies -------------------------------------------------------
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


def inbox(store: JobStore, job_id: str) -> list[dict[str, Any]]:
    """The attachment events and replies recorded on a job, oldest first."""
    raw = store.redis.lrange(store.settings.key("job", job_id, "inbox"), 0, -1)
    return [json.loads(item) for item in cast(list[bytes], raw)]


def apply_attachment_event(store: JobStore, event: AttachmentEvent) -> str | None:
    """Record an ``EVENTOSSMSCERTIFICADO`` on its job and in the stream; the job id."""
    job_id = find_job(store, message_id=event.message_id, reference=event.reference)
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
    if job_id:
        _record_on_job(store, job_id, "attachment_event", entry)
    store.append_event(job_id, "attachment_event", **entry)
    log.info("attachment_event_recorded", job_id=job_id, event_type=event.event_type)
    return job_id


def apply_reply(store: JobStore, reply: InboundReply) -> str | None:
    """Record an ``SMSRECIBIDO`` on the job it answers (by ``idM``) and in the stream."""
    job_id = find_job(store, message_id=reply.message_id, reference=reply.reference)
    entry: dict[str, Any] = {
        "idmensaje": reply.message_id,
        "phone": reply.sender,
        "receiver": reply.receiver,
        "text": reply.text,
        "certified": reply.certified,
        "at": reply.received_at.isoformat() if reply.received_at else None,
        "internal_id": reply.internal_id,
    }
    if job_id:
        _record_on_job(store, job_id, "reply", entry)
    store.append_event(job_id, "reply_received", **entry)
    log.info("reply_recorded", job_id=job_id, certified=reply.certified)
    return job_id


def process_callback_fields(
    store: JobStore, fields: Mapping[str, str], *, enqueue: Enqueue | None = None
) -> Outcome | str | None:
    """Parse a queued callback body and apply it (what the ``process_callback`` actor runs).

    Raises :class:`~worker.web.callback_schema.CallbackInvalid` for a body that does not
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
