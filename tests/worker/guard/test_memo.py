"""The failure memo and the rejection budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.settings import Settings
from mensatek.client import MensatekClient
from mensatek.errors import BadRequestData, InsufficientCredits, NotFound, ProviderRejected
from tests.fixtures.guard import MakeGuard, ManualClock
from tests.fixtures.sandbox import SandboxHandle, send_params
from worker.guard import Budget, GuardDelay, ProviderGuard, RepeatedRejection, fingerprint

PARAMS: dict[str, object] = {
    "Remitente": "ACME",
    "Destinatarios": [{"Movil": "34600000000"}],
    "Mensaje": "hola",
}


def _rejecting(calls: list[int], error: ProviderRejected) -> Callable[[], object]:
    def fn() -> object:
        calls.append(1)
        raise error

    return fn


def _send(guard: ProviderGuard, params: dict[str, object], fn: Callable[[], object]) -> object:
    return guard.call(function="send", budget=Budget.SEND, fingerprint=params, fn=fn)


def test_memo_refuses_identical_request_and_points_at_first_rejection(
    make_guard: MakeGuard,
) -> None:
    """An identical rejected request fails locally with the first rejection's details."""
    guard = make_guard()
    calls: list[int] = []
    error = BadRequestData(
        "bad", function="send", res=-3, provider_text="Remitente", request_id="r1"
    )
    with pytest.raises(BadRequestData):
        _send(guard, PARAMS, _rejecting(calls, error))
    with pytest.raises(RepeatedRejection) as info:
        _send(guard, dict(PARAMS), _rejecting(calls, error))
    assert calls == [1]
    first = info.value.first_rejection
    assert (first["class"], first["res"], first["request_id"]) == ("BadRequestData", -3, "r1")
    assert first["provider_text"] == "Remitente"
    assert first["at"] == guard.now_s()
    assert info.value.res == -3
    # a different request still goes to the provider
    assert _send(guard, {**PARAMS, "Mensaje": "hola!"}, lambda: "sent") == "sent"


def test_memo_skips_insufficient_credits(make_guard: MakeGuard) -> None:
    """A send refused for lack of credits may be repeated after a top-up."""
    guard = make_guard()
    calls: list[int] = []
    for _ in range(2):
        with pytest.raises(InsufficientCredits):
            _send(guard, PARAMS, _rejecting(calls, InsufficientCredits("no credits", res=-2)))
    assert calls == [1, 1]
    assert guard.memo.state(guard.now_s())["count"] == 0


def test_memo_fingerprint_is_canonical_and_ignores_secrets() -> None:
    """Key order and secret-named keys do not change the fingerprint; values and function do."""
    a = fingerprint("send", {"a": 1, "b": [1, 2], "Token": "x"})
    assert a == fingerprint("send", {"b": [1, 2], "a": 1, "token": "other"})
    assert a != fingerprint("send", {"a": 2, "b": [1, 2]})
    assert a != fingerprint("cancel", {"a": 1, "b": [1, 2]})


def test_memo_is_listed_and_kept_by_plain_reset(make_guard: MakeGuard) -> None:
    """The snapshot lists memo entries; reset keeps them unless memo=True."""
    guard = make_guard()
    with pytest.raises(BadRequestData):
        _send(guard, PARAMS, _rejecting([], BadRequestData("bad", res=-3)))
    memo = guard.snapshot()["memo"]
    assert isinstance(memo, dict) and memo["count"] == 1
    assert memo["recent"][0]["fingerprint"] == fingerprint("send", PARAMS)
    guard.reset()
    with pytest.raises(RepeatedRejection):
        _send(guard, PARAMS, lambda: "sent")
    guard.reset(memo=True)
    assert _send(guard, PARAMS, lambda: "sent") == "sent"


def test_rejection_budget_pauses_traffic_until_window_frees(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """Past the budget of rejections in the window, calls are delayed without a request."""
    guard = make_guard(rejection_budget=3, rejection_window_s=60)
    calls: list[int] = []
    for i in range(3):
        with pytest.raises(BadRequestData):
            rejected = _rejecting(calls, BadRequestData("b", res=-3))
            _send(guard, {**PARAMS, "Mensaje": str(i)}, rejected)
        manual_clock.advance(10)
    with pytest.raises(GuardDelay) as info:
        _send(guard, {**PARAMS, "Mensaje": "fine"}, lambda: calls.append(2))
    assert info.value.reason == "rejection_budget"
    assert info.value.delay_s == pytest.approx(30.0, abs=0.01)  # the first leaves at t=60
    assert calls == [1, 1, 1]
    assert guard.breaker.state(guard.now_s())["state"] == "closed"
    manual_clock.advance(30.01)
    assert _send(guard, {**PARAMS, "Mensaje": "fine"}, lambda: "sent") == "sent"


class _Params:
    """A request given as raw provider parameters (the client only calls ``to_params``)."""

    def __init__(self, params: dict[str, object]) -> None:
        self._params = params

    def to_params(self) -> dict[str, object]:
        return dict(self._params)


def test_memo_lets_not_yet_certificate_through_and_still_memoises_send_rejection(
    make_guard: MakeGuard, sandbox: SandboxHandle, sandbox_settings: Settings, tmp_path: Path
) -> None:
    """A certificate -4 ("not yet") is remembered for minutes, not a day; a send -3 for a day."""
    guard = make_guard()
    message_id = sandbox.call("EnviarSMSCERTIFICADO", send_params()).json()[0]["idMensaje"]
    params: dict[str, object] = {"Idmensaje": message_id, "Telefono": "34600000001"}

    def certificate() -> object:
        return guard.call(
            function="certificate",
            budget=Budget.QUERY,
            fingerprint=params,
            fn=lambda: client.certificate(_Params(params), tmp_path / "cert.zip"),
        )

    with MensatekClient(sandbox_settings) as client:
        with pytest.raises(NotFound):
            certificate()
        with pytest.raises(RepeatedRejection):  # an immediate repeat stays local
            certificate()
        digest = fingerprint("certificate", params)
        ttl_s = guard.memo._redis.ttl(guard.memo.key(digest))
        assert 0 < ttl_s <= sandbox_settings.memo_not_yet_ttl_s < sandbox_settings.memo_ttl_s
        guard.memo._redis.delete(guard.memo.key(digest))  # the short memo has expired
        sandbox.tick(3)
        certificate()
        assert (tmp_path / "cert.zip").read_bytes().startswith(b"PK")
        assert len(sandbox.requests("GetSMSCERTIFICADO")) == 2

        bad = send_params(Remitente="THIS-IS-NOT-A-SENDER")
        for expected in (BadRequestData, RepeatedRejection):
            with pytest.raises(expected):
                _send(guard, bad, lambda: client.send(_Params(bad)))
        assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 2
    assert guard.rejections.state()["count"] == 2  # the budget still counts the -4
