"""Recipient statuses: apply one, and derive the job's status from all of them.

:func:`apply_recipient_status` is the one way a recipient's ``Resultado`` enters a
job (the steps are in :mod:`worker.status_updates`); :func:`refresh_job_status`
moves a job forward to what its recipients justify (:func:`derive_job_status`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from certsms.mensatek.status import StatusClass, classify
from certsms.worker.jobs.store import RANK, JobStatus, JobStore, RecipientChange
from certsms.worker.status_updates._shared import (
    OUTCOME_PENDING,
    Enqueue,
    is_recipient,
    match_job,
    recipient_counts,
)
from certsms.worker.status_updates.certificates import complete_evidence, trigger_certificate
from certsms.worker.status_updates.kept import KeptCallbacks

log = structlog.get_logger(__name__)

FINAL_CLASSES = frozenset(
    {StatusClass.CERTIFIED, StatusClass.FAILED, StatusClass.CANCELLED, StatusClass.EXPIRED}
)
#: Job statuses whose message reached the provider (where recipient states may drive it).
_SENT_STATUSES = frozenset(
    {JobStatus.SENT, JobStatus.SCHEDULED, JobStatus.DELIVERED, JobStatus.CERTIFIED}
)


@dataclass(frozen=True)
class Outcome:
    """What :func:`apply_recipient_status` did."""

    job_id: str | None
    status_class: StatusClass
    recipient: RecipientChange | None = None
    reconciled: bool = False
    job_status: str | None = None  # after the update
    certificate_job_id: str | None = None  # set when this call enqueued the download
    kept: str = ""  # why it was kept for later (not applied), e.g. "send_outcome_pending"
    anomaly: str = ""  # why it was refused for good, e.g. "not_a_recipient"

    @property
    def found(self) -> bool:
        """Whether the update matched a job."""
        return self.job_id is not None


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


def derive_from_counts(counts: Mapping[str, int], total: int) -> JobStatus | None:
    """:func:`derive_job_status` from how many recipients are in each class (``total``
    in all; those with no recorded status are pending): what a callback reads, so its
    cost does not grow with the job's size."""
    recorded = sum(counts.values())
    final = sum(n for c, n in counts.items() if c in FINAL_CLASSES)
    everyone = max(total, recorded)
    if everyone <= 0:
        return None
    if final == everyone:
        if counts.get(StatusClass.CERTIFIED, 0):
            return JobStatus.CERTIFIED
        if counts.get(StatusClass.CANCELLED, 0) == everyone:
            return JobStatus.CANCELLED
        return JobStatus.FAILED
    if final + counts.get(StatusClass.DELIVERED, 0) == everyone:
        return JobStatus.DELIVERED
    return None


def refresh_job_status(
    store: JobStore, job_id: str, *, enqueue: Enqueue, source: str = "recompute"
) -> str | None:
    """Move the job forward to what its recipients justify; returns its status after.

    Safe to call at any time and from anywhere (e.g. by the send actor right after it
    records ``sent``, in case callbacks overtook it): it only moves forward and only
    once the job's message is known to have reached the provider. Reads the job's
    per-class counts, never every recipient: the cost is the same for 10 or 10,000.
    """
    head = store.head(job_id)
    if head is None:
        return None
    current = head.status
    if current not in _SENT_STATUSES:
        return current.value
    total, counts = recipient_counts(store, job_id)
    target = derive_from_counts(counts, total)
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
        complete_evidence(store, job_id, enqueue=enqueue)
        current = store.status(job_id) or current
    return current.value


def _keep(
    store: JobStore,
    fields: Mapping[str, str] | None,
    *,
    job_id: str | None,
    message_id: int | None,
    reference: str | None,
    phone: str,
    result_code: int,
    status_class: StatusClass,
    source: str,
    reason: str,
) -> None:
    """An update that cannot be placed yet: logged, in the stream, and (a callback) kept."""
    if fields is not None:
        KeptCallbacks(store.redis, store.settings).keep(
            fields, message_id=message_id, reference=reference, reason=reason
        )
    _warn(
        store,
        "recipient_status_unmatched",
        job_id,
        status_class,
        {"kept": fields is not None},
        idmensaje=message_id,
        reference=reference,
        phone=phone,
        result_code=result_code,
        source=source,
        reason=reason,
    )


def _warn(
    store: JobStore,
    event: str,
    job_id: str | None,
    status_class: StatusClass,
    log_only: Mapping[str, object],
    **common: object,
) -> None:
    """One warning line and the same event in the job's stream (with its status class)."""
    log.warning(event, job_id=job_id, **common, **log_only)
    fields: dict[str, Any] = {**common, "status_class": status_class.value}
    store.append_event(job_id, event, **fields)


def apply_recipient_status(
    store: JobStore,
    *,
    message_id: int | None,
    reference: str | None,
    phone: str,
    result_code: int,
    at: datetime | None,
    source: str,
    enqueue: Enqueue,
    fields: Mapping[str, str] | None = None,
) -> Outcome:
    """Apply one recipient status (see the module docstring); idempotent and concurrent-safe.

    ``fields``: the callback body, kept (:mod:`worker.status_updates.kept`) when the
    update cannot be placed yet: no job matches (reason from
    :func:`~worker.status_updates._shared.match_job`), or the job has not learned
    its ``idMensaje`` yet (``send_outcome_pending``). A phone that is not one of the
    job's recipients changes nothing: a ``recipient_status_anomaly``.
    """
    settings = store.settings
    status_class = classify(result_code, certified_codes=settings.certified_codes)
    match = match_job(store, message_id=message_id, reference=reference)
    head = store.head(match.job_id) if match.job_id else None
    reason = match.reason or ("job_expired" if head is None else "")
    if head is not None and head.status in OUTCOME_PENDING and not head.idmensaje:
        reason = "send_outcome_pending"  # applied once it is sent or uncertain
    if head is None or reason:
        _keep(
            store,
            fields,
            job_id=match.job_id,
            message_id=message_id,
            reference=reference,
            phone=phone,
            result_code=result_code,
            status_class=status_class,
            source=source,
            reason=reason,
        )
        return Outcome(job_id=None, status_class=status_class, kept=reason)
    job_id = head.id
    if not is_recipient(store, job_id, phone):
        _warn(
            store,
            "recipient_status_anomaly",
            job_id,
            status_class,
            {},
            idmensaje=message_id,
            phone=phone,
            result_code=result_code,
            source=source,
            reason="not_a_recipient",
        )
        if status_class is StatusClass.CERTIFIED and (message_id or head.idmensaje):
            # the trigger refuses it too and counts it (certsms_certificate_anomalies_total)
            trigger_certificate(
                store,
                job_id=job_id,
                message_id=int(message_id or head.idmensaje or 0),
                phone=phone,
                enqueue=enqueue,
            )
        return Outcome(job_id=job_id, status_class=status_class, anomaly="not_a_recipient")
    if source == "callback":  # the report poller (status_source=both) polls silent jobs only
        store.set_fields(job_id, last_callback_ts=repr(time.time()))
    reconciled = False
    if message_id and head.status == JobStatus.UNCERTAIN:
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
            log.info("uncertain_send_reconciled", job_id=job_id, idmensaje=message_id)
    known = message_id or head.idmensaje
    # forward-only, a final class never replaced: decided atomically by update_recipient
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
    job_status = refresh_job_status(store, job_id, enqueue=enqueue, source=source)
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
