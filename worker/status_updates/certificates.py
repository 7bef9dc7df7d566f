"""Certificates: trigger each download once, store it, complete the job, delete files.

:func:`trigger_certificate` enqueues exactly one certificate download per (message,
phone) however often and concurrently a certified status arrives (``SET NX`` on
``<ns>:certificate-trigger:<idMensaje>:<phone>``). :func:`certificate_downloaded` is
what the certificate actor calls with the ZIP the client fetched: it stores it
(:class:`~worker.evidence.EvidenceStore`) and completes the job
(:func:`complete_evidence`: ``evidence_stored`` and, when asked, deletion of the
library files the message used).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from certsms.mensatek.macros import parse_macros
from certsms.mensatek.payloads import stored_send_request
from certsms.mensatek.phones import canonical_phone
from certsms.mensatek.status import StatusClass
from certsms.worker import metrics
from certsms.worker.evidence import EvidenceStore, StoredEvidence
from certsms.worker.jobs.store import JobStatus, JobStore, phone_digest
from certsms.worker.status_updates._shared import Enqueue, is_recipient

log = structlog.get_logger(__name__)

"""Where a send job asks for its library files to be deleted once certified."""


def certificate_trigger_key(store: JobStore, message_id: int | str, phone: str) -> str:
    """The ``SET NX`` marker that makes a certificate download happen once (the phone
    appears hashed: no phone number in a Redis key name)."""
    return store.settings.key("certificate-trigger", str(message_id), phone_digest(phone))


def trigger_certificate(
    store: JobStore,
    *,
    job_id: str | None,
    message_id: int,
    phone: str,
    enqueue: Enqueue,
) -> str | None:
    """Enqueue the certificate download of (message, phone) unless already enqueued.

    Returns the certificate job's id when this call enqueued it, else None. If the
    enqueue fails the marker is removed, so the next attempt can try again.

    Only real work reaches the provider: a phone that is not a recipient of the job's
    send (a forged or stray callback), or a message no job owns, downloads nothing —
    the provider would refuse it (``Res -4``), and refusals spend the rejection budget
    that pauses all traffic. It is kept as an anomaly instead: a ``certificate_anomaly``
    event on the job, a warning and ``certsms_certificate_anomalies_total``.
    """
    reason = _not_a_recipient(store, job_id, phone)
    if reason is not None:
        metrics.CERTIFICATE_ANOMALIES.labels(reason=reason).inc()
        log.warning(
            "certificate_trigger_refused",
            job_id=job_id,
            idmensaje=message_id,
            phone=phone,
            reason=reason,
        )
        if job_id is not None:
            store.append_event(
                job_id, "certificate_anomaly", idmensaje=message_id, phone=phone, reason=reason
            )
        return None
    key = certificate_trigger_key(store, message_id, phone)
    ttl_s = max(store.settings.job_retention_s, store.settings.evidence_give_up_s)
    if not store.redis.set(key, job_id or "-", nx=True, ex=ttl_s):
        return None
    try:
        cert_job_id = enqueue(
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
        idmensaje=message_id,
        phone=phone,
        certificate_job_id=cert_job_id,
    )
    return cert_job_id


def _not_a_recipient(store: JobStore, job_id: str | None, phone: str) -> str | None:
    """Why (message, ``phone``) must not be downloaded, or None when it is real work
    (the send's recipient index: one command, whatever the number of recipients)."""
    if job_id is None:
        return "unknown_message"
    return None if is_recipient(store, job_id, canonical_phone(phone)) else "not_a_recipient"


def certificate_downloaded(
    store: JobStore,
    *,
    message_id: int | str,
    phone: str,
    path: Path,
    sha256: str | None = None,
    evidence: EvidenceStore | None = None,
    enqueue: Enqueue,
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
    enqueue: Enqueue,
) -> bool:
    """``certified`` → ``evidence_stored`` once every certified recipient's ZIP is stored.

    The call that makes the transition also deletes the message's library files when
    the job asked for it (only now: the provider needs a file until the certificate
    exists). Returns whether this call made the transition.
    """
    record = store.get(job_id)
    if record is None or record.status != JobStatus.CERTIFIED.value:
        return False
    message_id = record.idmensaje
    if not message_id:
        return False
    evidence = evidence or EvidenceStore(store.settings)
    certified = [
        phone
        for phone, entry in record.recipients.items()
        if entry.status_class == StatusClass.CERTIFIED.value
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
        log.info("job_evidence_stored", job_id=job_id, idmensaje=message_id)
        delete_library_files(store, job_id, enqueue=enqueue)
    return done


def library_files_to_delete(payload: Mapping[str, Any] | None) -> list[str]:
    """The ``(FILE:…)`` names of a send that asked for deletion after certification
    (``delete_files_after_certificate``, alias ``Autoborrado``)."""
    request = stored_send_request(payload)
    if request is None or not request.delete_files_after_certificate:
        return []
    names = {m.content.strip() for m in parse_macros(request.message) if m.type == "FILE"}
    return sorted(name for name in names if name)


def delete_library_files(store: JobStore, job_id: str, *, enqueue: Enqueue) -> list[str]:
    """Enqueue one ``delete_file`` job per library file the job asked to delete."""
    names = library_files_to_delete(store.payload(job_id))
    for name in names:
        delete_job = enqueue("delete_file", {"Nombre": name}, f"autodelete:{job_id}:{name}")
        store.append_event(
            job_id, "library_file_delete_enqueued", file=name, delete_job_id=delete_job
        )
        log.info("library_file_delete_enqueued", job_id=job_id, file=name, delete_job_id=delete_job)
    return names
