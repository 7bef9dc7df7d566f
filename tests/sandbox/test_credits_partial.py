"""Credits (CreditosUsados, CreditosNecesarios, the admin top-up) and partial sends (NoEnviados)."""

from __future__ import annotations

import ast
from typing import Any

import requests

from tests.fixtures.sandbox import SandboxHandle, send_params

THREE = [{"Movil": "34600000001"}, {"Movil": "34600000002"}, {"Movil": "34600000003"}]


def _answer(sandbox: SandboxHandle, **overrides: Any) -> dict[str, str]:
    return dict(sandbox.call("EnviarSMSCERTIFICADO", send_params(**overrides)).json()[0])


def test_sandbox_credits_decrease_by_creditos_usados(sandbox: SandboxHandle) -> None:
    """A send takes CreditosUsados (SMS parts × 9) from the account; Cred and GetCreditos agree."""
    first = _answer(sandbox)  # 2 recipients × 1 part
    second = _answer(sandbox, Mensaje="x" * 200, Destinatarios=[{"Movil": "34600000009"}])
    assert (first["Mensajes"], first["CreditosUsados"], first["Cred"]) == ("2", "18", "9982")
    assert (second["Mensajes"], second["CreditosUsados"], second["Cred"]) == ("2", "18", "9964")
    assert sandbox.call("GetCreditos").json()[0]["Cred"] == "9964"
    assert sandbox.credits() == 9964


def test_sandbox_lack_of_credits_sends_nothing(sandbox: SandboxHandle) -> None:
    """Below what a send needs: Res -2 with CreditosNecesarios, nothing sent or charged; a top-up
    of the missing credit makes the same send go through and empties the account."""
    sandbox.set_credits(17)
    refused = _answer(sandbox)
    assert refused == {"Res": "-2", "Cred": "17", "CreditosNecesarios": "18"}
    assert sandbox.state()["messages"] == [] and sandbox.credits() == 17
    entry = sandbox.requests("EnviarSMSCERTIFICADO")[-1]
    assert entry["outcome"] == "no_credit" and entry["res"] == -2
    assert sandbox.add_credits(1) == 18
    sent = _answer(sandbox)
    assert sent["Res"] == "2" and sent["Cred"] == "0" and sandbox.credits() == 0


def test_sandbox_lack_of_credits_res_is_configurable(sandbox: SandboxHandle) -> None:
    """no_credit_res picks the Res of a send refused for lack of credits: 0 or a negative code."""
    sandbox.set_credits(0)
    sandbox.configure(no_credit_res=0)
    assert _answer(sandbox) == {"Res": "0", "Cred": "0", "CreditosNecesarios": "18"}
    sandbox.configure(no_credit_res=-5)
    assert _answer(sandbox)["Res"] == "-5"
    bad = requests.post(sandbox.admin_url + "config", json={"no_credit_res": 1}, timeout=10)
    assert bad.status_code == 400 and "no_credit_res" in bad.json()["error"]
    assert sandbox.state()["messages"] == []


def test_sandbox_admin_credits_set_top_up_and_refuse(sandbox: SandboxHandle) -> None:
    """POST /_admin/credits sets ("credits") or tops up ("add", may be negative); neither: 400."""
    sandbox.set_credits(100)
    assert sandbox.add_credits(50) == 150 and sandbox.add_credits(-25) == 125
    assert sandbox.call("GetCreditos").json()[0]["Cred"] == "125"
    response = requests.post(sandbox.admin_url + "credits", json={"user": "demo"}, timeout=10)
    assert response.status_code == 400 and sandbox.credits() == 125


def test_sandbox_one_of_three_recipients_not_sent(sandbox: SandboxHandle) -> None:
    """A mobile in invalid_phones is not sent: NoEnviados 1, not charged, kept at Resultado 104
    (no progress, no callback, no certificate) and reported; the other two are sent."""
    sandbox.configure(
        invalid_phones=["600000002"],  # a bare Spanish number matches 34600000002
        callback_url="http://127.0.0.1:9/never",
        callback_drop_rate=1.0,  # every callback emitted is logged as dropped, none travels
    )
    answer = _answer(sandbox, Destinatarios=THREE, Report=1)
    assert (answer["Res"], answer["Destinatarios"], answer["Mensajes"]) == ("2", "2", "2")
    assert (answer["NoEnviados"], answer["CreditosUsados"], answer["Cred"]) == ("1", "18", "9982")
    message_id = answer["idMensaje"]
    sandbox.tick(5)
    message = sandbox.message(message_id)
    assert message["not_sent"] == [{"phone": "34600000002", "reason": "invalid_phone"}]
    recipients = {r["phone"]: r for r in message["recipients"]}
    assert [r["result"] for r in recipients.values()] == [14, 104, 14]
    assert recipients["34600000002"]["sent"] is False
    assert [h["result"] for h in recipients["34600000002"]["history"]] == [104]
    report = sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": message_id}).json()[0]
    rows = {row["Telefono"]: row for row in ast.literal_eval(report["Informe"])}
    assert report["Destinatarios"] == "3" and rows[34600000002]["Resultado"] == 104
    assert rows[34600000002]["Estado"] == "El teléfono no es correcto"
    assert rows[34600000002]["Tiempo"] == 0
    called = {d["payload"]["Movil"] for d in sandbox.wait_callbacks()}
    assert called == {"34600000001", "34600000003"}
    cert = {"Idmensaje": message_id, "Telefono": "34600000002"}
    refused = sandbox.call("GetSMSCERTIFICADO", cert).json()[0]
    assert refused["Res"] == "-4" and "NoEnviados" in refused["Error"]


def test_sandbox_duplicate_recipient_is_not_sent_and_absent(sandbox: SandboxHandle) -> None:
    """A mobile repeated in one request (in any spelling) is sent once; the repeat is NoEnviados."""
    recipients = [{"Movil": "34600000001"}, {"Movil": "+34 600 000 001"}, {"Movil": "34600000002"}]
    answer = _answer(sandbox, Destinatarios=recipients)
    assert (answer["Res"], answer["Destinatarios"], answer["NoEnviados"]) == ("2", "2", "1")
    message = sandbox.message(answer["idMensaje"])
    assert [r["phone"] for r in message["recipients"]] == ["34600000001", "34600000002"]
    assert message["not_sent"] == [{"phone": "34600000001", "reason": "duplicate"}]


def test_sandbox_nothing_sent_is_res_0(sandbox: SandboxHandle) -> None:
    """When every recipient is not correct nothing is charged and Res is 0 with NoEnviados."""
    sandbox.configure(invalid_phones=["34600000001", "34600000002"])
    answer = _answer(sandbox)
    assert (answer["Res"], answer["NoEnviados"], answer["CreditosUsados"]) == ("0", "2", "0")
    assert sandbox.credits() == 10_000
    sandbox.tick(3)
    assert [r["result"] for r in sandbox.message(answer["idMensaje"])["recipients"]] == [104, 104]


def test_sandbox_cancel_ignores_not_sent_recipients(sandbox: SandboxHandle) -> None:
    """Cancelling a scheduled send cancels (and refunds) the sent recipients; 104 stays 104."""
    sandbox.configure(invalid_phones=["34600000003"])
    message_id = _answer(sandbox, Destinatarios=THREE, Fecha="2099-01-01 10:00")["idMensaje"]
    cancel = sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": message_id}).json()[0]
    assert (cancel["Res"], cancel["CREDR"]) == ("2", "18")
    assert [r["result"] for r in sandbox.message(message_id)["recipients"]] == [29, 29, 104]
    again = sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": message_id}).json()[0]
    assert again["Res"] == "-5"
