"""The shared breaker: opening, single half-open probe, closing, auth failures."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from mensatek.errors import (
    AuthenticationFailed,
    BadRequestData,
    ProviderUnavailable,
    TransportError,
)
from tests.fixtures.guard import MakeGuard, ManualClock
from worker.guard import Budget, GuardDelay, ProviderGuard


def _raiser(error: Exception) -> Callable[[], object]:
    def fn() -> object:
        raise error

    return fn


def _fail(guard: ProviderGuard, error: Exception | None = None) -> None:
    with pytest.raises(type(error) if error else ProviderUnavailable):
        guard.call(
            function="report",
            budget=Budget.QUERY,
            fingerprint=None,
            fn=_raiser(error or ProviderUnavailable("HTTP 503", http_status=503)),
        )


def _ok(guard: ProviderGuard) -> str:
    return guard.call(function="report", budget=Budget.QUERY, fingerprint=None, fn=lambda: "ok")


def test_breaker_opens_after_threshold_and_delays_without_calling(
    make_guard: MakeGuard,
) -> None:
    """After the threshold of unhealthy answers, calls are delayed and fn is not called."""
    guard = make_guard(breaker_failure_threshold=3, breaker_cooldown_s=5.0)
    _fail(guard)
    _fail(guard, TransportError("timeout", request_sent=False))
    assert guard.breaker.state(guard.now_s())["state"] == "closed"
    _fail(guard)
    calls: list[int] = []
    with pytest.raises(GuardDelay) as info:
        guard.call(
            function="report", budget=Budget.QUERY, fingerprint=None, fn=lambda: calls.append(1)
        )
    assert info.value.reason == "breaker_open"
    assert info.value.delay_s == pytest.approx(5.0, abs=0.01)
    assert calls == []
    assert guard.breaker.state(guard.now_s())["transitions"] == {"opened": 1}


def test_breaker_provider_rejection_is_a_healthy_answer(make_guard: MakeGuard) -> None:
    """A negative Res resets the consecutive-failure count instead of adding to it."""
    guard = make_guard(breaker_failure_threshold=2)
    _fail(guard)
    _fail(guard, BadRequestData("bad", res=-3))
    _fail(guard)
    state = guard.breaker.state(guard.now_s())
    assert state["state"] == "closed"
    assert state["failures"] == 1


def test_breaker_half_open_lets_exactly_one_probe_through(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """After the cool-down, of 12 concurrent callers exactly one reaches the provider."""
    guard = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=5.0)
    _fail(guard)
    manual_clock.advance(5.01)
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []
    outcomes: list[str] = []
    lock = threading.Lock()

    probe_thread: list[int | None] = []

    def probe_fn() -> str:
        with lock:
            calls.append(1)
            probe_thread.append(threading.get_ident())
        started.set()
        release.wait(10)
        return "ok"

    def caller() -> None:
        try:
            _ = guard.call(function="report", budget=Budget.QUERY, fingerprint=None, fn=probe_fn)
            outcome = "ok"
        except GuardDelay as exc:
            outcome = exc.reason
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=caller) for _ in range(12)]
    for t in threads:
        t.start()
    started.wait(10)
    # while the probe is in flight, every other caller is delayed
    for t in threads:
        if t.ident != probe_thread[0]:
            t.join(10)
    assert len(outcomes) == 11
    release.set()
    for t in threads:
        t.join(10)
    assert calls == [1]
    assert sorted(outcomes) == ["breaker_open"] * 11 + ["ok"]
    state = guard.breaker.state(guard.now_s())
    assert state["state"] == "closed"
    assert state["transitions"] == {"opened": 1, "half_opened": 1, "closed": 1}
    assert _ok(guard) == "ok"


def test_breaker_failed_probe_reopens_with_next_step_and_success_resets(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """Cool-downs double per failed probe up to the cap; a good probe resets the step."""
    guard = make_guard(
        breaker_failure_threshold=1, breaker_cooldown_s=2.0, breaker_max_cooldown_s=5.0
    )
    _fail(guard)
    remaining = []
    for _ in range(3):
        state = guard.breaker.state(guard.now_s())
        remaining.append(state["remaining_s"])
        manual_clock.advance(float(state["remaining_s"]) + 0.001)  # type: ignore[arg-type]
        _fail(guard)  # the probe fails
    assert remaining == pytest.approx([2.0, 4.0, 5.0], abs=0.01)
    assert guard.breaker.state(guard.now_s())["step"] == 3
    manual_clock.advance(5.01)
    assert _ok(guard) == "ok"
    state = guard.breaker.state(guard.now_s())
    assert (state["state"], state["step"], state["failures"]) == ("closed", 0, 0)
    _fail(guard)  # the next opening starts again from the base cool-down
    assert guard.breaker.state(guard.now_s())["remaining_s"] == pytest.approx(2.0, abs=0.01)


def test_breaker_auth_failure_opens_at_once_loudly(make_guard: MakeGuard) -> None:
    """One authentication failure opens the breaker for the auth cool-down, logged critical."""
    guard = make_guard(breaker_failure_threshold=5, breaker_auth_cooldown_s=3600.0)
    with capture_logs() as logs:
        _fail(guard, AuthenticationFailed("bad credentials", res=-1))
    state = guard.breaker.state(guard.now_s())
    assert state["state"] == "open"
    assert state["reason"] == "authentication_failed"
    assert state["remaining_s"] == pytest.approx(3600.0, abs=0.01)
    assert any(e["event"] == "breaker_opened" and e["log_level"] == "critical" for e in logs)
    with pytest.raises(GuardDelay):
        _ok(guard)


def test_breaker_reopens_during_limiter_wait_stops_the_request(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """A caller admitted before the breaker opened is stopped after its limiter sleep."""
    guard = make_guard(breaker_failure_threshold=1)
    other = make_guard(breaker_failure_threshold=1)
    calls: list[int] = []

    def sleep_while_another_fails(seconds: float) -> None:
        manual_clock.sleep(seconds)
        _fail(other, AuthenticationFailed("bad credentials", res=-1))

    _ok(guard)  # takes the first slot, so the next call must wait
    guard._sleep = sleep_while_another_fails
    with pytest.raises(GuardDelay) as info:
        guard.call(
            function="report", budget=Budget.QUERY, fingerprint=None, fn=lambda: calls.append(1)
        )
    assert info.value.reason == "breaker_open"
    assert calls == []


def test_breaker_reset_closes_and_counts(make_guard: MakeGuard) -> None:
    """An operator reset closes an open breaker and counts the transition."""
    guard = make_guard(breaker_failure_threshold=1)
    _fail(guard)
    guard.reset()
    state = guard.breaker.state(guard.now_s())
    assert state["state"] == "closed"
    assert state["transitions"] == {"opened": 1, "closed": 1}
    assert _ok(guard) == "ok"
