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

from mensatek.payloads import payload_recipients, stored_send_request
from mensatek.status import StatusClass, classify
from worker.jobs.store import RANK, JobRecord, JobStatus, JobStore, RecipientChange
from worker.status_updates._shared import Enqueue, find_job
from worker.status_updates.certificates import complete_evidence, trigger_certificate

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

    @property
    def found(self) -> bool:
        """Whether the update matched a job."""
        return self.job_id is not None


def expected_phones(payload: Mapping[str, Any] | None) -> set[str]:
    """The canonical phones of the recipients a send job's payload names.

    The recorded payload is read as the send's model
    (:func:`mensatek.payloads.stored_send_request`); one that cannot be (a raw message
    that failed validation) by the one reader of ``Destinatarios``
    (:func:`mensatek.payloads.payload_recipients`). Either way the phones are canonical,
    the keys callbacks and reports use for the same recipients.
    """
    request = stored_send_request(payload)
    if request is not None:
        return {recipient.phone for recipient in request.recipients if recipient.phone}
    if not payload:
        return set()
    return {recipient.phone for recipient in payload_recipients(payload) if recipient.phone}


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


def _recipient_classes(store: JobStore, job_id: str, record: JobRecord) -> dict[str, str]:
    """phone → class for every recipient, ``pending`` for those without a status yet."""
    classes = {phone: entry.status_class for phone, entry in record.recipients.items()}
    for phone in expected_phones(store.payload(job_id)):
        classes.setdefault(phone, StatusClass.PENDING.value)
    return classes


def refresh_job_status(
    store: JobStore, job_id: str, *, enqueue: Enqueue, source: str = "recompute"
) -> str | None:
    """Move the job forward to what its recipients justify; returns its status after.

    Safe to call at any time and from anywhere (e.g. by the send actor right after it
    records ``sent``, in case callbacks overtook it): it only moves forward and only
    once the job's message is known to have reached the provider.
    """
    record = store.get(job_id)
    if record is None:
        return None
    current = record.status
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
        complete_evidence(store, job_id, enqueue=enqueue)
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
    enqueue: Enqueue,
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
    record = store.get(job_id)
    if record is None:  # expired between the lookup and now
        return Outcome(job_id=None, status_class=status_class)
    reconciled = False
    if message_id and record.status == JobStatus.UNCERTAIN:
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
    known = message_id or record.idmensaje
    previous = record.recipients.get(phone)
    if (
        previous is not None
        and previous.status_class in FINAL_CLASSES
        and previous.result_code != result_code
    ):
        # a final class is never replaced (e.g. a stale failure after certified)
        change = RecipientChange(
            phone=phone,
            changed=False,
            previous_code=previous.result_code,
            previous_class=previous.status_class,
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
