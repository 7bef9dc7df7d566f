"""The query cache: credits from answers, cached reports, single flight."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
import redis

from certsms.config.settings import Settings
from certsms.worker.guard import Budget, ProviderGuard
from tests.fixtures.guard import MakeGuard, ManualClock


@dataclass(frozen=True)
class _Answer:
    credits: float
    text: str


def test_cache_records_credits_from_every_answer(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """A result's credits attribute updates the cached credits and their age."""
    guard = make_guard()
    guard.call(function="send", budget=Budget.SEND, fingerprint=None, fn=lambda: _Answer(41.5, "x"))
    manual_clock.advance(7)
    assert guard.cached_credits() == pytest.approx((41.5, 7.0))
    guard.call(
        function="report",
        budget=Budget.QUERY,
        fingerprint=None,
        fn=lambda: {"n": 1},
        credits_of=lambda _r: 40.0,
    )
    assert guard.cached_credits() == pytest.approx((40.0, 0.0))


def test_cache_credits_query_answered_from_cache_within_ttl(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """credits() calls GetCreditos only when the cached value is older than its TTL."""
    guard = make_guard(credits_cache_ttl_s=300)
    calls: list[int] = []

    def get_credits() -> float:
        calls.append(1)
        return 100.0 - len(calls)

    assert guard.credits(get_credits) == (99.0, 0.0)
    manual_clock.advance(200)
    assert guard.credits(get_credits) == pytest.approx((99.0, 200.0))
    manual_clock.advance(101)
    assert guard.credits(get_credits) == (98.0, 0.0)
    assert calls == [1, 1]


def test_cache_identical_report_query_within_ttl_is_served_from_cache(
    make_guard: MakeGuard, redis_client: redis.Redis, settings: Settings
) -> None:
    """A second identical report query within the TTL returns the cached answer."""
    guard = make_guard(report_cache_ttl_s=60)
    calls: list[int] = []

    def report() -> dict[str, object]:
        calls.append(1)
        return {"recipients": [{"phone": "34600000000", "code": 14}]}

    first = guard.call(
        function="report", budget=Budget.QUERY, fingerprint=None, fn=report, cache_key="report:7"
    )
    second = guard.call(
        function="report", budget=Budget.QUERY, fingerprint=None, fn=report, cache_key="report:7"
    )
    assert first == second
    assert calls == [1]
    ttl_ms = redis_client.pttl(settings.key("guard", "cache", "report:7"))
    assert 0 < ttl_ms <= 60_000


def test_cache_single_flight_twenty_threads_one_request(make_guard: MakeGuard) -> None:
    """Twenty concurrent identical queries make one provider request and share its answer."""
    guard = make_guard(real_time=True)
    calls: list[int] = []
    gate = threading.Event()
    results: list[object] = []
    lock = threading.Lock()

    def report() -> dict[str, int]:
        calls.append(1)
        gate.wait(5)
        return {"answer": 42}

    def caller() -> None:
        value = guard.call(
            function="report",
            budget=Budget.QUERY,
            fingerprint=None,
            fn=report,
            cache_key="report:9",
        )
        with lock:
            results.append(value)

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for t in threads:
        t.start()
    while not calls:
        gate.wait(0.01)
    gate.set()
    for t in threads:
        t.join(10)
    assert calls == [1]
    assert results == [{"answer": 42}] * 20


def test_cache_single_flight_credits_twenty_threads_one_request(
    settings: Settings, redis_server: object
) -> None:
    """Twenty processes' worth of guards asking credits at once make one GetCreditos."""
    url = settings.redis_url
    guards = [ProviderGuard(redis.Redis.from_url(url), settings) for _ in range(20)]
    calls: list[int] = []
    gate = threading.Event()
    results: list[tuple[float, float]] = []
    lock = threading.Lock()

    def get_credits() -> float:
        calls.append(1)
        gate.wait(5)
        return 12.0

    def caller(guard: ProviderGuard) -> None:
        value = guard.credits(get_credits)
        with lock:
            results.append(value)

    threads = [threading.Thread(target=caller, args=(g,)) for g in guards]
    for t in threads:
        t.start()
    while not calls:
        gate.wait(0.01)
    gate.set()
    for t in threads:
        t.join(10)
    assert calls == [1]
    assert len(results) == 20
    assert {credits for credits, _age in results} == {12.0}
