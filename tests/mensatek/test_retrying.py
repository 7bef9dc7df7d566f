"""The one retry predicate, the breaker predicate, the backoff and the in-call retries."""

from __future__ import annotations

import random

import pytest

from certsms.mensatek.answers import FUNCTIONS, IDEMPOTENT
from certsms.mensatek.errors import (
    AuthenticationFailed,
    BadRequestData,
    FieldProblem,
    InvalidRequest,
    LocalRejection,
    MensatekError,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    TransportError,
)
from certsms.mensatek.retrying import (
    RETRY_AFTER_CAP_S,
    backoff_s,
    call_with_retries,
    is_retryable,
    is_unhealthy,
    retry_in_call,
)

NOT_SENT = TransportError("connect", request_sent=False)
SENT = TransportError("read timeout", request_sent=True)
UNAVAILABLE = ProviderUnavailable("503", http_status=503)
NEVER: list[MensatekError] = [
    ProviderRejected("x", res=-9),
    AuthenticationFailed("x", res=-1),
    BadRequestData("x", res=-3),
    NotFound("x", res=-4),
    InvalidRequest([FieldProblem("Movil", "phone", "bad")]),
    LocalRejection("paused"),
]

TABLE = (
    [(NOT_SENT, f, True) for f in FUNCTIONS]
    + [(SENT, f, f in IDEMPOTENT) for f in FUNCTIONS]
    + [(UNAVAILABLE, f, f in IDEMPOTENT) for f in FUNCTIONS]
    + [(e, f, False) for e in NEVER for f in FUNCTIONS]
)


@pytest.mark.parametrize(("error", "function", "expected"), TABLE)
def test_is_retryable_table(error: MensatekError, function: str, expected: bool) -> None:
    """Connect failures retry always; unknown outcomes only when idempotent; rejections never."""
    assert is_retryable(error, function=function) is expected


def test_idempotent_functions_are_exactly_the_queries() -> None:
    """Send, cancel, reschedule, upload and delete are never idempotent."""
    assert {"certificate", "report", "list_files", "credits"} == IDEMPOTENT


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NOT_SENT, True),
        (SENT, True),
        (UNAVAILABLE, True),
        (AuthenticationFailed("x"), False),
        (BadRequestData("x"), False),
        (ValueError("x"), False),
    ],
)
def test_is_unhealthy_counts_only_unavailability(error: BaseException, expected: bool) -> None:
    """Only unavailability and transport failures count toward the breaker."""
    assert is_unhealthy(error) is expected


@pytest.mark.parametrize(
    ("error", "function", "expected"),
    [
        (ProviderUnavailable("403", http_status=403), "report", False),
        (
            ProviderUnavailable("429", http_status=429, retry_after_s=RETRY_AFTER_CAP_S + 1),
            "report",
            False,
        ),
        (ProviderUnavailable("429", http_status=429, retry_after_s=1), "report", True),
        (ProviderUnavailable("html", http_status=200), "credits", True),
        (UNAVAILABLE, "send", False),
        (SENT, "send", False),
        (NOT_SENT, "send", True),
    ],
)
def test_retry_in_call_leaves_blocks_and_long_waits_to_the_job(
    error: MensatekError, function: str, expected: bool
) -> None:
    """Inside a call: no retry on a 403 block or a Retry-After beyond the cap."""
    assert retry_in_call(error, function=function) is expected


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    """Waits double per attempt within [half, full] and never undercut Retry-After (capped)."""
    rng = random.Random(7)
    for attempt in (1, 2, 3):
        ceiling = 0.5 * 2 ** (attempt - 1)
        assert ceiling / 2 <= backoff_s(attempt, base_s=0.5, rng=rng) <= ceiling
    assert backoff_s(1, base_s=0.5, retry_after_s=3, rng=rng) == 3
    assert backoff_s(1, base_s=0.5, retry_after_s=999, rng=rng) == RETRY_AFTER_CAP_S


def test_call_with_retries_retries_safe_errors_then_gives_up() -> None:
    """A connect failure is retried ``retries`` times, then raised; the sleeps are recorded."""
    calls: list[int] = []
    sleeps: list[float] = []

    def fail() -> None:
        calls.append(1)
        raise TransportError("refused", request_sent=False, function="send")

    with pytest.raises(TransportError):
        call_with_retries(fail, function="send", retries=2, base_backoff_s=0.1, sleep=sleeps.append)
    assert len(calls) == 3 and len(sleeps) == 2


def test_call_with_retries_never_reposts_a_send_after_the_body_left() -> None:
    """A send that timed out after sending is attempted exactly once."""
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise TransportError("read timeout", request_sent=True, function="send")

    with pytest.raises(TransportError):
        call_with_retries(
            fail, function="send", retries=2, base_backoff_s=0.1, sleep=lambda s: None
        )
    assert calls == [1]


def test_call_with_retries_returns_the_first_success() -> None:
    """A report that failed once with a 503 returns the second attempt's value."""
    answers = iter([UNAVAILABLE, "ok"])

    def attempt() -> str:
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    assert (
        call_with_retries(
            attempt, function="report", retries=2, base_backoff_s=0, sleep=lambda s: None
        )
        == "ok"
    )
