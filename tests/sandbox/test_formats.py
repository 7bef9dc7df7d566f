"""Provider quirks: list-wrapped strings, single-quoted arrays, TXT, XML, legacy, names, bodies."""

from __future__ import annotations

import ast
import json
import xml.etree.ElementTree as ET

import requests

from tests.fixtures.sandbox import SandboxHandle, send_params


def _sent_id(sandbox: SandboxHandle) -> str:
    return str(sandbox.call("EnviarSMSCERTIFICADO", send_params()).json()[0]["idMensaje"])


def test_sandbox_json_is_list_wrapped_with_string_values(sandbox: SandboxHandle) -> None:
    """Every JSON answer is a one-element list whose values are all strings."""
    document = sandbox.call("EnviarSMSCERTIFICADO", send_params()).json()
    assert isinstance(document, list) and len(document) == 1
    assert all(isinstance(value, str) for value in document[0].values())


def test_sandbox_informe_is_single_quoted_string(sandbox: SandboxHandle) -> None:
    """Informe is a single-quoted pseudo-JSON string with unquoted numbers."""
    message_id = _sent_id(sandbox)
    informe = sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": message_id}).json()[0][
        "Informe"
    ]
    assert isinstance(informe, str) and informe.startswith("[{'Fecha':'")
    rows = ast.literal_eval(informe)
    assert rows[0]["Telefono"] == 34600000001 and rows[0]["Resultado"] == 1002
    assert rows[0]["Estado"] == "Enviando"


def test_sandbox_nested_format_json_gives_real_arrays(sandbox: SandboxHandle) -> None:
    """With nested_format=json, Informe is a real JSON array."""
    sandbox.configure(nested_format="json")
    message_id = _sent_id(sandbox)
    informe = sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": message_id}).json()[0][
        "Informe"
    ]
    assert isinstance(informe, list) and informe[1]["Telefono"] == 34600000002


def test_sandbox_ficheros_code_wrapped(sandbox: SandboxHandle) -> None:
    """code_wrap_files reproduces the doc's <code>…</code> around Ficheros."""
    sandbox.configure(code_wrap_files=True)
    ficheros = sandbox.call("ListarFicheros").json()[0]["Ficheros"]
    assert ficheros == "<code>[]</code>"


def test_sandbox_cancel_keys_are_upper_case(sandbox: SandboxHandle) -> None:
    """Cancel answers IDMENSAJE, CRED and CREDR in upper case."""
    message_id = sandbox.call("EnviarSMSCERTIFICADO", send_params(Fecha="2099-01-01 00:00")).json()[
        0
    ]["idMensaje"]
    answer = sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": message_id}).json()[0]
    assert set(answer) == {"Res", "IDMENSAJE", "CRED", "CREDR"}


def test_sandbox_txt_format(sandbox: SandboxHandle) -> None:
    """Resp=TXT answers Key:Value; lines, arrays as [ / 0: [ … ] / ] blocks."""
    message_id = _sent_id(sandbox)
    text = sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": message_id, "Resp": "TXT"}).text
    lines = text.splitlines()
    assert lines[:3] == ["Res:1;", "Destinatarios:2;", "Cred:9982;"]
    assert lines[3:6] == ["Informe:", "[", "0: ["]
    assert "Estado:Enviando;" in lines and lines[-1] == "]"


def test_sandbox_xml_format(sandbox: SandboxHandle) -> None:
    """Resp=XML answers <result> with itemN children for arrays."""
    message_id = _sent_id(sandbox)
    response = sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": message_id, "Resp": "XML"})
    root = ET.fromstring(response.content)
    assert root.tag == "result" and root.findtext("Res") == "1"
    assert root.findtext("Informe/item1/Telefono") == "34600000002"


def test_sandbox_missing_resp_is_legacy_text(sandbox: SandboxHandle) -> None:
    """Without Resp the answer is the legacy text format, without the v7-only send fields."""
    text = sandbox.call("EnviarSMSCERTIFICADO", send_params(Resp=None)).text
    assert text.startswith("Res:2;\n")
    assert "Msgid:" in text and "Cred:" in text
    assert "Mensajes:" not in text and "NoEnviados:" not in text and "CreditosUsados:" not in text


def test_sandbox_form_body_case_insensitive_names_and_string_arrays(sandbox: SandboxHandle) -> None:
    """A form body with odd-case names, numbers as strings and a JSON-string array is accepted."""
    body = {
        "REMITENTE": "ACME",
        "mensaje": "Hola",
        "destinatarios": json.dumps([{"Movil": "34600000009"}]),
        "Contacto": "ACME",
        "TelContacto": "900000000",
        "CifContacto": "B00000000",
        "VPD": "3",
        "resp": "JSON",
    }
    response = requests.post(
        sandbox.base_url + "enviarSMSCertificado", data=body, auth=sandbox.auth, timeout=10
    )
    answer = response.json()[0]
    assert answer["Res"] == "1"
    assert sandbox.message(answer["idMensaje"])["recipients"][0]["phone"] == "34600000009"


def test_sandbox_json_numbers_and_real_arrays(sandbox: SandboxHandle) -> None:
    """A JSON body with real numbers and a real array is accepted too."""
    answer = sandbox.call(
        "EnviarSMSCERTIFICADO", send_params(Vpd=3, Report=1, Destinatarios=[{"Movil": 34600000007}])
    ).json()[0]
    assert answer["Res"] == "1"


def test_sandbox_function_names_case_insensitive(sandbox: SandboxHandle) -> None:
    """Function names match case-insensitively."""
    for name in ("getcreditos", "GETCREDITOS", "GetCreditos"):
        response = sandbox.call(name, {"n": name})  # distinct params: not a repeated query
        assert response.json()[0]["Res"] == "1"


def test_sandbox_non_post_is_405_and_unknown_function_404(sandbox: SandboxHandle) -> None:
    """GET on a function is 405 (lenient sandbox); an unknown function is 404."""
    sandbox.configure(strict=False)
    assert requests.get(sandbox.base_url + "GetCreditos", timeout=10).status_code == 405
    assert (
        requests.post(sandbox.base_url + "Nope", auth=sandbox.auth, timeout=10).status_code == 404
    )


def test_sandbox_bad_credentials_res_minus_1_or_401(sandbox: SandboxHandle) -> None:
    """Wrong credentials answer Res -1 with HTTP 200, or 401 when configured."""
    response = sandbox.call("GetCreditos", auth=("demo", "wrong"))
    assert response.status_code == 200 and response.json()[0]["Res"] == "-1"
    assert sandbox.call("GetCreditos", {"x": 1}, auth=("", "")).json()[0]["Res"] == "-1"
    sandbox.configure(auth_failure_mode="http401")
    response = sandbox.call("GetCreditos", {"x": 2}, auth=("demo", "wrong"))
    assert response.status_code == 401


def test_sandbox_non_object_json_body_is_res_minus_3(sandbox: SandboxHandle) -> None:
    """A JSON body that is not an object answers Res -3 with Error."""
    response = requests.post(
        sandbox.base_url + "GetCreditos",
        data="[1,2]",
        headers={"Content-Type": "application/json"},
        auth=sandbox.auth,
        timeout=10,
    )
    assert "Res:-3;" in response.text
