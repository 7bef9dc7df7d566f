"""The failure memo and the rejection budget."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from certsms.config.settings import Settings
from certsms.mensatek.client import MensatekClient
from certsms.mensatek.errors import (
    AuthenticationFailed,
    BadRequestData,
    InsufficientCredits,
    NotFound,
    ProviderRejected,
)
from certsms.worker.guard import Budget, GuardDelay, ProviderGuard, RepeatedRejection, fingerprint
from certsms.worker.guard.memo import is_memoised, memo_ttl_s
from tests.fixtures.guard import MakeGuard, ManualClock
from tests.fixtures.sandbox import SandboxHandle, send_params

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


def test_memo_fingerprint_keeps_lists_and_nested_values() -> None:
    """Recipient lists and nested values are part of the fingerprint: a message rejected
    for one recipient list does not block the same message to other recipients; a
    secret nested in a list is still dropped."""
    base = {"Mensaje": "hola", "Destinatarios": [{"Movil": "34600000001"}]}
    other = {"Mensaje": "hola", "Destinatarios": [{"Movil": "34600000002"}]}
    assert fingerprint("send", base) != fingerprint("send", other)
    assert fingerprint("send", {**base, "x": ("a", "b")}) != fingerprint(
        "send", {**base, "x": ("a", "c")}
    )
    nested = {"Destinatarios": [{"Movil": "34600000001", "api_key": "k1"}]}
    assert fingerprint("send", nested) == fingerprint(
        "send", {"Destinatarios": [{"Movil": "34600000001", "api_key": "k2"}]}
    )


def test_memo_fingerprint_is_stable_across_versions() -> None:
    """The digest of a given request is fixed (memo entries outlive a deploy: a changed
    algorithm would let a remembered rejection through once)."""
    params = {"Remitente": "ACME", "Mensaje": "Notificación", "Destinatarios": [{"Movil": "1"}]}
    canonical = '{"Destinatarios":[{"Movil":"1"}],"Mensaje":"Notificación","Remitente":"ACME"}'
    expected = hashlib.sha256(f"send\n{canonical}".encode()).hexdigest()
    assert fingerprint("send", params) == expected


@pytest.mark.parametrize(
    ("error", "memoised"),
    [
        (BadRequestData("b", res=-3), True),
        (NotFound("n", res=-4), True),
        (InsufficientCredits("c", res=-2), False),
        (AuthenticationFailed("a", res=-1), False),
        (ValueError("local"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_memo_is_memoised_table(error: BaseException, memoised: bool) -> None:
    """Only provider rejections other than credits and authentication are remembered."""
    assert is_memoised(error, "send") is memoised


@pytest.mark.parametrize(
    ("error", "function", "ttl_s"),
    [
        (NotFound("n", res=-4), "certificate", 300),
        (NotFound("n", res=-4), "report", 300),
        (NotFound("n", res=-4), "send", 86_400),
        (NotFound("n", res=-2), "cancel", 86_400),
        (BadRequestData("b", res=-3), "certificate", 86_400),
        (BadRequestData("b", res=-3), "send", 86_400),
    ],
)
def test_memo_ttl_short_only_for_not_yet_queries(
    settings: Settings, error: BaseException, function: str, ttl_s: int
) -> None:
    """A "not yet" NotFound of a certificate or report is remembered for minutes; every
    other rejection (a cancel's -2 too) for a day."""
    assert memo_ttl_s(settings, error, function) == ttl_s
    short = settings.model_copy(update={"memo_ttl_s": 100})
    assert memo_ttl_s(short, error, function) == 100  # never longer than memo_ttl_s


def test_memo_clear_forgets_every_entry(make_guard: MakeGuard) -> None:
    """clear() drops every remembered rejection, in batches, and says how many."""
    guard = make_guard()
    error = BadRequestData("b", res=-3)
    for i in range(1203):
        guard.memo.remember("send", {"Mensaje": str(i)}, error, now_s=guard.now_s())
    assert guard.memo.clear() == 1203
    assert guard.memo.state(guard.now_s())["count"] == 0
    redis_client = guard.memo._redis
    assert not list(redis_client.scan_iter(match=guard.memo.key("*"), count=1000))
    assert guard.memo.remember("send", {"Mensaje": "0"}, error, now_s=guard.now_s())


def test_memo_remember_keeps_the_first_rejection(make_guard: MakeGuard) -> None:
    """A second rejection of the same request does not replace the first one's record."""
    guard = make_guard()
    first = BadRequestData("first", res=-3, request_id="r1")
    assert guard.memo.remember("send", PARAMS, first, now_s=1.0) is True
    assert guard.memo.remember("send", PARAMS, BadRequestData("x", res=-5), now_s=2.0) is False
    with pytest.raises(RepeatedRejection) as info:
        guard.memo.check("send", PARAMS)
    assert info.value.first_rejection["request_id"] == "r1"
    assert info.value.first_rejection["at"] == 1.0


def test_memo_state_lists_the_ten_most_recent(
    make_guard: MakeGuard, manual_clock: ManualClock
) -> None:
    """The state counts every remembered rejection and lists the 10 most recent, newest
    first; the index outlives its entries."""
    guard = make_guard()
    error = BadRequestData("b", res=-3)
    for i in range(12):
        guard.memo.remember("send", {"Mensaje": str(i)}, error, now_s=manual_clock())
        manual_clock.advance(1)
    state = guard.memo.state(manual_clock())
    recent = state["recent"]
    assert state["count"] == 12 and isinstance(recent, list) and len(recent) == 10
    assert recent[0]["fingerprint"] == fingerprint("send", {"Mensaje": "11"})
    assert guard.memo._redis.ttl(guard.memo.index_key) >= guard.memo._settings.memo_ttl_s


def test_memo_remember_refuses_exempt_errors(make_guard: MakeGuard) -> None:
    """Credits and authentication failures are not stored: remember() says False."""
    guard = make_guard()
    for error in (InsufficientCredits("c", res=-2), AuthenticationFailed("a", res=-1)):
        assert guard.memo.remember("send", PARAMS, error, now_s=1.0) is False
    assert guard.memo.state(guard.now_s())["count"] == 0
