"""What every status update needs: the enqueue seam and finding the send job exactly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from certsms.mensatek.payloads import payload_recipients, stored_send_request
from certsms.worker.jobs.store import JobStatus, JobStore

Enqueue = Callable[[str, Mapping[str, Any], str | None], str]
"""``(kind, payload, idempotency_key) -> job id``: how a status update queues follow-up
work (certificate downloads, library-file deletions). The entry point that wires the
process hands one in: :meth:`worker.jobs.producer.Producer.enqueue_follow_up`."""

#: A send in these states has not learned its ``idMensaje`` yet and its outcome is not
#: known to be lost: a callback for it waits (kept) until it is ``sent`` or ``uncertain``.
OUTCOME_PENDING = frozenset(
    {JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING_CREDIT, JobStatus.IN_FLIGHT}
)


@dataclass(frozen=True)
class Match:
    """Which send job a callback belongs to (``job_id``), or why none (``reason``)."""

    job_id: str | None
    reason: str = ""


def match_job(store: JobStore, *, message_id: int | None, reference: str | None) -> Match:
    """The send job of a callback: by ``idMensaje`` first; by ``Referencia`` only when the
    reference names one job (a reference is unique among kept sends,
    :meth:`worker.jobs.store.JobStore.claim_reference`) and that job has no other
    ``idMensaje``. Reasons when none: ``no_identifier``, ``unknown_idmensaje``,
    ``unknown_reference``, ``reference_of_another_message``."""
    if message_id:
        job_id = store.find_by_message_id(message_id)
        if job_id:
            return Match(job_id)
    if not reference:
        return Match(None, "unknown_idmensaje" if message_id else "no_identifier")
    job_id = store.find_by_reference(reference)
    if job_id is None:
        return Match(None, "unknown_reference")
    if message_id:
        head = store.head(job_id)
        if head is not None and head.idmensaje and head.idmensaje != message_id:
            return Match(None, "reference_of_another_message")
    return Match(job_id)


def find_job(store: JobStore, *, message_id: int | None, reference: str | None) -> str | None:
    """The send job of ``idMensaje``, else of ``Referencia`` (see :func:`match_job`)."""
    return match_job(store, message_id=message_id, reference=reference).job_id


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


def recipient_counts(store: JobStore, job_id: str) -> tuple[int, dict[str, int]]:
    """``(recipients in all, recorded per class)``, indexing the job on first use (a job
    recorded before the index existed, or created without the producer)."""
    total, counts = store.recipient_counts(job_id)
    if total is None:
        store.index_recipients(job_id, expected_phones(store.payload(job_id)))
        total, counts = store.recipient_counts(job_id)
    return total or 0, counts


def is_recipient(store: JobStore, job_id: str, phone: str) -> bool:
    """Whether ``phone`` is one of the send's recipients (indexing the job on first use)."""
    known = store.is_recipient(job_id, phone)
    if known is None:
        store.index_recipients(job_id, expected_phones(store.payload(job_id)))
        known = store.is_recipient(job_id, phone)
    return bool(known)
