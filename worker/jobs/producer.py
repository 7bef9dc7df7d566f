"""The enqueue mechanics: validate locally, record the job, then queue its dramatiq message.

:class:`Producer` is what every way in uses (the public ``tasks.enqueue_*`` API,
the CLI, the HTTP intake, and the worker's own follow-up jobs: certificate
downloads, library-file deletions, operator resends). It needs only a Redis
client, the settings and something that queues a dramatiq message (the broker):
it never imports an actor, so any layer that is handed a producer can enqueue.

Every enqueue returns the job id. Invalid input raises
:class:`~mensatek.errors.InvalidRequest` listing every problem, and nothing is
recorded or queued. With ``idempotency_key``, the first call creates the job and
every later call with the same payload returns that job's id without queueing
anything; the same key with a different payload raises
:class:`~worker.errors.IdempotencyConflict`. A send without a
``Referenciausuario`` gets the job id as its reference, so callbacks find the job;
a reference already held by another kept send is refused (``Referenciausuario`` in
the error; :meth:`Producer._claim_reference` says why). A send naming more than
``max_recipients_per_send`` recipients is refused before any of them is read.

Canonical at the door: the job records and queues the canonical payload of its
validated request (:func:`canonical_payload`: Python field names, dates ISO-8601
with offset, recipients as ``{"Movil": …}``), whatever spelling the producer used;
every later stage reads typed fields from it
(:func:`mensatek.payloads.stored_send_request`), never the provider's spellings.
The idempotency key's payload hash is taken over the same canonical form, so the
same request spelt two ways is the same request.

``cancel`` and ``reschedule`` also take ``{"job_id": ...}`` (one of our sends): a
send that has not reached the provider is cancelled or moved right here, atomically
and without a provider request, and the control job is ``succeeded`` at once
(:mod:`worker.jobs.held_sends`).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import redis
import structlog
from dramatiq.message import Message

from certsms.config.settings import Settings
from certsms.mensatek.errors import FieldProblem, InvalidRequest
from certsms.mensatek.payloads import request_from_payload
from certsms.mensatek.requests import SendRequest
from certsms.mensatek.validation import MAX_RECIPIENTS_PER_SEND, recipient_count_problem
from certsms.worker import metrics
from certsms.worker.errors import JobNotFound
from certsms.worker.jobs.contract import KINDS, JobMessage, callback_message, job_message
from certsms.worker.jobs.held_sends import (
    TARGET_KINDS,
    JobTarget,
    check_target,
    targets_job,
    try_local,
    validate_target,
)
from certsms.worker.jobs.idempotency import IdempotencyKeys
from certsms.worker.jobs.store import JobStatus, JobStore

log = structlog.get_logger(__name__)


class MessageSink(Protocol):
    """What queues a dramatiq message: the broker (``enqueue(message, delay=...)``)."""

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]: ...


def plain_payload(payload: Any) -> dict[str, Any]:
    """The payload as a plain JSON object (a request model's ``to_payload()`` too)."""
    if hasattr(payload, "to_payload") and callable(payload.to_payload):
        payload = payload.to_payload()
    if not isinstance(payload, Mapping):
        raise InvalidRequest([FieldProblem("payload", "payload", "must be a JSON object")])
    try:
        return dict(json.loads(json.dumps(dict(payload))))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(
            [FieldProblem("payload", "payload", f"must be plain JSON values ({exc})")]
        ) from None


def validate(
    kind: str,
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
    pdf_contract_types: Iterable[int] | None = None,
    max_recipients: int = MAX_RECIPIENTS_PER_SEND,
) -> Any:
    """The validated request model (None for credits/list_files); InvalidRequest otherwise.

    ``now`` is the moment "in the future" is judged against (default: now);
    ``pdf_contract_types`` the contract types that need a PDF (the setting
    ``contract_types_needing_pdf``; default: the library's list); ``max_recipients``
    the most recipients a send may name (the setting ``max_recipients_per_send``),
    checked before any recipient is read, so an oversized request costs nothing.
    """
    if kind not in KINDS:
        raise InvalidRequest(
            [FieldProblem("kind", "kind", f"unknown job kind {kind!r}; one of {', '.join(KINDS)}")]
        )
    if kind in TARGET_KINDS and targets_job(payload):
        return validate_target(kind, payload, now=now)  # by job id (held sends)
    if kind == "send":
        too_many = recipient_count_problem(payload, max_recipients=max_recipients)
        if too_many is not None:
            raise InvalidRequest([too_many], function=kind)
    return request_from_payload(kind, payload, now=now, pdf_contract_types=pdf_contract_types)


def canonical_payload(request: Any, *, job_id: str) -> dict[str, Any]:
    """What a job records and queues: its validated request's ``to_payload()`` (plain
    JSON), a send without a reference getting the job id as ``reference``; ``{}`` for
    the functions without parameters (credits, list_files)."""
    if request is None:
        return {}
    if isinstance(request, SendRequest) and not request.reference:
        request = dataclasses.replace(request, reference=job_id)
    return plain_payload(request.to_payload())


def new_job_id() -> str:
    """A fresh job id (32 hex characters; also the default ``Referenciausuario``)."""
    return uuid.uuid4().hex


def _recorded_payload(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the job record keeps: everything but file contents (they travel in the message)."""
    if kind != "upload":
        return data
    return {k: ("[content omitted]" if k == "content" else v) for k, v in data.items()}


class Producer:
    """Validate, record and queue jobs on one Redis (see the module docstring)."""

    def __init__(
        self,
        redis_client: redis.Redis,
        settings: Settings,
        *,
        broker: MessageSink,
        store: JobStore | None = None,
    ) -> None:
        self.redis = redis_client
        self.settings = settings
        self.broker = broker
        self.store = store if store is not None else JobStore(redis_client, settings)
        self.keys = IdempotencyKeys(redis_client, settings)

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any] | Any,
        *,
        idempotency_key: str | None = None,
        internal_key: bool = False,
    ) -> str:
        """Validate, record and queue a job of ``kind``; returns its id. ``internal_key``:
        the idempotency key is certsms' own (its own namespace, see
        :mod:`worker.jobs.idempotency`), never a producer's."""
        request = validate(
            kind,
            plain_payload(payload),
            pdf_contract_types=self.settings.contract_types_needing_pdf,
            max_recipients=self.settings.max_recipients_per_send,
        )
        store = self.store
        job_id = new_job_id()
        if isinstance(request, JobTarget):
            check_target(store, request)
        if idempotency_key:
            claim = self.keys.claim(
                idempotency_key,
                job_id=job_id,
                kind=kind,
                payload=plain_payload(request.to_payload()) if request is not None else {},
                job_status=store.status,
                internal=internal_key,
            )
            if not claim.created:
                log.info("job_enqueue_deduplicated", job_id=claim.job_id, kind=kind)
                return claim.job_id
        data = canonical_payload(request, job_id=job_id)
        reference = data.get("reference") if kind == "send" else None
        if reference:
            self._claim_reference(str(reference), job_id, idempotency_key, internal_key)
        message = job_message(JobMessage(job_id=job_id, kind=kind, payload=data))
        try:
            store.create(
                job_id,
                kind=kind,
                payload=_recorded_payload(kind, data),
                idempotency_key=idempotency_key,
                reference=reference,
                fields={"message_id": message.message_id},
                fresh=True,
            )
            if isinstance(request, SendRequest):  # whom it is for: callbacks check phones
                store.index_recipients(job_id, (r.phone for r in request.recipients), fresh=True)
            local = (
                try_local(store, request, control_job_id=job_id, requeue=self.requeue)
                if isinstance(request, JobTarget)
                else None
            )
            if local is not None:  # the send had not reached the provider: done, no message
                store.transition(job_id, JobStatus.SUCCEEDED, result=local.as_result())
            else:
                self.broker.enqueue(message)
        except Exception:
            store.transition(job_id, JobStatus.REJECTED, force=True, reason="enqueue failed")
            if idempotency_key:
                self.keys.release(idempotency_key, job_id=job_id, internal=internal_key)
            raise
        metrics.JOBS_ENQUEUED.labels(kind=kind).inc()
        log.info("job_enqueued", job_id=job_id, kind=kind, message_id=message.message_id)
        return job_id

    def _claim_reference(
        self, reference: str, job_id: str, idempotency_key: str | None, internal_key: bool
    ) -> None:
        """Make the send's ``Referenciausuario`` name this job, or refuse the send.

        Callbacks name their send by ``idMensaje`` and ``Referencia``; a send whose
        answer was lost has only the reference, so two kept sends sharing one would
        receive each other's callbacks. A reference therefore names one send while that
        send is kept (``job_retention_s``), unless it never reached the provider; the
        same request again with its ``Idempotency-Key`` still returns the first job.
        """
        holder = self.store.claim_reference(reference, job_id)
        if holder is None:
            return
        if idempotency_key:
            self.keys.release(idempotency_key, job_id=job_id, internal=internal_key)
        problem = FieldProblem(
            "Referenciausuario",
            "reference",
            f"{reference[:100]!r} is already the reference of send {holder}: callbacks are "
            "matched by it, so each send needs its own (or leave it out: the job id is used)",
        )
        raise InvalidRequest([problem], function="send")

    def enqueue_follow_up(
        self, kind: str, payload: Mapping[str, Any], idempotency_key: str | None
    ) -> str:
        """:meth:`enqueue` with the ``(kind, payload, idempotency_key)`` shape of
        :data:`worker.status_updates.Enqueue` (what status updates and sweepers are handed);
        its keys are internal ones, out of the producers' namespace."""
        return self.enqueue(kind, payload, idempotency_key=idempotency_key, internal_key=True)

    def requeue(self, job_id: str) -> str:
        """Queue a fresh message for an existing job (operator resend, sweeps, held sends
        moved earlier); returns the dramatiq message id."""
        record = self.store.get(job_id)
        payload = self.store.payload(job_id)
        if record is None or payload is None:
            raise JobNotFound(job_id)
        kind = str(record.kind)
        message = job_message(JobMessage(job_id=job_id, kind=kind, payload=payload))
        self.broker.enqueue(message)
        self.store.set_fields(job_id, message_id=message.message_id)
        return message.message_id

    def queue_callback(self, fields: dict[str, str], received_at: str) -> str:
        """Durably queue one provider callback for the ``process_callback`` actor;
        returns the dramatiq message id."""
        message = callback_message(fields, received_at)
        self.broker.enqueue(message)
        return str(message.message_id)
