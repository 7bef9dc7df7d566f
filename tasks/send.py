"""The exactly-once send: claim, post, record the outcome, release or hold.

The job moves to ``in_flight`` (attempt, time, worker, a token) atomically from
``queued``/``running`` right before the POST; only one delivery can win that move.
A lost answer after the body may have left, or a redelivered message that finds
``in_flight`` (its worker died mid-call), makes the job ``uncertain``: it is never
re-posted automatically (``certsms resolve``). A send whose ``Fecha`` is further
away than ``hold_lead_s`` is held (back to ``queued``, re-enqueued with a delay).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from certsms.mensatek.errors import AuthenticationFailed, InsufficientCredits, ProviderRejected
from certsms.mensatek.retrying import not_processed
from certsms.tasks import resources
from certsms.tasks.outcomes import (
    breaker_wait_s,
    defer,
    fail_rejected,
    requeue,
    result_json,
)
from certsms.worker.errors import error_record
from certsms.worker.guard import Budget, GuardDelay, RepeatedRejection
from certsms.worker.jobs.held_sends import hold_delay_s
from certsms.worker.jobs.producer import validate
from certsms.worker.jobs.store import JobRecord, JobStatus, JobStore, utc_now_iso
from certsms.worker.middleware import redelivery_count, report_outcome
from certsms.worker.status_updates import refresh_job_status, replay_kept

log = structlog.get_logger(__name__)


class _ClaimLost(Exception):
    """Raised inside the guarded call when another delivery owns the job."""


def memo_params(request: Any) -> dict[str, object]:
    """A send's failure-memo fingerprint: its parameters without ``Referenciausuario``.

    The reference is our own tag (the job id unless the producer chose one), so a
    burst of jobs with the same rejected payload would otherwise look like distinct
    requests and each reach the provider; a rejection never depends on it.
    """
    params = dict(request.fingerprint_params())
    params.pop("Referenciausuario", None)
    return params


def validate_at_run_time(
    store: JobStore, job_id: str, kind: str, payload: dict[str, Any], record: JobRecord
) -> Any:
    """Validate again in the worker, judging a send's ``Fecha`` as at enqueue time.

    A send that was valid when enqueued stays valid: if its scheduled time passed
    while it waited in the queue, it is sent now (without ``Fecha``) and an event
    says so, rather than failing a legal notification for our own delay. Other
    kinds (a reschedule to a past date) are judged against the real clock.
    """
    if kind != "send":
        return validate(kind, payload)
    created = record.created_at
    enqueued_at = datetime.fromisoformat(created) if created else None
    pdf_types = resources.settings().contract_types_needing_pdf
    request = validate(kind, payload, now=enqueued_at, pdf_contract_types=pdf_types)
    if request.scheduled_at is not None and request.scheduled_at <= datetime.now(UTC):
        store.append_event(job_id, "schedule_passed", scheduled_at=request.scheduled_at.isoformat())
        request = dataclasses.replace(request, scheduled_at=None)
    return request


def run_send(
    store: JobStore, job_id: str, request: Any, record: JobRecord, status: JobStatus
) -> None:
    """Run a send job once its request is valid (see the module docstring)."""
    settings = resources.settings()
    if status == JobStatus.IN_FLIGHT:
        _in_flight_elsewhere(store, job_id, record)
        return
    waiting = status == JobStatus.WAITING_CREDIT
    if waiting and _keeps_waiting(store, job_id, record.credits_needed):
        return
    running = store.transition(
        job_id,
        JobStatus.RUNNING,
        expect=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING_CREDIT],
        want="local_reschedules",
    )
    if not running:
        report_outcome("succeeded", duplicate=True, status=str(store.status(job_id)))
        return
    if int(running.wanted or 0) != record.local_reschedules:
        # rescheduled locally after this run read the job (no change is possible once running)
        fresh = store.get(job_id) or record
        request = validate_at_run_time(store, job_id, "send", store.payload(job_id) or {}, fresh)
    hold_s = hold_delay_s(settings, request.scheduled_at)
    if hold_s > 0:
        until = time.time() + hold_s
        store.transition(
            job_id,
            JobStatus.QUEUED,
            expect=[JobStatus.RUNNING],
            held_until_ts=repr(until),
            held_until=utc_now_iso(until),
            reason="held until hold_lead_s before its Fecha",
        )
        defer(int(hold_s * 1000), reason="held_scheduled")
        return
    client = resources.client()  # configuration problems surface before the claim
    if not waiting and _starts_waiting(store, job_id):
        return
    token = uuid.uuid4().hex
    posted = False

    def post() -> Any:
        nonlocal posted
        now = time.time()
        claim = store.transition(
            job_id,
            JobStatus.IN_FLIGHT,
            expect=[JobStatus.RUNNING, JobStatus.QUEUED],
            incr_attempts=1,
            in_flight_token=token,
            in_flight_ts=now,
            in_flight_at=utc_now_iso(now),
            worker_id=resources.worker_id(),
        )
        if not claim:
            raise _ClaimLost(claim.previous)
        posted = True
        return client.send(request)

    try:
        result = resources.guard().call(
            function="send",
            budget=Budget.SEND,
            fingerprint=memo_params(request),
            fn=post,
        )
    except _ClaimLost as exc:
        report_outcome("succeeded", duplicate=True, status=str(exc))
        return
    except GuardDelay as exc:
        requeue(store, job_id, int(exc.delay_s * 1000), exc.reason, reason=exc.reason)
        return
    except AuthenticationFailed as exc:
        _release(store, job_id, token, exc, posted=posted)
        defer(settings.retry_max_backoff_ms, reason="authentication_failed")
        return
    except InsufficientCredits as exc:
        _wait_for_credit(store, job_id, token, exc)
        return
    except (ProviderRejected, RepeatedRejection) as exc:
        fail_rejected(store, job_id, exc)
        raise
    except BaseException as exc:
        if not posted or not_processed(exc):
            _release(store, job_id, token, exc, posted=posted)
            wait_s = breaker_wait_s(exc)
            if wait_s is not None:  # this failure opened the breaker: wait, burn no retry
                defer(int(wait_s * 1000), reason="breaker_open")
                return
            raise
        _outcome_unknown(store, job_id, token, exc)
        return
    if waiting or resources.guard().short_of_credit() is not None:
        resources.guard().credit_restored()
    scheduled = request.scheduled_at is not None and request.scheduled_at > datetime.now(UTC)
    to = JobStatus.SCHEDULED if scheduled else JobStatus.SENT
    recorded = store.transition(
        job_id,
        to,
        idmensaje=result.message_id,
        res=result.sent_count,
        credits_used=result.credits_used,
        not_sent=result.not_sent or None,
        result=result_json(result),
    )
    if result.not_sent:
        note_not_sent(store, job_id, result)
    # A callback may have arrived before this outcome was recorded: apply it now
    # (kept ones first: they were waiting for this idMensaje).
    replay_kept(store, job_id, enqueue=resources.producer().enqueue_follow_up)
    if recorded.recipients:
        refresh_job_status(store, job_id, enqueue=resources.producer().enqueue_follow_up)
    report_outcome("succeeded", res=result.sent_count, idmensaje=result.message_id, status=str(to))


def _keeps_waiting(store: JobStore, job_id: str, needed: float | None) -> bool:
    """A job waiting for credit: True (and deferred) unless the balance (checked at
    most once per ``credit_check_interval_s``) covers it and it has the send turn."""
    go, balance = resources.guard().credit_turn(lambda: resources.client().credits(), needed=needed)
    if go:
        store.append_event(job_id, "credit_available", credits_available=balance)
        return False
    if balance is not None:
        store.set_fields(job_id, credits_available=balance)
    defer(resources.settings().credit_check_interval_s * 1000, reason="waiting_credit")
    return True


def _starts_waiting(store: JobStore, job_id: str) -> bool:
    """A send while the account is known short waits without a request (its turn aside)."""
    go, balance = resources.guard().credit_turn(lambda: resources.client().credits(), needed=None)
    if go:
        return False
    store.transition(
        job_id,
        JobStatus.WAITING_CREDIT,
        expect=[JobStatus.RUNNING],
        credits_available=balance,
        reason="the account is short of credit: waiting for a top-up",
    )
    defer(resources.settings().credit_check_interval_s * 1000, reason="waiting_credit")
    return True


def _wait_for_credit(store: JobStore, job_id: str, token: str, exc: InsufficientCredits) -> None:
    """The provider refused the send for lack of credit: nothing was sent, no retry is
    burned and nothing is memoised; the job waits (``waiting_credit``) for a top-up."""
    store.transition(
        job_id,
        JobStatus.WAITING_CREDIT,
        expect=[JobStatus.IN_FLIGHT],
        guard=("in_flight_token", token),
        credits_needed=exc.credits_needed,
        credits_available=exc.credits_available,
        error=error_record(exc),
        res=exc.res,
        reason="not enough credit: waiting for a top-up",
    )
    interval_s = resources.settings().credit_check_interval_s
    report_outcome(
        "waiting_credit",
        res=exc.res,
        credits_needed=exc.credits_needed,
        credits_available=exc.credits_available,
        status=str(JobStatus.WAITING_CREDIT),
    )
    defer(interval_s * 1000, reason="waiting_credit")


def note_not_sent(store: JobStore, job_id: str, result: Any) -> None:
    """``NoEnviados`` > 0: some recipients were not sent (duplicated or not a correct
    mobile). The answer does not say which, so a report is asked for once: its
    entries mark them (a failure status), and the job lists them in ``not_sent_phones``.
    """
    store.append_event(
        job_id, "recipients_not_sent", idmensaje=result.message_id, not_sent=result.not_sent
    )
    log.warning(
        "recipients_not_sent", job_id=job_id, idmensaje=result.message_id, count=result.not_sent
    )
    if result.message_id:
        resources.producer().enqueue_follow_up(
            "report", {"Idmensaje": result.message_id}, f"not-sent-report:{result.message_id}"
        )


def _in_flight_elsewhere(store: JobStore, job_id: str, record: JobRecord) -> None:
    """A delivery found the job ``in_flight``: ``uncertain`` if its owner died, else wait."""
    settings = resources.settings()
    age_s = time.time() - (record.in_flight_ts or 0.0)
    if redelivery_count() > 0 or age_s >= settings.in_flight_timeout_s:
        reason = (
            "worker died mid-send: redelivered while in_flight"
            if redelivery_count() > 0
            else f"in_flight for {int(age_s)} s without an outcome"
        )
        if store.transition(
            job_id, JobStatus.UNCERTAIN, expect=[JobStatus.IN_FLIGHT], reason=reason
        ):  # callbacks kept while it was in_flight reconcile it now
            replay_kept(store, job_id, enqueue=resources.producer().enqueue_follow_up)
        report_outcome("uncertain", reason=reason, status="uncertain")
        return
    defer(int((settings.in_flight_timeout_s - age_s) * 1000) + 1000, reason="in_flight_elsewhere")


def _outcome_unknown(store: JobStore, job_id: str, token: str, exc: BaseException) -> None:
    """The body may have left and no answer came: ``uncertain``, never re-posted."""
    reason = f"outcome unknown: {type(exc).__name__}"
    if store.transition(
        job_id,
        JobStatus.UNCERTAIN,
        expect=[JobStatus.IN_FLIGHT],
        guard=("in_flight_token", token),
        error=error_record(exc),
        reason=reason,
    ):  # callbacks kept while it was in_flight reconcile it now
        replay_kept(store, job_id, enqueue=resources.producer().enqueue_follow_up)
    report_outcome(
        "uncertain",
        reason=reason,
        http_status=getattr(exc, "http_status", None),
        error_class=type(exc).__name__,
        status="uncertain",
    )


def _release(store: JobStore, job_id: str, token: str, exc: BaseException, *, posted: bool) -> None:
    """Give the job back to ``queued`` after a definite not-sent answer (or before posting)."""
    if posted:
        store.transition(
            job_id,
            JobStatus.QUEUED,
            expect=[JobStatus.IN_FLIGHT],
            guard=("in_flight_token", token),
            error=error_record(exc),
            reason="not sent: will retry",
        )
    else:
        store.transition(
            job_id,
            JobStatus.QUEUED,
            expect=[JobStatus.RUNNING],
            error=error_record(exc),
            reason="will retry",
        )
