"""Cancel and reschedule of sends we still hold, and holding scheduled sends.

Payloads: ``cancel`` takes ``{"Idmensaje": N}`` (a message at the provider) or
``{"job_id": "<send job id>"}``; ``reschedule`` takes ``{"Idmensaje": N, "Fecha": ...}``
or ``{"job_id": ..., "Fecha": ...}``. Never both ``job_id`` and ``Idmensaje``.

By job id, what happens depends on where the send is:

===================  ==========================================================
send job status      cancel / reschedule
===================  ==========================================================
queued (or held)     done locally at enqueue time, atomically, no provider request:
                     the send becomes ``cancelled`` / gets the new ``Fecha``
running              cancel: locally (the send's exactly-once claim then fails,
                     nothing is posted); reschedule: waits for the outcome
in_flight            waits (the cancel/reschedule job re-queues itself each second)
                     until the send's outcome is known, then decides again
scheduled            one provider request with the send's ``idMensaje``
cancelled            cancel: succeeds (nothing to do); reschedule: fails
anything else        fails with the reason (already sent, failed, ``uncertain``…)
===================  ==========================================================

Holding (``hold_scheduled``): a send whose ``Fecha`` is more than ``hold_lead_s``
away stays ``queued`` in certsms (a delayed dramatiq message; field
``held_until``) and goes to the provider ``hold_lead_s`` before its time, with its
``Fecha``. Held or not, cancel and reschedule by job id behave the same for the user.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from config.settings import Settings
from mensatek.errors import FieldProblem, InvalidRequest
from worker.jobs.store import JobStatus, JobStore, utc_now_iso

log = structlog.get_logger(__name__)

TARGET_KINDS = frozenset({"cancel", "reschedule"})
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_FECHA_KEYS = ("fecha", "scheduled_at")
#: dramatiq refuses delays of 7 days or more: a longer hold is renewed when it ends.
MAX_HOLD_S = 6 * 86_400
IN_FLIGHT_WAIT_S = 1.0


@dataclass(frozen=True)
class JobTarget:
    """A cancel or reschedule aimed at one of our send jobs (``job_id``)."""

    kind: str
    job_id: str
    scheduled_at: datetime | None = None

    def to_payload(self) -> dict[str, Any]:
        """The payload as it travels (``job_id`` and, for a reschedule, ``Fecha``)."""
        data: dict[str, Any] = {"job_id": self.job_id}
        if self.scheduled_at is not None:
            data["Fecha"] = self.scheduled_at.isoformat()
        return data

    def fingerprint_params(self) -> dict[str, Any]:
        """Canonical parameters (never memoised: no provider request is made with them)."""
        return self.to_payload()


def targets_job(payload: Mapping[str, Any] | None) -> bool:
    """Whether a cancel/reschedule payload names a job id."""
    return any(str(k).lower() == "job_id" for k in (payload or {}))


def validate_target(
    kind: str, payload: Mapping[str, Any], *, now: datetime | None = None
) -> JobTarget:
    """Check a by-job-id payload; :class:`InvalidRequest` names every bad field."""
    keys = {str(k).lower(): v for k, v in payload.items()}
    problems: list[FieldProblem] = []
    job_id = keys.pop("job_id", None)
    if not isinstance(job_id, str) or not _JOB_ID_RE.match(job_id):
        problems.append(
            FieldProblem(
                "job_id", "job_id", "must be a job id (1-128 characters of [A-Za-z0-9._:-])"
            )
        )
    if "idmensaje" in keys or "message_id" in keys:
        problems.append(
            FieldProblem("Idmensaje", "message_id", "give job_id or Idmensaje, not both")
        )
        keys.pop("idmensaje", None)
        keys.pop("message_id", None)
    scheduled_at: datetime | None = None
    if kind == "reschedule":
        fecha = next((keys.pop(k) for k in _FECHA_KEYS if k in keys), None)
        if fecha is None:
            problems.append(FieldProblem("Fecha", "scheduled_at", "is required"))
        else:
            from mensatek.requests import request_from_payload

            try:
                model = request_from_payload(
                    "reschedule", {"Idmensaje": 1, "Fecha": fecha}, now=now
                )
                scheduled_at = getattr(model, "scheduled_at", None)
            except InvalidRequest as exc:
                problems += [p for p in exc.problems if p.provider_name.lower() == "fecha"]
    for extra in sorted(keys):
        problems.append(FieldProblem(extra, extra, "is not a parameter of " + kind))
    if problems:
        raise InvalidRequest(problems, function=kind)
    assert isinstance(job_id, str)
    return JobTarget(kind=kind, job_id=job_id, scheduled_at=scheduled_at)


def check_target(store: JobStore, target: JobTarget) -> dict[str, Any]:
    """The target send job's record; :class:`InvalidRequest` on ``job_id`` when there is none."""
    record = store.get(target.job_id)
    if record is None or record.get("kind") != "send":
        what = "no such job" if record is None else f"job is a {record.get('kind')} job, not a send"
        raise InvalidRequest([FieldProblem("job_id", "job_id", what)], function=target.kind)
    return record


def _with_fecha(payload: Mapping[str, Any], when: datetime) -> dict[str, Any]:
    data = {k: v for k, v in payload.items() if str(k).lower() not in _FECHA_KEYS}
    data["Fecha"] = when.isoformat()
    return data


@dataclass(frozen=True)
class LocalResult:
    """A cancel/reschedule done without the provider."""

    send_job_id: str
    previous_status: str
    action: str  # "cancelled" | "rescheduled"

    def as_result(self) -> dict[str, Any]:
        """The control job's ``result``."""
        return {
            "local": True,
            "send_job_id": self.send_job_id,
            "previous_status": self.previous_status,
            "action": self.action,
            "provider_requests": 0,
        }


def try_local(
    store: JobStore, target: JobTarget, *, control_job_id: str, settings: Settings | None = None
) -> LocalResult | None:
    """Cancel/reschedule the send locally if it has not reached the provider (atomic)."""
    if target.kind == "cancel":
        moved = store.transition(
            target.job_id,
            JobStatus.CANCELLED,
            expect=[JobStatus.QUEUED, JobStatus.RUNNING],
            reason=f"cancelled by job {control_job_id} before it reached the provider",
            cancelled_by=control_job_id,
            source="local",
        )
        if not moved:
            return None
        log.info("send_cancelled_locally", job_id=target.job_id, control_job_id=control_job_id)
        return LocalResult(target.job_id, str(moved.previous), "cancelled")
    assert target.scheduled_at is not None
    payload = store.payload(target.job_id) or {}
    record = store.get(target.job_id) or {}
    moved = store.transition(
        target.job_id,
        JobStatus.QUEUED,
        expect=[JobStatus.QUEUED],
        event="job_rescheduled",
        payload=_with_fecha(payload, target.scheduled_at),
        incr_local_reschedules=1,
        scheduled_at=target.scheduled_at.isoformat(),
        reason=f"rescheduled by job {control_job_id} before it reached the provider",
        source="local",
    )
    if not moved:
        return None
    held = record.get("held_until_ts")
    settings = settings or store.settings
    if held and float(held) > hold_until_ts(settings, target.scheduled_at):
        # held for the old, later time: a fresh message wakes it up in time
        from tasks.producer import send_message_for

        send_message_for(target.job_id, settings=settings)
    log.info("send_rescheduled_locally", job_id=target.job_id, control_job_id=control_job_id)
    return LocalResult(target.job_id, str(moved.previous), "rescheduled")


# --- in the cancel/reschedule actor -------------------------------------------------------
@dataclass(frozen=True)
class ActorStep:
    """What the actor does with a by-job-id cancel/reschedule."""

    action: str  # "done" | "failed" | "defer" | "provider"
    payload: dict[str, Any] | None = None
    reason: str = ""
    result: dict[str, Any] | None = None


def for_actor(
    store: JobStore, control_job_id: str, kind: str, payload: Mapping[str, Any]
) -> ActorStep:
    """Decide (see the module table) and, for the local and failed cases, record it."""
    try:
        target = validate_target(kind, payload)
        record = check_target(store, target)
    except InvalidRequest as exc:
        return _fail(store, control_job_id, str(exc))
    status = JobStatus(record["status"])
    if status in (JobStatus.QUEUED, JobStatus.RUNNING):
        local = try_local(store, target, control_job_id=control_job_id)
        if local is not None:
            store.transition(control_job_id, JobStatus.SUCCEEDED, result=local.as_result())
            return ActorStep("done", result=local.as_result())
        return ActorStep("defer", reason="send_in_progress")
    if status == JobStatus.IN_FLIGHT:
        return ActorStep("defer", reason="send_in_flight")
    if status == JobStatus.SCHEDULED and record.get("idmensaje"):
        data: dict[str, Any] = {"Idmensaje": int(record["idmensaje"])}
        if target.scheduled_at is not None:
            data["Fecha"] = target.scheduled_at.isoformat()
        return ActorStep("provider", payload=data)
    if status == JobStatus.CANCELLED and kind == "cancel":
        result = {"local": True, "send_job_id": target.job_id, "already": "cancelled"}
        store.transition(control_job_id, JobStatus.SUCCEEDED, result=result)
        return ActorStep("done", result=result)
    if status == JobStatus.UNCERTAIN:
        reason = (
            f"send job {target.job_id} is uncertain (outcome unknown): resolve it first "
            "(certsms resolve), then cancel or reschedule by idMensaje"
        )
    else:
        reason = (
            f"send job {target.job_id} is {status}: "
            f"only a queued, held or scheduled send can be {kind}d"
        )
    return _fail(store, control_job_id, reason)


def _fail(store: JobStore, control_job_id: str, reason: str) -> ActorStep:
    store.transition(
        control_job_id,
        JobStatus.FAILED,
        reason=reason,
        error={"class": "NotApplicable", "message": reason},
    )
    return ActorStep("failed", reason=reason)


def after_provider_reschedule(store: JobStore, message_id: int, scheduled_at: datetime) -> None:
    """Record a provider-side reschedule on the send job (and restart its polling)."""
    send_job = store.find_by_message_id(message_id)
    if send_job is None:
        return
    payload = store.payload(send_job)
    if payload is not None:
        store.set_fields(send_job, payload=_with_fecha(payload, scheduled_at))
    store.set_fields(send_job, scheduled_at=scheduled_at.isoformat(), rescheduled_at=utc_now_iso())
    store.append_event(send_job, "job_rescheduled", idmensaje=message_id, source="provider")
    from worker.poller import ReportPoller

    poller = ReportPoller(store.redis, store.settings)
    if poller.next_poll(send_job) is not None:
        poller.forget(send_job)
        poller.track(send_job)


# --- holding scheduled sends ----------------------------------------------------------------
def hold_until_ts(settings: Settings, scheduled_at: datetime | None) -> float:
    """When a held send goes to the provider (epoch s); 0 when it is not held."""
    if not settings.hold_scheduled or scheduled_at is None:
        return 0.0
    return scheduled_at.timestamp() - settings.hold_lead_s


def hold_delay_s(
    settings: Settings, scheduled_at: datetime | None, *, now: float | None = None
) -> float:
    """How long to keep a send in certsms before posting it (0 = post now)."""
    until = hold_until_ts(settings, scheduled_at)
    now = datetime.now(UTC).timestamp() if now is None else now
    delay = until - now
    return min(delay, MAX_HOLD_S) if delay > 1.0 else 0.0
