"""What a job run does with an answer: record it, fail, re-enqueue, or wait.

Shared by the exactly-once send (:mod:`tasks.send`) and the other provider
functions (:mod:`tasks.other_functions`): the error record kept on a job, whether the
provider certainly did not act, the breaker wait, re-enqueueing a copy of the
current message without burning a retry, and the one place a provider rejection
fails a job.
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import datetime
from typing import Any

from dramatiq.middleware import CurrentMessage

from certsms.mensatek.errors import (
    InvalidRequest,
    ProviderRejected,
)
from certsms.tasks import resources
from certsms.worker.errors import MalformedMessage, error_record
from certsms.worker.guard import RepeatedRejection, is_unhealthy
from certsms.worker.jobs.store import JobStatus, JobStore
from certsms.worker.middleware import report_outcome
from certsms.worker.runtime import runtime

#: Errors that fail a job at once, without retry.
PERMANENT: tuple[type[BaseException], ...] = (
    ProviderRejected,
    InvalidRequest,
    RepeatedRejection,
    MalformedMessage,
)


#: HTTP statuses that say the request was refused before it was processed: blocked
#: (403), rate limited (429), service unavailable (503). 500/502/504 (a gateway
#: timeout is exactly when the provider may have acted) and 200 HTML pages do not.
def breaker_wait_s(exc: BaseException) -> float | None:
    """After an unhealthy answer: how long to wait if the breaker is now open, else None.

    A failed probe (or the failure that opened the breaker) is the provider's state,
    not the job's fault: the job waits for the cool-down like every other job instead
    of burning a retry, so a long block cannot exhaust the retries of the probe jobs.
    """
    if not is_unhealthy(exc):
        return None
    guard = resources.guard()
    try:
        state = guard.breaker.state(guard.now_s())
    except Exception:  # Redis trouble: fall back to an ordinary retry
        return None
    if state["state"] == "closed":
        return None
    remaining = state["remaining_s"]
    return max(float(remaining) if isinstance(remaining, int | float) else 0.0, 0.5)


def defer(delay_ms: int, *, reason: str) -> None:
    """Re-enqueue a copy of the current message after ``delay_ms`` (no retry burned)."""
    message = CurrentMessage.get_current_message()
    if message is None:  # pragma: no cover - always set inside an actor
        raise RuntimeError("no current message")
    delay_ms = max(100, int(delay_ms)) + random.randint(0, 250)
    runtime().broker.enqueue(message.copy(), delay=delay_ms)
    report_outcome("retrying", reason=reason, delay_ms=delay_ms)


def requeue(store: JobStore, job_id: str, delay_ms: int, why: str, **fields: Any) -> None:
    """Give a ``running`` job back to ``queued`` (writing ``fields``), then :func:`defer`."""
    store.transition(job_id, JobStatus.QUEUED, expect=[JobStatus.RUNNING], **fields)
    defer(delay_ms, reason=why)


def fail_rejected(store: JobStore, job_id: str, exc: ProviderRejected | RepeatedRejection) -> None:
    """Record a provider rejection (or a repeat of one): the job is ``failed``.

    The caller re-raises, so dramatiq sees a permanent error and does not retry.
    """
    store.transition(
        job_id,
        JobStatus.FAILED,
        error=error_record(exc),
        res=exc.res,
        reason="rejected by the provider",
    )
    report_outcome("failed", res=exc.res, http_status=exc.http_status, status="failed")


def result_json(result: Any) -> Any:
    """A client result as plain JSON (dataclasses without their ``raw`` answer)."""
    return json.loads(json.dumps(_without_raw(result), default=_json_default))


def _without_raw(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {f.name: getattr(value, f.name) for f in fields if f.name != "raw"}
    return value


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _without_raw(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
