"""The producer API: validate locally, record the job, then send the dramatiq message.

Every ``enqueue_*`` returns the job id. Invalid input raises
:class:`~mensatek.errors.InvalidRequest` listing every problem, and nothing is
recorded or queued. With ``idempotency_key``, the first call creates the job and
every later call with the same payload returns that job's id without queueing
anything; the same key with a different payload raises
:class:`~worker.errors.IdempotencyConflict`. A send without a
``Referenciausuario`` gets the job id as its reference, so callbacks find the job.

``cancel`` and ``reschedule`` also take ``{"job_id": ...}`` (one of our sends): a
send that has not reached the provider is cancelled or moved right here, atomically
and without a provider request, and the control job is ``succeeded`` at once
(:mod:`worker.control`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog
from dramatiq.message import Message

from config.settings import Settings
from mensatek.errors import FieldProblem, InvalidRequest
from mensatek.requests import request_from_payload
from tasks.contract import ACTOR_OF, KINDS, QUEUE_OF, JobMessage, fill_reference
from worker.broker import Runtime, runtime, setup
from worker.control import (
    TARGET_KINDS,
    JobTarget,
    check_target,
    targets_job,
    try_local,
    validate_target,
)
from worker.jobs.idempotency import IdempotencyKeys
from worker.jobs.store import JobStatus

log = structlog.get_logger(__name__)


def _runtime(settings: Settings | None) -> Runtime:
    return setup(settings, import_actors=False) if settings is not None else runtime()


def _plain_payload(payload: Any) -> dict[str, Any]:
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


def validate(kind: str, payload: Mapping[str, Any], *, now: datetime | None = None) -> Any:
    """The validated request model (None for credits/list_files); InvalidRequest otherwise.

    ``now`` is the moment "in the future" is judged against (default: now).
    """
    if kind not in KINDS:
        raise InvalidRequest(
            [FieldProblem("kind", "kind", f"unknown job kind {kind!r}; one of {', '.join(KINDS)}")]
        )
    if kind in TARGET_KINDS and targets_job(payload):
        return validate_target(kind, payload, now=now)  # by job id (worker.control)
    return request_from_payload(kind, payload, now=now)


def new_job_id() -> str:
    """A fresh job id (32 hex characters; also the default ``Referenciausuario``)."""
    return uuid.uuid4().hex


def enqueue(
    kind: str,
    payload: Mapping[str, Any] | Any,
    *,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Validate, record and queue a job of ``kind``; returns its id."""
    data = _plain_payload(payload)
    request = validate(kind, data)
    rt = _runtime(settings)
    store = rt.store
    job_id = new_job_id()
    if isinstance(request, JobTarget):
        check_target(store, request)
    keys = IdempotencyKeys(rt.redis, rt.settings)
    if idempotency_key:
        claim = keys.claim(
            idempotency_key, job_id=job_id, kind=kind, payload=data, job_status=store.status
        )
        if not claim.created:
            log.info("job_enqueue_deduplicated", job_id=claim.job_id, kind=kind)
            return claim.job_id
    reference: str | None = None
    if kind == "send":
        reference = fill_reference(data, job_id) or getattr(request, "reference", None)
    message = _message_for(JobMessage(job_id=job_id, kind=kind, payload=data))
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
        local = (
            try_local(store, request, control_job_id=job_id, settings=rt.settings)
            if isinstance(request, JobTarget)
            else None
        )
        if local is not None:  # the send had not reached the provider: done, no message
            store.transition(job_id, JobStatus.SUCCEEDED, result=local.as_result())
        else:
            rt.broker.enqueue(message)
    except Exception:
        store.transition(job_id, JobStatus.REJECTED, force=True, reason="enqueue failed")
        if idempotency_key:
            keys.release(idempotency_key, job_id=job_id)
        raise
    try:
        from worker import metrics

        metrics.JOBS_ENQUEUED.labels(kind=kind).inc()
    except Exception:  # pragma: no cover - metrics never break an enqueue
        pass
    log.info("job_enqueued", job_id=job_id, kind=kind, message_id=message.message_id)
    return job_id


def _message_for(job: JobMessage) -> Message[Any]:
    """The dramatiq message of a job: its kind's actor and queue, the contract's kwargs."""
    return Message(
        queue_name=QUEUE_OF[job.kind],
        actor_name=ACTOR_OF[job.kind],
        args=(),
        kwargs=job.kwargs(),
        options={},
    )


def _recorded_payload(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the job record keeps: everything but file contents (they travel in the message)."""
    if kind != "upload":
        return data
    return {
        k: ("[content omitted]" if k.lower() in ("contenido", "content") else v)
        for k, v in data.items()
    }


def send_message_for(job_id: str, *, settings: Settings | None = None) -> str:
    """Queue a fresh message for an existing job (operator resend); returns the message id."""
    rt = _runtime(settings)
    store = rt.store
    record = store.get(job_id)
    payload = store.payload(job_id)
    if record is None or payload is None:
        from worker.errors import JobNotFound

        raise JobNotFound(job_id)
    kind = str(record["kind"])
    message = _message_for(JobMessage(job_id=job_id, kind=kind, payload=payload))
    rt.broker.enqueue(message)
    store.set_fields(job_id, message_id=message.message_id)
    return message.message_id


def job_status(job_id: str, *, settings: Settings | None = None) -> dict[str, Any] | None:
    """The job record (status, idmensaje, attempts, error, recipients, ...) or None."""
    rt = _runtime(settings)
    return rt.store.get(job_id)


def _kind_enqueuer(kind: str) -> Any:
    def enqueue_kind(
        payload: Mapping[str, Any] | Any | None = None,
        *,
        idempotency_key: str | None = None,
        settings: Settings | None = None,
        **fields: Any,
    ) -> str:
        data = dict(payload or {}) if isinstance(payload, Mapping) or payload is None else payload
        if fields:
            data = {**data, **fields}
        return enqueue(kind, data, idempotency_key=idempotency_key, settings=settings)

    enqueue_kind.__name__ = f"enqueue_{kind}"
    enqueue_kind.__doc__ = (
        f"Validate and queue a ``{kind}`` job (payload in provider or Python names, or as "
        "keyword arguments); returns the job id."
    )
    return enqueue_kind


enqueue_send = _kind_enqueuer("send")
enqueue_cancel = _kind_enqueuer("cancel")
enqueue_reschedule = _kind_enqueuer("reschedule")
enqueue_certificate = _kind_enqueuer("certificate")
enqueue_report = _kind_enqueuer("report")
enqueue_upload = _kind_enqueuer("upload")
enqueue_delete_file = _kind_enqueuer("delete_file")
enqueue_credits = _kind_enqueuer("credits")
enqueue_list_files = _kind_enqueuer("list_files")
