"""The shared breaker: opening, single half-open probe, closing, auth failures."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from certsms.mensatek.errors import (
    AuthenticationFailed,
    BadRequestData,
    ProviderUnavailable,
    TransportError,
)
from certsms.worker.guard import Budget, GuardDelay, ProviderGuard
from tests.fixtures.guard import MakeGuard, ManualClock


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


def test_breaker_fresh_state_is_closed_with_nothing_recorded(make_guard: MakeGuard) -> None:
    """A breaker that never saw a failure: closed, 0 failures, step 0, no open_until."""
    guard = make_guard()
    state = guard.breaker.state(guard.now_s())
    assert (state["state"], state["failures"], state["step"]) == ("closed", 0, 0)
    assert state["open_until"] is None and state["remaining_s"] == 0.0
    assert state["reason"] is None and state["probe_in_flight"] is False


def test_breaker_state_gauge_follows_transitions(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """certsms_breaker_state: 2 when opened, 1 when half-opened, 0 when closed."""
    guard = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=1.0)

    def gauge() -> float | None:
        return REGISTRY.get_sample_value("certsms_breaker_state")

    _fail(guard)
    assert gauge() == 2.0
    manual_clock.advance(1.5)
    token = guard.breaker.admit()
    assert token is not None and gauge() == 1.0
    guard.breaker.record_success(token)
    assert gauge() == 0.0


def test_breaker_busy_probe_caps_the_wait_at_one_cooldown(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """While another process probes, a caller waits at most one base cool-down (the
    probe's verdict comes soon); while open, it waits the whole remaining cool-down."""
    guard = make_guard(
        breaker_failure_threshold=1, breaker_cooldown_s=2.0, breaker_max_cooldown_s=600
    )
    for _ in range(4):  # open, probe fails, … → a long cool-down (step 3: 16 s)
        _fail(guard)
        manual_clock.advance(guard.breaker.state(guard.now_s())["remaining_s"] + 0.01)  # type: ignore[operator]
    _fail(guard)
    remaining = guard.breaker.state(guard.now_s())["remaining_s"]
    assert isinstance(remaining, float) and remaining > 2.0
    with pytest.raises(GuardDelay) as open_delay:
        guard.breaker.admit()
    assert open_delay.value.delay_s == pytest.approx(remaining, abs=0.01)
    manual_clock.advance(remaining + 0.01)
    assert guard.breaker.admit() is not None  # the probe
    with pytest.raises(GuardDelay) as busy:
        guard.breaker.admit()
    assert busy.value.delay_s <= 2.0


def test_breaker_gate_delay_is_at_least_a_second_or_one_cooldown(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """The re-check before a request delays by the remaining wait, but never less than
    min(1 s, cool-down): no busy loop when the wait is about to end."""
    guard = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=5.0)
    _fail(guard)
    manual_clock.advance(4.9)
    with pytest.raises(GuardDelay) as info:
        guard.breaker.gate(None)
    assert info.value.delay_s == pytest.approx(1.0)
    short = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=0.5)
    short.breaker.reset()
    _fail(short)
    with pytest.raises(GuardDelay) as info:
        short.breaker.gate(None)
    assert info.value.delay_s == pytest.approx(0.5, abs=0.01)
    manual_clock.advance(0.45)
    with pytest.raises(GuardDelay) as info:
        short.breaker.gate(None)
    assert info.value.delay_s == pytest.approx(0.5)


def test_breaker_opens_on_the_redis_clock(make_guard: MakeGuard, redis_client: object) -> None:
    """Without a test clock the cool-down is counted on Redis TIME (shared by every host)."""
    import redis as redis_lib

    assert isinstance(redis_client, redis_lib.Redis)
    guard = make_guard(real_time=True, breaker_failure_threshold=1, breaker_cooldown_s=30.0)

    def redis_now_s() -> float:
        seconds, micros = redis_client.time()
        return int(seconds) + int(micros) / 1e6

    before = redis_now_s()
    _fail(guard)
    after = redis_now_s()
    state = guard.breaker.state(after)
    assert state["state"] == "open"
    assert isinstance(state["open_until"], float)
    assert before + 30.0 - 1e-6 <= state["open_until"] <= after + 30.0 + 1e-6


def _open(guard: ProviderGuard, clock: ManualClock) -> None:
    """Open the breaker (threshold 1 assumed) and let its cool-down pass: half-open next."""
    _fail(guard)
    remaining = guard.breaker.state(guard.now_s())["remaining_s"]
    assert isinstance(remaining, float)
    clock.advance(remaining)


def test_breaker_half_opens_exactly_when_the_cooldown_ends(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """At open_until the breaker lets the probe through; a µs before, it is still open."""
    guard = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=5.0)
    _fail(guard)
    manual_clock.advance(5.0 - 1e-6)
    with pytest.raises(GuardDelay):
        guard.breaker.admit()
    manual_clock.advance(1e-6)
    assert guard.breaker.admit() is not None


def test_breaker_only_the_probe_closes_or_reopens_it(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """While half-open, a success or failure reported with another token (a straggler)
    changes nothing; the probe's success closes it with failures, step and open_until
    cleared."""
    guard = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=1.0)
    _open(guard, manual_clock)
    probe = guard.breaker.admit()
    assert probe is not None
    guard.breaker.record_success("someone-else")
    guard.breaker.record_failure("someone-else", error=ProviderUnavailable("x"))
    assert guard.breaker.state(guard.now_s())["state"] == "half_open"
    guard.breaker.record_success(probe)
    state = guard.breaker.state(guard.now_s())
    assert (state["state"], state["failures"], state["step"]) == ("closed", 0, 0)
    assert state["open_until"] is None and state["probe_in_flight"] is False


def test_breaker_failed_probe_counts_a_failure_and_the_next_step(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """A failed probe adds one consecutive failure and doubles the cool-down."""
    guard = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=1.0)
    _open(guard, manual_clock)
    probe = guard.breaker.admit()
    guard.breaker.record_failure(probe, error=ProviderUnavailable("x"))
    state = guard.breaker.state(guard.now_s())
    assert (state["state"], state["failures"], state["step"]) == ("open", 2, 1)
    assert state["remaining_s"] == pytest.approx(2.0)


def test_breaker_busy_wait_is_the_probe_lock_when_shorter_than_a_cooldown(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """A caller finding the probe in flight waits for the probe lock's remaining life,
    capped at one base cool-down."""
    guard = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=3600.0)
    _open(guard, manual_clock)
    assert guard.breaker.admit() is not None
    with pytest.raises(GuardDelay) as busy:
        guard.breaker.admit()
    assert busy.value.delay_s == pytest.approx(guard.breaker.probe_ttl_s, rel=1e-4, abs=0.01)


def test_breaker_auth_failure_keeps_a_longer_open_and_extends_a_shorter(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """An authentication failure opens for the auth cool-down, but never shortens an open
    that already lasts longer; failures are counted."""
    guard = make_guard(
        breaker_failure_threshold=1,
        breaker_cooldown_s=100.0,
        breaker_max_cooldown_s=10_000,
        breaker_auth_cooldown_s=50.0,
    )
    _fail(guard)  # open for 100 s
    guard.breaker.record_auth_failure(None)
    state = guard.breaker.state(guard.now_s())
    assert state["remaining_s"] == pytest.approx(100.0) and state["failures"] == 1
    manual_clock.advance(60)  # 40 s left < 50 s of auth cool-down
    guard.breaker.record_auth_failure(None)
    state = guard.breaker.state(guard.now_s())
    assert state["remaining_s"] == pytest.approx(50.0) and state["failures"] == 2
    assert state["reason"] == "authentication_failed"
    guard.breaker.record_auth_failure(None)  # open exactly as long as an auth cool-down: kept
    assert guard.breaker.state(guard.now_s())["failures"] == 2
    manual_clock.advance(50)
    guard.breaker.record_auth_failure(None)  # exactly at the end: opens again for 50 s
    assert guard.breaker.state(guard.now_s())["remaining_s"] == pytest.approx(50.0)


def test_breaker_reset_clears_failures_step_and_open_until(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """An operator reset leaves a clean closed breaker (no failures, step 0, no end)."""
    guard = make_guard(breaker_failure_threshold=1, breaker_cooldown_s=1.0)
    _open(guard, manual_clock)
    guard.breaker.record_failure(guard.breaker.admit(), error=ProviderUnavailable("x"))
    guard.breaker.reset()
    state = guard.breaker.state(guard.now_s())
    assert (state["state"], state["failures"], state["step"]) == ("closed", 0, 0)
    assert state["open_until"] is None and state["reason"] == "operator_reset"
