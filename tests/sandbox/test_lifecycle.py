"""Status progression, scheduling, clock, and the callbacks the sandbox POSTs."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.fixtures.sandbox import CallbackReceiver as Receiver
from tests.fixtures.sandbox import SandboxHandle, send_params


@pytest.fixture
def receiver(callback_receiver: Receiver) -> Receiver:
    """A callback receiver on a free port."""
    return callback_receiver


def _send(sandbox: SandboxHandle, **overrides: Any) -> str:
    # Report=1 so the callback tests hold whether or not report_gates_callbacks is on.
    response = sandbox.call("EnviarSMSCERTIFICADO", send_params(**{"Report": 1, **overrides}))
    answer = response.json()[0]
    assert int(answer["Res"]) > 0, answer
    return str(answer["idMensaje"])


def _results(sandbox: SandboxHandle, message_id: str) -> list[int]:
    return [r["result"] for r in sandbox.message(message_id)["recipients"]]


def test_sandbox_certified_progression(sandbox: SandboxHandle) -> None:
    """A certified SMS goes 1002 → 10 → 11 → 14 one tick at a time, then stays."""
    message_id = _send(sandbox, Destinatarios=[{"Movil": "34600000001"}])
    seen = [_results(sandbox, message_id)[0]]
    for _ in range(4):
        sandbox.tick()
        seen.append(_results(sandbox, message_id)[0])
    assert seen == [1002, 10, 11, 14, 14]
    history = sandbox.message(message_id)["recipients"][0]["history"]
    assert [h["result"] for h in history] == [1002, 10, 11, 14]


def test_sandbox_contract_progression_ends_in_17(sandbox: SandboxHandle) -> None:
    """A contract (Tipocontrato ≠ 0) ends in 17."""
    pdf = base64.b64encode(b"%PDF-1.4 contract").decode()
    message_id = _send(sandbox, Tipocontrato="18", Mensaje=f"Firme (BASE64:2:{pdf})", Links=1)
    sandbox.tick(5)
    assert _results(sandbox, message_id) == [17, 17]


def test_sandbox_failure_phone_ends_in_failure_code(sandbox: SandboxHandle) -> None:
    """A phone listed in failure_phones ends in its failure code."""
    sandbox.configure(failure_phones={"34600000002": 104})
    message_id = _send(sandbox)
    sandbox.tick(5)
    assert _results(sandbox, message_id) == [14, 104]


def test_sandbox_scheduled_waits_for_its_date(sandbox: SandboxHandle) -> None:
    """A future Fecha stays at Resultado 1 until the sandbox clock passes it."""
    state_now = sandbox.state()["now"]
    year = int(state_now[:4]) + 1
    message_id = _send(sandbox, Fecha=f"{year}-01-01 10:00")
    sandbox.tick(3)
    assert _results(sandbox, message_id) == [1, 1]
    sandbox.advance_clock(2 * 365 * 86_400)
    sandbox.tick()
    assert _results(sandbox, message_id) == [1002, 1002]


def test_sandbox_status_callbacks_json_with_basic_auth(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """Each status change POSTs a JSON SMSCERTIFICADO callback with the documented fields."""
    sandbox.configure(callback_url=receiver.url, callback_user="cb", callback_password="secret")
    message_id = _send(sandbox, Destinatarios=[{"Movil": "34600000001"}], Referenciausuario="REF-1")
    sandbox.tick(3)
    deliveries = sandbox.wait_callbacks()
    assert [d["outcome"] for d in deliveries] == ["delivered"] * 3
    bodies = receiver.bodies()
    assert sorted(int(b["Resultado"]) for b in bodies) == [10, 11, 14]
    body = bodies[0]
    assert set(body) == {
        "Servicio",
        "Resultado",
        "Remitente",
        "Movil",
        "Fecha",
        "Segundos",
        "idMensaje",
        "Referencia",
        "idReport",
    }
    assert body["idMensaje"] == message_id and body["Referencia"] == "REF-1"
    assert body["Movil"] == "34600000001" and body["Remitente"] == "ACME"
    assert all(isinstance(v, str) for v in body.values())
    expected = "Basic " + base64.b64encode(b"cb:secret").decode()
    assert {r["auth"] for r in receiver.received} == {expected}
    assert all("application/json" in r["ctype"] for r in receiver.received)


def test_sandbox_callbacks_form_and_cancel(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """In form format the cancellation (29) arrives urlencoded."""
    sandbox.configure(callback_url=receiver.url, callback_format="form")
    message_id = _send(sandbox, Fecha="2099-01-01 10:00")
    sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": message_id})
    sandbox.wait_callbacks()
    assert [b["Resultado"] for b in receiver.bodies()] == ["29", "29"]
    assert all("x-www-form-urlencoded" in r["ctype"] for r in receiver.received)


def test_sandbox_callbacks_retried_after_failure(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """A callback answered 500 is retried until the receiver takes it."""
    sandbox.configure(callback_url=receiver.url, callback_retries=3, callback_retry_delay_s=0.01)
    receiver.fail_first = 2
    _send(sandbox, Destinatarios=[{"Movil": "34600000001"}])
    sandbox.tick()
    deliveries = sandbox.wait_callbacks()
    assert deliveries[0]["outcome"] == "delivered" and deliveries[0]["attempts"] == 3
    assert len(receiver.received) == 3


def test_sandbox_callbacks_dropped(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """With callback_drop_rate=1 no callback reaches the receiver; each is logged as dropped."""
    sandbox.configure(callback_url=receiver.url, callback_drop_rate=1.0)
    _send(sandbox)
    sandbox.tick()
    deliveries = sandbox.wait_callbacks()
    assert [d["outcome"] for d in deliveries] == ["dropped", "dropped"]
    assert receiver.received == []


def test_sandbox_event_and_reply_callbacks(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """The admin API emits EVENTOSSMSCERTIFICADO and SMSRECIBIDO in the documented shapes."""
    sandbox.configure(callback_url=receiver.url)
    message_id = _send(sandbox, Referenciausuario="R9")
    sandbox.emit_event(message_id, "34600000002", tipo_evento="2", valor="00000000T")
    sandbox.emit_reply(message_id, "34600000001", mensaje="ACEPTO")
    sandbox.wait_callbacks()
    event = receiver.bodies("EVENTOSSMSCERTIFICADO")[0]
    assert event["Telefono"] == "34600000002" and event["TipoEvento"] == "2"
    assert event["idEnvio"] == event["idMensaje"] == message_id and event["Valor"] == "00000000T"
    assert {"Fichero", "TipoAdjunto", "Fecha", "Referencia", "IP", "Puerto"} <= set(event)
    reply = receiver.bodies("SMSRECIBIDO")[0]
    assert reply["Remitente"] == "34600000001" and reply["Mensaje"] == "ACEPTO"
    assert reply["idM"] == message_id and reply["EsCert"] == "true" and reply["Referencia"] == "R9"
    assert {"timestamp", "Fecha", "Movil", "idR"} <= set(reply)


def test_sandbox_no_callback_url_sends_nothing(sandbox: SandboxHandle) -> None:
    """Without a callback URL status changes are only recorded in the state."""
    _send(sandbox)
    assert sandbox.tick() == 2
    assert sandbox.wait_callbacks() == []
