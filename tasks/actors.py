"""One dramatiq actor per provider function; every actor runs :func:`execute`.

Importing this module sets up the broker first (:func:`worker.runtime.runtime`), so
the actors bind to the certsms broker. Every actor takes the contract's kwargs
(:mod:`worker.jobs.contract`); :func:`execute` adopts a job a producer pushed with only
dramatiq, skips a settled one, applies local cancel/reschedule (:mod:`worker.jobs.held_sends`),
validates again and hands over to the exactly-once send (:mod:`tasks.send`) or to
the other provider functions (:mod:`tasks.other_functions`).

Retries: per actor, bounded by ``send_max_retries`` / ``query_max_retries`` with
dramatiq's jittered exponential backoff between ``retry_min_backoff_ms`` and
``retry_max_backoff_ms``; permanent errors (provider rejections, invalid input,
repeated rejections, malformed messages) are ``throws``: the job is ``failed`` at
once. A :class:`GuardDelay` (or an authentication failure, which opens the guard's
breaker) re-enqueues a copy of the message with a delay and burns no retry
(:mod:`tasks.outcomes`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from certsms.mensatek.answers import IDEMPOTENT
from certsms.mensatek.errors import InvalidRequest
from certsms.tasks import resources
from certsms.tasks.other_functions import WRITE_KINDS, run_other
from certsms.tasks.outcomes import PERMANENT, defer
from certsms.tasks.send import run_send, validate_at_run_time
from certsms.worker.errors import error_record
from certsms.worker.jobs import held_sends
from certsms.worker.jobs.contract import ACTOR_OF, KINDS, QUEUE_OF, parse_kwargs
from certsms.worker.jobs.producer import canonical_payload, validate
from certsms.worker.jobs.store import SETTLED, JobStatus
from certsms.worker.middleware import report_outcome
from certsms.worker.runtime import runtime

__all__ = ["ACTORS", "IDEMPOTENT", "PERMANENT", "execute"]

_rt = runtime()  # the broker must be set before any @actor runs


def execute(actor_name: str, kwargs: dict[str, Any]) -> None:
    """Run one job message (see the module docstring)."""
    job = parse_kwargs(actor_name, (), kwargs)
    store = resources.job_store()
    record = store.get(job.job_id)
    payload = dict(job.payload)
    if record is None:  # a producer that only has dramatiq: adopt the job
        with suppress(InvalidRequest):  # else recorded as given; validation below fails it
            pdf_types = resources.settings().contract_types_needing_pdf
            request = validate(job.kind, payload, pdf_contract_types=pdf_types)
            payload = canonical_payload(request, job_id=job.job_id)
        reference = payload.get("reference") if job.kind == "send" else None
        message = CurrentMessage.get_current_message()
        store.create(
            job.job_id,
            kind=job.kind,
            payload=payload,
            reference=reference,
            fields={"source": "message", "message_id": message.message_id if message else None},
        )
        record = store.get(job.job_id)
        if record is None:  # pragma: no cover - expired the moment it was written
            return
    status = record.status
    if status in SETTLED:
        report_outcome("succeeded", duplicate=True, status=str(status))
        return
    if job.kind == "send" and record.local_reschedules:
        payload = store.payload(job.job_id) or payload  # moved by a local reschedule
    if job.kind in held_sends.TARGET_KINDS and held_sends.targets_job(payload):
        requeue = resources.producer().requeue
        step = held_sends.for_actor(store, job.job_id, job.kind, payload, requeue=requeue)
        if step.action == "defer":
            defer(int(held_sends.IN_FLIGHT_WAIT_S * 1000), reason=step.reason)
            return
        if step.action != "provider":
            report_outcome("succeeded" if step.action == "done" else "failed", reason=step.reason)
            return
        payload = dict(step.payload or {})
    try:
        request = validate_at_run_time(store, job.job_id, job.kind, payload, record)
    except InvalidRequest as exc:
        store.transition(
            job.job_id, JobStatus.FAILED, error=error_record(exc), reason="invalid request"
        )
        report_outcome("failed", status="failed")
        raise
    if job.kind == "send":
        run_send(store, job.job_id, request, record, status)
    else:
        run_other(store, job.job_id, job.kind, request)


def _retry_when_for(setting: str) -> Callable[[int, BaseException], bool]:
    def retry_when(retries: int, exc: BaseException) -> bool:
        limit = int(getattr(resources.settings(), setting))
        return retries < limit and not isinstance(exc, PERMANENT)

    return retry_when


def _declare(kind: str) -> Any:
    actor_name = ACTOR_OF[kind]
    setting = "send_max_retries" if kind in WRITE_KINDS else "query_max_retries"

    def run(**kwargs: Any) -> None:
        execute(actor_name, kwargs)

    run.__name__ = run.__qualname__ = f"run_{kind}"
    return dramatiq.actor(  # type: ignore[call-overload]
        run,
        actor_name=actor_name,
        queue_name=QUEUE_OF[kind],
        throws=PERMANENT,
        retry_when=_retry_when_for(setting),
    )


ACTORS: dict[str, Any] = {kind: _declare(kind) for kind in KINDS}
