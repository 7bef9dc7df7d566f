"""Cancel and reschedule of sends we still hold, and holding scheduled sends.

Payloads: ``cancel`` takes ``{"Idmensaje": N}`` (a message at the provider) or
``{"job_id": "<send job id>"}``; ``reschedule`` takes ``{"Idmensaje": N, "Fecha": ...}``
or ``{"job_id": ..., "Fecha": ...}``. Never both ``job_id`` and ``Idmensaje``.

By job id, what happens depends on where the send is:

===================  ==========================================================
send job status      cancel / reschedule
===================  ==========================================================
queued (or held),    done locally at enqueue time, atomically, no provider request:
waiting_credit       the send becomes ``cancelled`` / gets the new ``Fecha``
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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from certsms.config.settings import Settings
from certsms.mensatek.errors import FieldProblem, InvalidRequest
from certsms.mensatek.payloads import request_from_payload
from certsms.worker.jobs.contract import job_id_problem
from certsms.worker.jobs.store import JobRecord, JobStatus, JobStore

log = structlog.get_logger(__name__)

TARGET_KINDS = frozenset({"cancel", "reschedule"})
_FECHA_KEYS = ("fecha", "scheduled_at")
#: dramatiq refuses delays of 7 days or more: a longer hold is renewed when it ends.
MAX_HOLD_S = 6 * 86_400
IN_FLIGHT_WAIT_S = 1.0

#: Send statuses in which certsms still holds the message (nothing reached the provider):
#: a cancel is local; a reschedule is local from ``queued`` or ``waiting_credit``.
HELD = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING_CREDIT)

Requeue = Callable[[str], str]
"""``(job_id) -> dramatiq message id``: queue a fresh message for an existing job."""


@dataclass(frozen=True)
class JobTarget:
    """A cancel or reschedule aimed at one of our send jobs (``job_id``)."""

    kind: str
    job_id: str
    scheduled_at: datetime | None = None

    def to_payload(self) -> dict[str, Any]:
        """The canonical payload (``job_id`` and, for a reschedule, ``scheduled_at``)."""
        data: dict[str, Any] = {"job_id": self.job_id}
        if self.scheduled_at is not None:
            data["scheduled_at"] = self.scheduled_at.isoformat()
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
    bad_id = job_id_problem(job_id)
    if bad_id:
        problems.append(FieldProblem("job_id", "job_id", f"must be a job id: {bad_id}"))
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


def check_target(store: JobStore, target: JobTarget) -> JobRecord:
    """The target send job's record; :class:`InvalidRequest` on ``job_id`` when there is none."""
    record = store.get(target.job_id)
    if record is None or record.kind != "send":
        what = "no such job" if record is None else f"job is a {record.kind} job, not a send"
        raise InvalidRequest([FieldProblem("job_id", "job_id", what)], function=target.kind)
    return record


def with_scheduled_at(payload: Mapping[str, Any], when: datetime) -> dict[str, Any]:
    """A send's recorded payload moved to ``when`` (its canonical ``scheduled_at``)."""
    data = {k: v for k, v in payload.items() if str(k).lower() not in _FECHA_KEYS}
    data["scheduled_at"] = when.isoformat()
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
    store: JobStore, target: JobTarget, *, control_job_id: str, requeue: Requeue
) -> LocalResult | None:
    """Cancel/reschedule the send locally if it has not reached the provider (atomic).

    ``requeue`` wakes a held send whose new time is earlier than its hold.
    """
    if target.kind == "cancel":
        moved = store.transition(
            target.job_id,
            JobStatus.CANCELLED,
            expect=[*HELD],
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
    record = store.get(target.job_id)
    moved = store.transition(
        target.job_id,
        JobStatus.QUEUED,
        expect=[JobStatus.QUEUED, JobStatus.WAITING_CREDIT],
        event="job_rescheduled",
        payload=with_scheduled_at(payload, target.scheduled_at),
        incr_local_reschedules=1,
        scheduled_at=target.scheduled_at.isoformat(),
        reason=f"rescheduled by job {control_job_id} before it reached the provider",
        source="local",
    )
    if not moved:
        return None
    held = record.held_until_ts if record else None
    if held and held > hold_until_ts(store.settings, target.scheduled_at):
        requeue(target.job_id)  # held for the old, later time: a fresh message wakes it
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
    store: JobStore, control_job_id: str, kind: str, payload: Mapping[str, Any], *, requeue: Requeue
) -> ActorStep:
    """Decide (see the module table) and, for the local and failed cases, record it."""
    try:
        target = validate_target(kind, payload)
        record = check_target(store, target)
    except InvalidRequest as exc:
        return _fail(store, control_job_id, str(exc))
    status = record.status
    if status in HELD:
        local = try_local(store, target, control_job_id=control_job_id, requeue=requeue)
        if local is not None:
            store.transition(control_job_id, JobStatus.SUCCEEDED, result=local.as_result())
            return ActorStep("done", result=local.as_result())
        return ActorStep("defer", reason="send_in_progress")
    if status == JobStatus.IN_FLIGHT:
        return ActorStep("defer", reason="send_in_flight")
    if status == JobStatus.SCHEDULED and record.idmensaje:
        data: dict[str, Any] = {"Idmensaje": int(record.idmensaje)}
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
