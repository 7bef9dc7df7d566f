"""The shared GCRA limiter: reservation math, shared budgets, range interval, accuracy."""

from __future__ import annotations

import itertools
import threading

import pytest
import redis

from config.settings import Settings
from tests.fixtures.guard import MakeGuard, ManualClock
from worker.guard import Budget, GuardDelay, RateLimiter

STRETCH = 1.04  # default jitter allowance 0.04 s


def test_limiter_reservations_are_spaced_by_both_budgets(make_guard: MakeGuard) -> None:
    """Each grant waits for the later of its total slot and its sub-budget slot."""
    guard = make_guard(rate_limit_per_s=5.0, rate_limit_send_per_s=4.0, rate_limit_query_per_s=1.0)
    lim = guard.limiter
    assert lim.reserve(Budget.SEND).wait_s == 0.0
    second = lim.reserve(Budget.SEND).wait_s
    assert second == pytest.approx(STRETCH / 4.0, abs=1e-6)
    # the query sub-budget is free, but the total budget is reserved up to send #2 + 1/5 s
    query = lim.reserve(Budget.QUERY).wait_s
    assert query == pytest.approx(STRETCH / 4.0 + STRETCH / 5.0, abs=1e-6)
    # the next query waits for its own sub-budget (1/s) after the previous query
    assert lim.reserve(Budget.QUERY).wait_s == pytest.approx(query + STRETCH, abs=1e-6)


def test_limiter_refuses_without_reserving_when_wait_exceeds_max(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """A wait over limiter_max_sleep_s raises GuardDelay and leaves the slot for others."""
    guard = make_guard(rate_limit_per_s=1.0, rate_limit_send_per_s=1.0, limiter_max_sleep_s=2.5)
    lim = guard.limiter
    waits = [lim.reserve(Budget.SEND).wait_s for _ in range(3)]
    assert waits == pytest.approx([0.0, STRETCH, 2 * STRETCH])
    with pytest.raises(GuardDelay) as info:
        lim.reserve(Budget.SEND)
    assert info.value.reason == "rate_limited"
    assert info.value.delay_s == pytest.approx(3 * STRETCH)
    # nothing was reserved by the refusal: the same slot is still the next one
    assert lim.reserve(Budget.SEND, max_wait_s=10).wait_s == pytest.approx(3 * STRETCH)


def test_limiter_acquire_sleeps_until_the_reserved_slot(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """acquire() sleeps exactly the reserved wait once, instead of polling."""
    guard = make_guard(rate_limit_per_s=2.0, rate_limit_send_per_s=2.0)
    guard.limiter.acquire(Budget.SEND, sleep=manual_clock.sleep)
    guard.limiter.acquire(Budget.SEND, sleep=manual_clock.sleep)
    assert manual_clock.slept == pytest.approx([STRETCH / 2.0])


def test_limiter_two_clients_share_one_budget(
    settings: Settings, redis_server: object, manual_clock: ManualClock
) -> None:
    """Two limiters on separate connections (two processes) draw from the same slots."""
    s = settings.model_copy(update={"rate_limit_per_s": 10.0, "rate_limit_send_per_s": 10.0})
    url = settings.redis_url
    a = RateLimiter(redis.Redis.from_url(url), s, clock=manual_clock)
    b = RateLimiter(redis.Redis.from_url(url), s, clock=manual_clock)
    slots = [(a if i % 2 else b).reserve(Budget.SEND).slot_us for i in range(6)]
    gaps = {later - earlier for earlier, later in itertools.pairwise(slots)}
    assert len(gaps) == 1
    assert gaps.pop() == pytest.approx(STRETCH / 10.0 * 1e6, abs=2)


def test_limiter_range_download_one_per_interval(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """A second date-range download within the interval is delayed, not sent."""
    guard = make_guard(range_download_interval_s=900.0)
    assert guard.limiter.reserve(Budget.RANGE_DOWNLOAD).wait_s == 0.0
    with pytest.raises(GuardDelay) as info:
        guard.limiter.reserve(Budget.RANGE_DOWNLOAD)
    assert info.value.reason == "range_interval"
    assert info.value.delay_s == pytest.approx(901.0, abs=0.01)  # interval + 1 s slack
    # other queries are not held back by the range budget
    assert guard.limiter.reserve(Budget.QUERY).wait_s < 1.0
    manual_clock.advance(901.01)
    assert guard.limiter.reserve(Budget.RANGE_DOWNLOAD).wait_s == 0.0


def test_limiter_concurrent_grants_never_exceed_limit_in_any_second(
    make_guard: MakeGuard,
) -> None:
    """Eight threads on the Redis clock: no 1 s window holds more than the limit, rate ≥ 95 %."""
    limit = 40
    guard = make_guard(
        real_time=True,
        rate_limit_per_s=float(limit),
        rate_limit_send_per_s=float(limit),
        limiter_max_sleep_s=30.0,
    )
    slots: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(12):
            grant = guard.limiter.acquire(Budget.SEND)
            with lock:
                slots.append(grant.slot_us)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots.sort()
    assert len(slots) == 96
    # closed windows [s, s + 1 s] starting at every grant
    worst = max(sum(1 for x in slots[i:] if x <= s + 1_000_000) for i, s in enumerate(slots))
    assert worst <= limit
    achieved = (len(slots) - 1) / ((slots[-1] - slots[0]) / 1e6)
    assert achieved >= 0.95 * limit
