"""ProviderGuard.call as a whole: delays are not failures; snapshot, reset and the CLI."""

from __future__ import annotations

import argparse
import json

import pytest

from certsms.config.settings import Settings
from certsms.mensatek.errors import BadRequestData, InvalidRequest, ProviderUnavailable
from certsms.worker.commands import guard as guard_command
from certsms.worker.guard import Budget, GuardDelay
from tests.fixtures.guard import MakeGuard, ManualClock


def test_call_long_limiter_wait_raises_delay_not_failure(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """A slot further than limiter_max_sleep_s delays the job and is no breaker failure."""
    guard = make_guard(
        rate_limit_per_s=1.0,
        rate_limit_send_per_s=1.0,
        limiter_max_sleep_s=0.5,
        breaker_failure_threshold=1,
    )
    calls: list[int] = []
    guard.call(function="send", budget=Budget.SEND, fingerprint=None, fn=lambda: calls.append(1))
    with pytest.raises(GuardDelay) as info:
        guard.call(
            function="send", budget=Budget.SEND, fingerprint=None, fn=lambda: calls.append(2)
        )
    assert info.value.reason == "rate_limited"
    assert info.value.delay_s == pytest.approx(1.04, abs=0.01)
    assert info.value.function == "send"
    assert calls == [1]
    state = guard.breaker.state(guard.now_s())
    assert (state["state"], state["failures"]) == ("closed", 0)
    assert manual_clock.slept == []  # the short-wait path was never taken


def test_call_local_errors_do_not_touch_breaker_or_budget(make_guard: MakeGuard) -> None:
    """Errors that are not provider answers (local validation) record nothing."""
    guard = make_guard(breaker_failure_threshold=1)

    def fn() -> None:
        raise InvalidRequest([])

    with pytest.raises(InvalidRequest):
        guard.call(function="send", budget=Budget.SEND, fingerprint={"a": 1}, fn=fn)
    snap = guard.snapshot()
    assert snap["breaker"]["state"] == "closed"  # type: ignore[index]
    assert snap["rejections"]["count"] == 0  # type: ignore[index]
    assert snap["memo"]["count"] == 0  # type: ignore[index]


def test_snapshot_shows_every_guard(make_guard: MakeGuard) -> None:
    """The snapshot reports limiter slots, breaker, rejections, memo and credits."""
    guard = make_guard(breaker_failure_threshold=1, range_download_interval_s=900.0)
    guard.record_credits(55.0)
    guard.call(
        function="certificate", budget=Budget.RANGE_DOWNLOAD, fingerprint=None, fn=lambda: None
    )
    with pytest.raises(BadRequestData):
        guard.call(
            function="send",
            budget=Budget.SEND,
            fingerprint={"x": 1},
            fn=lambda: (_ for _ in ()).throw(BadRequestData("bad", res=-3)),
        )
    with pytest.raises(ProviderUnavailable):
        guard.call(
            function="send",
            budget=Budget.SEND,
            fingerprint=None,
            fn=lambda: (_ for _ in ()).throw(ProviderUnavailable("503")),
        )
    snap = guard.snapshot()
    json.dumps(snap)  # plain JSON
    limiter = snap["limiter"]
    assert isinstance(limiter, dict)
    assert 899.0 < limiter["range_download"]["next_free_in_s"] <= 901.0
    assert snap["breaker"]["state"] == "open"  # type: ignore[index]
    assert snap["rejections"]["count"] == 1  # type: ignore[index]
    assert snap["memo"]["count"] == 1  # type: ignore[index]
    assert snap["credits"]["credits"] == 55.0  # type: ignore[index]


def test_cli_guard_shows_json_and_resets(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make_guard: MakeGuard,
) -> None:
    """`certsms guard --json` prints the snapshot; `guard reset` closes the breaker."""
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("CERTSMS_NAMESPACE", settings.namespace)
    guard = make_guard(real_time=True, breaker_failure_threshold=1)
    with pytest.raises(ProviderUnavailable):
        guard.call(
            function="send",
            budget=Budget.SEND,
            fingerprint=None,
            fn=lambda: (_ for _ in ()).throw(ProviderUnavailable("503")),
        )
    capsys.readouterr()  # drop the log lines written so far
    parser = argparse.ArgumentParser()
    guard_command.register(parser.add_subparsers())

    args = parser.parse_args(["guard", "--json"])
    assert args.func(args) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["breaker"]["state"] == "open"

    args = parser.parse_args(["guard"])
    assert args.func(args) == 0
    assert "breaker: open" in capsys.readouterr().out

    args = parser.parse_args(["guard", "reset"])
    assert args.func(args) == 0
    assert "breaker closed" in capsys.readouterr().out
    assert guard.breaker.state(guard.now_s())["state"] == "closed"
