"""Strict mode: query-string params, Correo/Passwd, a past Fecha, non-POST, library names."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import requests

from tests.fixtures.sandbox import SandboxHandle, send_params

PDF64 = base64.b64encode(b"%PDF-1.4\n% strict\n").decode()


def _madrid_now(sandbox: SandboxHandle) -> datetime:
    """The sandbox's Madrid time, moved to second 1 of a minute (no minute turns mid-test)."""
    now = datetime.strptime(sandbox.state()["now"], "%Y-%m-%d %H:%M:%S")
    sandbox.advance_clock(61 - now.second)
    return datetime.strptime(sandbox.state()["now"], "%Y-%m-%d %H:%M:%S")


def _fecha(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _last(sandbox: SandboxHandle, function: str) -> dict[str, Any]:
    return sandbox.requests(function)[-1]


def test_sandbox_strict_refuses_query_string_params(sandbox: SandboxHandle) -> None:
    """Strict: any parameter in the query string is Res -3 naming them, logged as query_string;
    lenient: the same request is answered."""
    sandbox.configure(strict=False)  # the lenient half first (the fixture is strict)
    query = {"Resp": "JSON", "Idmensaje": "1"}
    assert sandbox.raw("GetCreditos", params=query, json={}).json()[0]["Res"] == "1"
    sandbox.configure(strict=True)
    answer = sandbox.raw("GetCreditos", params=query, json={"x": 1}).json()[0]
    assert answer["Res"] == "-3" and "query string" in answer["Error"]
    assert "Resp" in answer["Error"] and "Idmensaje" in answer["Error"]
    entry = _last(sandbox, "GetCreditos")
    assert (entry["outcome"], entry["reason"], entry["res"]) == (
        "strict_refused",
        "query_string",
        -3,
    )
    assert entry["query_params"] == ["Resp", "Idmensaje"] and entry["body_format"] == "json"
    assert sandbox.call("GetCreditos").json()[0]["Res"] == "1"  # the body alone is fine


def test_sandbox_strict_refuses_legacy_login_fields(sandbox: SandboxHandle) -> None:
    """Strict: Correo/Passwd in the body are Res -3 (not -1), with or without Basic auth;
    lenient: they still log in (v5/v6 style). The password never reaches the log."""
    sandbox.configure(strict=False)  # the lenient half first (the fixture is strict)
    legacy = {"Correo": "demo", "Passwd": "demo-token", "Resp": "JSON"}
    lenient = requests.post(sandbox.base_url + "GetCreditos", data=legacy, timeout=10)
    assert lenient.json()[0]["Res"] == "1"
    sandbox.configure(strict=True)
    alone = requests.post(sandbox.base_url + "GetCreditos", data=legacy, timeout=10).json()[0]
    assert alone["Res"] == "-3" and "Correo, Passwd" in alone["Error"]
    both = sandbox.call("GetCreditos", {"Correo": "demo", "n": 2}).json()[0]
    assert both["Res"] == "-3" and "Correo" in both["Error"] and "Passwd" not in both["Error"]
    entries = sandbox.requests("GetCreditos")
    assert [e["reason"] for e in entries] == [None, "legacy_login", "legacy_login"]
    assert "demo-token" not in str(entries)


def test_sandbox_strict_refuses_a_past_fecha(sandbox: SandboxHandle) -> None:
    """Strict: a Fecha before the current Madrid minute is Res -3 and sends nothing; the current
    minute sends now and a future one is scheduled. Lenient: a past Fecha sends now."""
    sandbox.configure(strict=False)  # the lenient half first (the fixture is strict)
    now = _madrid_now(sandbox)
    past = _fecha(now - timedelta(days=1))
    lenient = sandbox.call("EnviarSMSCERTIFICADO", send_params(Fecha=past)).json()[0]
    assert lenient["Res"] == "2"
    assert [r["result"] for r in sandbox.message(lenient["idMensaje"])["recipients"]] == [1002] * 2
    sandbox.configure(strict=True)
    refused = sandbox.call("EnviarSMSCERTIFICADO", send_params(Fecha=past)).json()[0]
    assert refused["Res"] == "-3" and past in refused["Error"] and "past" in refused["Error"]
    assert len(sandbox.state()["messages"]) == 1
    entry = _last(sandbox, "EnviarSMSCERTIFICADO")
    assert (entry["outcome"], entry["reason"]) == ("strict_refused", "fecha_past")
    current = sandbox.call("EnviarSMSCERTIFICADO", send_params(Fecha=_fecha(now))).json()[0]
    future = _fecha(now + timedelta(days=2))
    later = sandbox.call("EnviarSMSCERTIFICADO", send_params(Fecha=future)).json()[0]
    assert current["Res"] == "2" and later["Res"] == "2"
    assert sandbox.message(later["idMensaje"])["scheduled_at"] == future


def test_sandbox_strict_refuses_non_post(sandbox: SandboxHandle) -> None:
    """Strict: a GET is answered Res -3 (HTTP 200) and logged as method; lenient: 405, unlogged."""
    sandbox.configure(strict=False)  # the lenient half first (the fixture is strict)
    assert requests.get(sandbox.base_url + "GetCreditos", timeout=10).status_code == 405
    assert sandbox.requests() == []
    sandbox.configure(strict=True)
    response = requests.get(sandbox.base_url + "GetCreditos", auth=sandbox.auth, timeout=10)
    assert response.status_code == 200 and response.text.startswith("Res:-3;")
    assert "Only POST is accepted (got GET)" in response.text
    entry = _last(sandbox, "GetCreditos")
    assert (entry["method"], entry["reason"], entry["outcome"]) == (
        "GET",
        "method",
        "strict_refused",
    )
    put = sandbox.raw("GetCreditos", method="PUT", json={"Resp": "JSON"}).json()[0]
    assert put["Res"] == "-3" and "PUT" in put["Error"]


def test_sandbox_strict_library_names(sandbox: SandboxHandle) -> None:
    """Strict: a library name is at most 15 letters/digits with its extension, else Res -3;
    lenient: the v5 rule strips other characters and returns the final name."""
    sandbox.configure(strict=True, block_threshold=100)
    cases = {
        "mifichero.pdf": "1",
        "abcdefghijk.pdf": "1",  # exactly 15 with the extension
        "abcdefghijkl.pdf": "-3",  # 16
        "mi-fichero.pdf": "-3",
        "mi fichero.pdf": "-3",
        "a.b.pdf": "-3",
        "sinextension": "-3",
    }
    for name, res in cases.items():
        body = {"Nombre": name, "Tipo": "BASE64", "Contenido": PDF64}
        answer = sandbox.call("CargarFichero", body).json()[0]
        assert answer["Res"] == res, (name, answer)
        reason = _last(sandbox, "CargarFichero")["reason"]
        assert reason == (None if res == "1" else "library_name")
        assert res == "1" or name in answer["Error"]
    files = {"Fichero": ("contrato_2024.pdf", b"%PDF-1.4 x", "application/pdf")}
    multipart = sandbox.raw("CargarFichero", data={"Tipo": "FILES", "Resp": "JSON"}, files=files)
    assert multipart.json()[0]["Res"] == "-3" and "contrato_2024.pdf" in multipart.text
    sandbox.configure(strict=False)
    lenient = sandbox.call(
        "CargarFichero", {"Nombre": "mi-fichero.pdf", "Tipo": "BASE64", "Contenido": PDF64}
    )
    assert lenient.json()[0]["Nombre"] == "mifichero.pdf"


def test_sandbox_strict_refusals_count_as_erroneous(sandbox: SandboxHandle) -> None:
    """Strict refusals are erroneous requests: past block_threshold the credential is blocked."""
    sandbox.configure(strict=True, block_threshold=2)
    for index in range(3):
        sandbox.raw("GetCreditos", params={"n": index}, json={})
    assert sandbox.call("GetCreditos").status_code == 403
    assert sandbox.state()["blocks"]["episodes"][0]["reason"] == "strict:query_string"
