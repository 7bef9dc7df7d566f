"""One dramatiq actor per provider function, and the exactly-once send.

Importing this module sets up the broker first (:func:`worker.broker.runtime`), so
the actors bind to the certsms broker. Every actor takes the contract's kwargs
(:mod:`tasks.contract`) and runs :func:`execute`.

Retries: per actor, bounded by ``send_max_retries`` / ``query_max_retries`` with
dramatiq's jittered exponential backoff between ``retry_min_backoff_ms`` and
``retry_max_backoff_ms``; permanent errors (provider rejections, invalid input,
repeated rejections, malformed messages) are ``throws``: the job is ``failed`` at
once. A :class:`GuardDelay` (or an authentication failure, which opens the guard's
breaker) re-enqueues a copy of the message with a delay and burns no retry.

The exactly-once send: the job moves to ``in_flight`` (attempt, time, worker, a
token) atomically from ``queued``/``running`` right before the POST; only one
delivery can win that move. A lost answer after the body may have left, or a
redelivered message that finds ``in_flight`` (its worker died mid-call), makes the
job ``uncertain``: it is never re-posted automatically (``certsms resolve``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import CurrentMessage

from config.settings import Settings
from mensatek.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ProviderRejected,
    ProviderUnavailable,
    TransportError,
)
from tasks.contract import ACTOR_OF, KINDS, QUEUE_OF, parse_kwargs
from tasks.producer import validate
from worker import control
from worker.broker import runtime
from worker.errors import MalformedMessage
from worker.guard import Budget, GuardDelay, ProviderGuard, RepeatedRejection, is_unhealthy
from worker.jobs.store import SETTLED, JobStatus, JobStore, utc_now_iso
from worker.middleware import redelivery_count, report_outcome
from worker.status_updates import certificate_downloaded, refresh_job_status

log = structlog.get_logger(__name__)

_rt = runtime()  # the broker must be set before any @actor runs

#: Errors that fail a job at once, without retry.
PERMANENT: tuple[type[BaseException], ...] = (
    ProviderRejected,
    InvalidRequest,
    RepeatedRejection,
    MalformedMessage,
)
IDEMPOTENT = frozenset({"certificate", "report", "list_files", "credits"})
_WRITE_KINDS = frozenset({"send", "cancel", "reschedule", "upload", "delete_file"})
_local = threading.local()
_guard_lock = threading.Lock()
_guards: dict[int, ProviderGuard] = {}


class _ClaimLost(Exception):
    """Raised inside the guarded call when another delivery owns the job."""


# --- per-process and per-thread collaborators ------------------------------------------
def _settings() -> Settings:
    return runtime().settings


def _store() -> JobStore:
    rt = runtime()
    return JobStore(rt.redis, rt.settings)


def _client() -> Any:
    from mensatek.client import MensatekClient

    settings = _settings()
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "settings", None) is not settings:
        if client is not None:
            client.close()
        client = MensatekClient(settings)
        _local.client, _local.settings = client, settings
    return client


def _guard() -> ProviderGuard:
    rt = runtime()
    with _guard_lock:
        guard = _guards.get(id(rt.settings))
        if guard is None:
            _guards.clear()
            guard = _guards[id(rt.settings)] = ProviderGuard(rt.redis, rt.settings)
        return guard


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


# --- error helpers ------------------------------------------------------------------
def _error(exc: BaseException) -> dict[str, Any]:
    as_dict = getattr(exc, "as_dict", None)
    data: dict[str, Any] = as_dict() if callable(as_dict) else {"class": type(exc).__name__}
    data.setdefault("message", str(exc)[:500])
    return data


def _not_processed(exc: BaseException) -> bool:
    """True when the provider certainly did not act on the request (safe to repeat)."""
    if isinstance(exc, TransportError):
        return not exc.request_sent
    if isinstance(exc, ProviderUnavailable):
        status = exc.http_status
        return status is not None and (status >= 500 or status in (403, 429))
    return False


def _breaker_wait_s(exc: BaseException) -> float | None:
    """After an unhealthy answer: how long to wait if the breaker is now open, else None.

    A failed probe (or the failure that opened the breaker) is the provider's state,
    not the job's fault: the job waits for the cool-down like every other job instead
    of burning a retry, so a long block cannot exhaust the retries of the probe jobs.
    """
    if not is_unhealthy(exc):
        return None
    guard = _guard()
    try:
        state = guard.breaker.state(guard.now_s())
    except Exception:  # Redis trouble: fall back to an ordinary retry
        return None
    if state["state"] == "closed":
        return None
    remaining = state["remaining_s"]
    return max(float(remaining) if isinstance(remaining, int | float) else 0.0, 0.5)


def _retry_when_for(setting: str) -> Callable[[int, BaseException], bool]:
    def retry_when(retries: int, exc: BaseException) -> bool:
        limit = int(getattr(_settings(), setting))
        return retries < limit and not isinstance(exc, PERMANENT)

    return retry_when


def _defer(delay_ms: int, *, reason: str) -> None:
    """Re-enqueue a copy of the current message after ``delay_ms`` (no retry burned)."""
    message = CurrentMessage.get_current_message()
    if message is None:  # pragma: no cover - always set inside an actor
        raise RuntimeError("no current message")
    delay_ms = max(100, int(delay_ms)) + random.randint(0, 250)
    runtime().broker.enqueue(message.copy(), delay=delay_ms)
    report_outcome("retrying", reason=reason, delay_ms=delay_ms)


def _result_json(result: Any) -> Any:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        data = {
            f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "raw"
        }
    else:
        data = result
    return json.loads(json.dumps(data, default=_json_default))


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name != "raw"
        }
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _memo_params(request: Any) -> dict[str, object]:
    """A send's failure-memo fingerprint: its parameters without ``Referenciausuario``.

    The reference is our own tag (the job id unless the producer chose one), so a
    burst of jobs with the same rejected payload would otherwise look like distinct
    requests and each reach the provider; a rejection never depends on it.
    """
    params = dict(request.fingerprint_params())
    params.pop("Referenciausuario", None)
    return params


# --- the job ------------------------------------------------------------------------
def execute(actor_name: str, kwargs: dict[str, Any]) -> None:
    """Run one job message (see the module docstring)."""
    job = parse_kwargs(actor_name, (), kwargs)
    store = _store()
    record = store.get(job.job_id)
    payload = dict(job.payload)
    if record is None:  # a producer that only has dramatiq: adopt the job
        reference = None
        if job.kind == "send" and not any(
            k.lower() in ("referenciausuario", "reference") for k in payload
        ):
            payload["Referenciausuario"] = job.job_id
            reference = job.job_id
        message = CurrentMessage.get_current_message()
        store.create(
            job.job_id,
            kind=job.kind,
            payload=payload,
            reference=reference,
            fields={"source": "message", "message_id": message.message_id if message else None},
        )
        record = store.get(job.job_id) or {}
    status = JobStatus(record["status"])
    if status in SETTLED:
        report_outcome("succeeded", duplicate=True, status=str(status))
        return
    if job.kind == "send" and record.get("local_reschedules"):
        payload = store.payload(job.job_id) or payload  # moved by a local reschedule
    if job.kind in control.TARGET_KINDS and control.targets_job(payload):
        step = control.for_actor(store, job.job_id, job.kind, payload)
        if step.action == "defer":
            _defer(int(control.IN_FLIGHT_WAIT_S * 1000), reason=step.reason)
            return
        if step.action != "provider":
            report_outcome("succeeded" if step.action == "done" else "failed", reason=step.reason)
            return
        payload = dict(step.payload or {})
    try:
        request = _validate_at_run_time(store, job.job_id, job.kind, payload, record)
    except InvalidRequest as exc:
        store.transition(job.job_id, JobStatus.FAILED, error=_error(exc), reason="invalid request")
        report_outcome("failed", status="failed")
        raise
    if job.kind == "send":
        _run_send(store, job.job_id, request, record, status)
    else:
        _run_other(store, job.job_id, job.kind, request)


def _validate_at_run_time(
    store: JobStore, job_id: str, kind: str, payload: dict[str, Any], record: dict[str, Any]
) -> Any:
    """Validate again in the worker, judging a send's ``Fecha`` as at enqueue time.

    A send that was valid when enqueued stays valid: if its scheduled time passed
    while it waited in the queue, it is sent now (without ``Fecha``) and an event
    says so, rather than failing a legal notification for our own delay. Other
    kinds (a reschedule to a past date) are judged against the real clock.
    """
    if kind != "send":
        return validate(kind, payload)
    created = record.get("created_at")
    enqueued_at = datetime.fromisoformat(created) if created else None
    request = validate(kind, payload, now=enqueued_at)
    if request.scheduled_at is not None and request.scheduled_at <= datetime.now(UTC):
        store.append_event(job_id, "schedule_passed", scheduled_at=request.scheduled_at.isoformat())
        request = dataclasses.replace(request, scheduled_at=None)
    return request


def _run_send(
    store: JobStore, job_id: str, request: Any, record: dict[str, Any], status: JobStatus
) -> None:
    settings = _settings()
    if status == JobStatus.IN_FLIGHT:
        age_s = time.time() - float(record.get("in_flight_ts") or 0)
        if redelivery_count() > 0 or age_s >= settings.in_flight_timeout_s:
            reason = (
                "worker died mid-send: redelivered while in_flight"
                if redelivery_count() > 0
                else f"in_flight for {int(age_s)} s without an outcome"
            )
            store.transition(
                job_id, JobStatus.UNCERTAIN, expect=[JobStatus.IN_FLIGHT], reason=reason
            )
            report_outcome("uncertain", reason=reason, status="uncertain")
            return
        _defer(
            int((settings.in_flight_timeout_s - age_s) * 1000) + 1000, reason="in_flight_elsewhere"
        )
        return
    if not store.transition(
        job_id, JobStatus.RUNNING, expect=[JobStatus.QUEUED, JobStatus.RUNNING]
    ):
        report_outcome("succeeded", duplicate=True, status=str(store.status(job_id)))
        return
    fresh = store.get(job_id) or record
    if fresh.get("local_reschedules") != record.get("local_reschedules"):
        # rescheduled locally after this run read the job (no change is possible once running)
        request = _validate_at_run_time(store, job_id, "send", store.payload(job_id) or {}, fresh)
    hold_s = control.hold_delay_s(settings, request.scheduled_at)
    if hold_s > 0:
        until = time.time() + hold_s
        store.transition(
            job_id, JobStatus.QUEUED, expect=[JobStatus.RUNNING], held_until_ts=repr(until),
            held_until=utc_now_iso(until), reason="held until hold_lead_s before its Fecha",
        )  # fmt: skip
        _defer(int(hold_s * 1000), reason="held_scheduled")
        return
    token = uuid.uuid4().hex
    posted = False
    client = _client()  # configuration problems surface before the claim

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
            worker_id=_worker_id(),
        )
        if not claim:
            raise _ClaimLost(claim.previous)
        posted = True
        return client.send(request)

    try:
        result = _guard().call(
            function="send",
            budget=Budget.SEND,
            fingerprint=_memo_params(request),
            fn=post,
        )
    except _ClaimLost as exc:
        report_outcome("succeeded", duplicate=True, status=str(exc))
        return
    except GuardDelay as exc:
        store.transition(job_id, JobStatus.QUEUED, expect=[JobStatus.RUNNING], reason=exc.reason)
        _defer(int(exc.delay_s * 1000), reason=exc.reason)
        return
    except AuthenticationFailed as exc:
        _release(store, job_id, token, exc, posted=posted)
        _defer(settings.retry_max_backoff_ms, reason="authentication_failed")
        return
    except (ProviderRejected, RepeatedRejection) as exc:
        store.transition(
            job_id,
            JobStatus.FAILED,
            error=_error(exc),
            res=exc.res,
            reason="rejected by the provider",
        )
        report_outcome("failed", res=exc.res, http_status=exc.http_status, status="failed")
        raise
    except BaseException as exc:
        if not posted or _not_processed(exc):
            _release(store, job_id, token, exc, posted=posted)
            wait_s = _breaker_wait_s(exc)
            if wait_s is not None:  # this failure opened the breaker: wait, burn no retry
                _defer(int(wait_s * 1000), reason="breaker_open")
                return
            raise
        reason = f"outcome unknown: {type(exc).__name__}"
        store.transition(
            job_id,
            JobStatus.UNCERTAIN,
            expect=[JobStatus.IN_FLIGHT],
            guard=("in_flight_token", token),
            error=_error(exc),
            reason=reason,
        )
        report_outcome(
            "uncertain",
            reason=reason,
            http_status=getattr(exc, "http_status", None),
            error_class=type(exc).__name__,
            status="uncertain",
        )
        return
    scheduled = request.scheduled_at is not None and request.scheduled_at > datetime.now(UTC)
    to = JobStatus.SCHEDULED if scheduled else JobStatus.SENT
    store.transition(
        job_id,
        to,
        idmensaje=result.message_id,
        res=result.sent_count,
        credits_used=result.credits_used,
        result=_result_json(result),
    )
    # A callback may have arrived before this outcome was recorded: apply it now.
    refresh_job_status(store, job_id)
    report_outcome("succeeded", res=result.sent_count, idmensaje=result.message_id, status=str(to))


def _release(store: JobStore, job_id: str, token: str, exc: BaseException, *, posted: bool) -> None:
    """Give the job back to ``queued`` after a definite not-sent answer (or before posting)."""
    if posted:
        store.transition(
            job_id,
            JobStatus.QUEUED,
            expect=[JobStatus.IN_FLIGHT],
            guard=("in_flight_token", token),
            error=_error(exc),
            reason="not sent: will retry",
        )
    else:
        store.transition(
            job_id,
            JobStatus.QUEUED,
            expect=[JobStatus.RUNNING],
            error=_error(exc),
            reason="will retry",
        )


_BUDGET = {
    "cancel": Budget.SEND,
    "reschedule": Budget.SEND,
    "upload": Budget.SEND,
    "delete_file": Budget.SEND,
    "report": Budget.QUERY,
    "list_files": Budget.QUERY,
    "credits": Budget.QUERY,
    "certificate": Budget.QUERY,
}


def _run_other(store: JobStore, job_id: str, kind: str, request: Any) -> None:
    if not store.transition(
        job_id, JobStatus.RUNNING, expect=[JobStatus.QUEUED, JobStatus.RUNNING]
    ):
        report_outcome("succeeded", duplicate=True, status=str(store.status(job_id)))
        return
    store.transition(job_id, JobStatus.RUNNING, expect=[JobStatus.RUNNING], incr_attempts=1,
                     event="job_attempt_started", worker_id=_worker_id())  # fmt: skip
    budget = _BUDGET[kind]
    if kind == "certificate" and getattr(request, "mode", None) == "date_range":
        budget = Budget.RANGE_DOWNLOAD
    fingerprint = request.fingerprint_params() if request is not None else None
    download: Path | None = None
    try:
        if kind == "credits":
            credits, age_s = _guard().credits(lambda: _client().credits())
            result: Any = {"credits": credits, "age_s": age_s}
        else:
            if kind == "certificate":
                tmp_dir = Path(_settings().cert_dir) / ".downloads"
                tmp_dir.mkdir(parents=True, exist_ok=True)
                download = Path(
                    tempfile.mkstemp(dir=tmp_dir, prefix=f"{job_id}-", suffix=".zip")[1]
                )
            call = _call_for(kind, request, download)
            result = _guard().call(
                function=kind,
                budget=budget,
                fingerprint=fingerprint,
                fn=call,
                **_cache_for(kind, request),
            )
    except GuardDelay as exc:
        store.transition(job_id, JobStatus.QUEUED, expect=[JobStatus.RUNNING], reason=exc.reason)
        _defer(int(exc.delay_s * 1000), reason=exc.reason)
        return
    except AuthenticationFailed as exc:
        store.transition(job_id, JobStatus.QUEUED, expect=[JobStatus.RUNNING], error=_error(exc))
        _defer(_settings().retry_max_backoff_ms, reason="authentication_failed")
        return
    except (ProviderRejected, RepeatedRejection) as exc:
        store.transition(
            job_id,
            JobStatus.FAILED,
            error=_error(exc),
            res=exc.res,
            reason="rejected by the provider",
        )
        report_outcome("failed", res=exc.res, http_status=exc.http_status, status="failed")
        raise
    except BaseException as exc:
        if (
            kind in _WRITE_KINDS
            and not _not_processed(exc)
            and isinstance(exc, TransportError | ProviderUnavailable)
        ):
            reason = f"outcome unknown: {type(exc).__name__}"
            store.transition(job_id, JobStatus.UNCERTAIN, error=_error(exc), reason=reason)
            report_outcome(
                "uncertain", reason=reason, http_status=getattr(exc, "http_status", None)
            )
            return
        wait_s = _breaker_wait_s(exc)
        if wait_s is not None:  # this failure opened the breaker: wait, burn no retry
            store.transition(
                job_id, JobStatus.QUEUED, expect=[JobStatus.RUNNING], error=_error(exc),
                reason="breaker_open",
            )  # fmt: skip
            _defer(int(wait_s * 1000), reason="breaker_open")
            return
        store.set_fields(job_id, error=_error(exc))
        raise
    finally:
        if download is not None and download.exists() and kind != "certificate":
            download.unlink()
    data = _result_json(result)
    if kind == "certificate":
        data = _store_certificate(job_id, request, result, download, data)
    res = data.get("cancelled_count") if isinstance(data, dict) else None
    store.transition(job_id, JobStatus.SUCCEEDED, result=data, res=res)
    _after_success(store, job_id, kind, request, result)
    report_outcome("succeeded", status="succeeded")


def _cache_for(kind: str, request: Any) -> dict[str, Any]:
    """Identical report queries within ``report_cache_ttl_s`` share one answer.

    The provider counts a report repeated with the same parameters within seconds as
    spam; report jobs use the same cache entry as the report poller.
    """
    if kind != "report":
        return {}
    from worker.guard.codecs import REPORT_CODEC, report_cache_key

    return {"cache_key": report_cache_key(request.message_id), "codec": REPORT_CODEC}


def _call_for(kind: str, request: Any, download: Path | None) -> Callable[[], Any]:
    client = _client()
    if kind == "certificate":
        assert download is not None
        return lambda: client.certificate(request, download)
    if kind == "list_files":
        return lambda: client.list_files()
    return lambda: getattr(client, kind)(request)


def _store_certificate(
    job_id: str, request: Any, result: Any, download: Path | None, data: dict[str, Any]
) -> dict[str, Any]:
    """Put a per-recipient certificate into the evidence store; keep other ZIPs by job id."""
    settings = _settings()
    source = Path(getattr(result, "path", download) or "")
    if getattr(request, "mode", None) == "message_phone":
        # Stored under the *send* job, which moves to evidence_stored when complete.
        stored = certificate_downloaded(
            _store(),
            message_id=request.message_id,
            phone=request.phone,
            path=source,
            sha256=getattr(result, "sha256", None),
        )
        source.unlink(missing_ok=True)
        data["stored"] = _result_json(stored)
        return data
    target = Path(settings.cert_dir) / "jobs" / f"{job_id}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    data["path"] = str(target)
    return data


def _after_success(store: JobStore, job_id: str, kind: str, request: Any, result: Any) -> None:
    """Side effects on the send job a cancel or report refers to."""
    message_id = getattr(request, "message_id", None)
    if message_id is None:
        return
    send_job = store.find_by_message_id(message_id)
    if send_job is None:
        return
    if kind == "cancel" and int(getattr(result, "cancelled_count", 0) or 0) > 0:
        store.transition(send_job, JobStatus.CANCELLED, reason=f"cancelled by job {job_id}")
    if kind == "reschedule":
        control.after_provider_reschedule(store, message_id, request.scheduled_at)
    if kind == "report":
        for entry in getattr(result, "recipients", ()) or ():
            _apply_report_entry(store, send_job, message_id, entry)


def _apply_report_entry(store: JobStore, send_job: str, message_id: int, entry: Any) -> None:
    try:
        from worker.status_updates import apply_recipient_status
    except ImportError:  # the web area's module; fall back to the store alone
        apply: Any = None
    else:
        apply = apply_recipient_status
    if apply is not None:
        apply(
            store, message_id=message_id, reference=None, phone=entry.phone,
            result_code=entry.result_code, at=entry.reported_at, source="report",
        )  # fmt: skip
        return
    from mensatek.status import classify

    store.update_recipient(
        send_job,
        entry.phone,
        result_code=entry.result_code,
        status_class=str(classify(entry.result_code, certified_codes=_settings().certified_codes)),
        at=entry.reported_at,
        source="report",
    )


# --- the actors -----------------------------------------------------------------------
def _declare(kind: str) -> Any:
    actor_name = ACTOR_OF[kind]
    setting = "send_max_retries" if kind in _WRITE_KINDS else "query_max_retries"

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
