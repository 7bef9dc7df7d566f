"""Retryability, decided once, and the client's in-call transport retries.

:func:`is_retryable` is the retry predicate inside one call, and
:func:`not_processed` the job layer's test before repeating a write in a later
attempt (both here, next to the provider's wire format). A connect failure is
safe for every function (the body never left); an unhealthy answer or a
timeout/reset after sending is retried only for the idempotent functions
(certificate, report, list_files, credits) — a send, cancel, reschedule,
upload or delete whose body may have arrived is never repeated blindly.
Rejections and local refusals are never retried.

:func:`call_with_retries` runs one client call with tenacity: at most
``retries`` more attempts, exponential backoff with jitter, at least the
``Retry-After`` the provider asked for. It does not retry inside the call when
the provider blocks (HTTP 403) or asks to wait longer than
:data:`RETRY_AFTER_CAP_S`: that wait belongs to the job layer, not to a worker
thread.

Every attempt after the first is a new request: when a caller installed an
:class:`AttemptGate` (:func:`gated_attempts`; the provider guard does, around
each guarded call) the gate is asked before each retry, with the error of the
attempt that failed. The guard counts that failure (breaker, rejection budget)
and takes a new rate-limit slot, or stops the retries (an open breaker, a long
wait): the call then raises the failed attempt's error.
Without a gate (the library on its own) retries only back off.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Protocol, TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from certsms.mensatek.answers import IDEMPOTENT
from certsms.mensatek.errors import (
    InvalidRequest,
    LocalRejection,
    MensatekError,
    ProviderRejected,
    ProviderUnavailable,
    TransportError,
)

T = TypeVar("T")
log = structlog.get_logger(__name__)

RETRY_AFTER_CAP_S = 10.0
"""The longest ``Retry-After`` the client waits for inside one call."""


class AttemptGate(Protocol):
    """What a retry asks before it is sent (see the module docstring)."""

    def before_retry(self, function: str, failed: BaseException) -> bool:
        """Account for ``failed`` and wait for the next request's turn; False: no retry
        now (the call then raises ``failed``)."""


_GATE: ContextVar[AttemptGate | None] = ContextVar("mensatek_attempt_gate", default=None)


@contextlib.contextmanager
def gated_attempts(gate: AttemptGate) -> Iterator[None]:
    """Route every retry inside the block through ``gate`` (this thread/context only)."""
    reset = _GATE.set(gate)
    try:
        yield
    finally:
        _GATE.reset(reset)


NOT_PROCESSED_STATUSES = frozenset({403, 429, 503})
"""HTTP answers meaning the provider refused the request without acting on it."""


def not_processed(exc: BaseException) -> bool:
    """True when the provider certainly did not act on the request (safe to repeat).

    The job layer's test before repeating a write (send, cancel, reschedule,
    upload, delete) in a later attempt: no request left (a connection failure
    before the body was sent), or an answer in :data:`NOT_PROCESSED_STATUSES`. Any
    other 5xx, an HTML or unparseable page with another status, or a lost answer
    after the body left is uncertain.
    """
    if isinstance(exc, TransportError):
        return not exc.request_sent
    if isinstance(exc, ProviderUnavailable):
        return exc.http_status in NOT_PROCESSED_STATUSES
    return False


def is_retryable(error: BaseException, *, function: str) -> bool:
    """Whether repeating ``function`` after ``error`` is safe and may help."""
    if isinstance(error, (ProviderRejected, InvalidRequest, LocalRejection)):
        return False
    if isinstance(error, TransportError):
        return not error.request_sent or function in IDEMPOTENT
    if isinstance(error, ProviderUnavailable):
        return function in IDEMPOTENT
    return False


def is_unhealthy(error: BaseException) -> bool:
    """Whether ``error`` counts toward the circuit breaker (the provider is not answering well)."""
    return isinstance(error, (ProviderUnavailable, TransportError))


def retry_in_call(error: BaseException, *, function: str) -> bool:
    """Whether the client repeats ``function`` within the same call (see the module docstring)."""
    if not is_retryable(error, function=function):
        return False
    if isinstance(error, ProviderUnavailable):
        if error.http_status == 403:
            return False
        if error.retry_after_s is not None and error.retry_after_s > RETRY_AFTER_CAP_S:
            return False
    return True


def backoff_s(
    attempt: int,
    *,
    base_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): ``base_s·2^(attempt-1)`` with
    equal jitter (half fixed, half random), and never less than ``retry_after_s``."""
    ceiling = base_s * (2 ** max(0, attempt - 1))
    wait = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
    if retry_after_s is not None:
        wait = max(wait, min(retry_after_s, RETRY_AFTER_CAP_S))
    return wait


def call_with_retries(
    fn: Callable[[], T],
    *,
    function: str,
    retries: int,
    base_backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``fn``; on an error :func:`retry_in_call` allows, retry up to ``retries`` times.

    Each retry first passes the installed :class:`AttemptGate`, if any.
    """
    gate = _GATE.get()
    failed: list[BaseException] = []

    stopped: list[bool] = []

    def each() -> T:
        if failed and gate is not None and not gate.before_retry(function, failed[-1]):
            stopped.append(True)
            raise failed[-1]
        try:
            return fn()
        except BaseException as exc:
            failed.append(exc)
            raise

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = error.retry_after_s if isinstance(error, ProviderUnavailable) else None
        return backoff_s(
            state.attempt_number, base_s=base_backoff_s, retry_after_s=retry_after, rng=rng
        )

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info(
            "provider_call_retried",
            function=function,
            attempt=state.attempt_number,
            error=type(error).__name__,
            request_id=error.request_id if isinstance(error, MensatekError) else None,
            wait_s=round(state.upcoming_sleep, 3),
        )

    retrying = Retrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait,
        retry=retry_if_exception(lambda exc: not stopped and retry_in_call(exc, function=function)),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(each)
