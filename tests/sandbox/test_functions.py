"""The nine sandbox functions over real HTTP: success answers and documented negative Res."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from typing import Any

import requests

from tests.fixtures.sandbox import SandboxHandle, send_params

PDF = b"%PDF-1.4\n% tiny test pdf\n"


def first(response: requests.Response) -> dict[str, Any]:
    """The one object of a list-wrapped JSON answer."""
    document = response.json()
    assert isinstance(document, list) and len(document) == 1
    return dict(document[0])


def send(sandbox: SandboxHandle, **overrides: Any) -> dict[str, Any]:
    answer = first(sandbox.call("EnviarSMSCERTIFICADO", send_params(**overrides)))
    assert int(answer["Res"]) > 0, answer
    return answer


def test_sandbox_send_success_charges_credits(sandbox: SandboxHandle) -> None:
    """A send answers Res = SMS sent, equal Msgid/idMensaje, and charges 9 credits each."""
    answer = send(sandbox)
    assert answer["Res"] == "2"
    assert answer["Msgid"] == answer["idMensaje"]
    assert answer["Mensajes"] == "2" and answer["NoEnviados"] == "0"
    assert answer["CreditosUsados"] == "18" and answer["Cred"] == "9982"
    message = sandbox.message(answer["idMensaje"])
    assert [r["result"] for r in message["recipients"]] == [1002, 1002]


def test_sandbox_send_long_text_costs_more_parts(sandbox: SandboxHandle) -> None:
    """A 200-character GSM text costs two parts per recipient."""
    answer = send(sandbox, Mensaje="x" * 200, Destinatarios=[{"Movil": "34600000001"}])
    assert answer["Mensajes"] == "2" and answer["CreditosUsados"] == "18"


def test_sandbox_send_missing_params_is_res_minus_3(sandbox: SandboxHandle) -> None:
    """Each missing required parameter gives Res -3 naming it in Error."""
    for name in ("Remitente", "Mensaje", "Destinatarios", "Contacto", "Telcontacto", "Cifcontacto"):
        answer = first(sandbox.call("EnviarSMSCERTIFICADO", send_params(**{name: None})))
        assert answer["Res"] == "-3" and name in answer["Error"], answer
        sandbox.reset()  # stay below the spam threshold


def test_sandbox_send_malformed_values_are_res_minus_3(sandbox: SandboxHandle) -> None:
    """Bad phone, bad date, out-of-range Vpd, long sender, bad JSON give Res -3."""
    cases: list[dict[str, Any]] = [
        {"Destinatarios": [{"Movil": "12ab"}]},
        {"Fecha": "03/12/2030 10:00"},
        {"Vpd": "21"},
        {"Vph": 24},
        {"Aceptacion": 16},
        {"Remitente": "ABCDEFGHIJKLM"},
        {"Destinatarios": "[{not json"},
        {"Tipocontrato": "18"},  # a contract needs a PDF macro
        {"Mensaje": "see (FILE:2:missing.pdf)", "Links": 1},
        {"Idmensaje": "999"},
    ]
    for case in cases:
        answer = first(sandbox.call("EnviarSMSCERTIFICADO", send_params(**case)))
        assert answer["Res"] == "-3" and answer["Error"], (case, answer)
        sandbox.reset()


def test_sandbox_send_without_credits_is_res_minus_2(sandbox: SandboxHandle) -> None:
    """Too few credits gives Res -2 with CreditosNecesarios and charges nothing."""
    sandbox.set_credits(10)
    answer = first(sandbox.call("EnviarSMSCERTIFICADO", send_params()))
    assert answer["Res"] == "-2" and answer["CreditosNecesarios"] == "18"
    assert sandbox.state()["accounts"]["demo"]["credits"] == 10
    assert sandbox.state()["messages"] == []


def test_sandbox_group_never_sends_twice_to_a_mobile(sandbox: SandboxHandle) -> None:
    """A send under an existing Idmensaje skips mobiles already in it (NoEnviados)."""
    message_id = send(sandbox)["idMensaje"]
    again = send(
        sandbox,
        Idmensaje=message_id,
        Destinatarios=[{"Movil": "34600000002"}, {"Movil": "34600000003"}],
    )
    assert again["idMensaje"] == message_id
    assert again["Mensajes"] == "1" and again["NoEnviados"] == "1"
    phones = [r["phone"] for r in sandbox.message(message_id)["recipients"]]
    assert phones == ["34600000001", "34600000002", "34600000003"]
    repeat = first(sandbox.call("EnviarSMSCERTIFICADO", send_params(Idmensaje=message_id)))
    assert repeat["Res"] == "0" and repeat["NoEnviados"] == "2" and repeat["CreditosUsados"] == "0"


def test_sandbox_credits(sandbox: SandboxHandle) -> None:
    """GetCreditos answers Res 1 and the account's credits."""
    assert first(sandbox.call("GetCreditos")) == {"Res": "1", "Cred": "10000"}


def test_sandbox_report_and_unknown_message(sandbox: SandboxHandle) -> None:
    """The report lists every recipient; an unknown or foreign idMensaje is Res -4."""
    message_id = send(sandbox)["idMensaje"]
    answer = first(sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": message_id}))
    assert answer["Res"] == "1" and answer["Destinatarios"] == "2"
    assert "'Resultado':1002" in answer["Informe"] and "'Telefono':34600000001" in answer["Informe"]
    assert first(sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": "123"}))["Res"] == "-4"
    assert first(sandbox.call("GetReportSMSCERTIFICADO", {}))["Res"] == "-3"


def test_sandbox_cancel_scheduled_recovers_credits(sandbox: SandboxHandle) -> None:
    """Cancelling a scheduled message answers IDMENSAJE/CRED/CREDR and sets Resultado 29."""
    message_id = send(sandbox, Fecha="2099-01-01 10:00")["idMensaje"]
    answer = first(sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": message_id}))
    assert answer == {"Res": "2", "IDMENSAJE": message_id, "CRED": "10000", "CREDR": "18"}
    assert [r["result"] for r in sandbox.message(message_id)["recipients"]] == [29, 29]
    again = first(sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": message_id}))
    assert again["Res"] == "-5"


def test_sandbox_cancel_errors(sandbox: SandboxHandle) -> None:
    """Cancel: sent → -4, unknown → -2, missing Idmensaje → -3."""
    message_id = send(sandbox)["idMensaje"]
    assert first(sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": message_id}))["Res"] == "-4"
    assert first(sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": 42}))["Res"] == "-2"
    assert first(sandbox.call("CancelarSMSCERTIFICADO", {}))["Res"] == "-3"


def test_sandbox_cancel_other_accounts_message_is_minus_2(sandbox: SandboxHandle) -> None:
    """A message of another account cannot be cancelled (Res -2)."""
    sandbox.configure(extra_accounts={"other": "other-token"})
    message_id = send(sandbox, Fecha="2099-01-01 10:00")["idMensaje"]
    answer = first(
        sandbox.call(
            "CancelarSMSCERTIFICADO", {"Idmensaje": message_id}, auth=("other", "other-token")
        )
    )
    assert answer["Res"] == "-2"


def test_sandbox_reschedule(sandbox: SandboxHandle) -> None:
    """Reschedule moves a scheduled message; bad date -6, sent -4, cancelled -5, unknown -2."""
    scheduled = send(sandbox, Fecha="2099-01-01 10:00")["idMensaje"]
    ok = first(
        sandbox.call(
            "ReprogramarSMSCERTIFICADO", {"Idmensaje": scheduled, "Fecha": "2099-02-01 09:30"}
        )
    )
    assert ok == {"Res": "1", "Cred": "9982"}
    assert sandbox.message(scheduled)["scheduled_at"] == "2099-02-01 09:30"
    bad = first(
        sandbox.call(
            "ReprogramarSMSCERTIFICADO", {"Idmensaje": scheduled, "Fecha": "2001-01-01 00:00"}
        )
    )
    assert bad["Res"] == "-6"
    sent = send(sandbox)["idMensaje"]
    assert (
        first(
            sandbox.call(
                "ReprogramarSMSCERTIFICADO", {"Idmensaje": sent, "Fecha": "2099-01-01 10:00"}
            )
        )["Res"]
        == "-4"
    )
    sandbox.call("CancelarSMSCERTIFICADO", {"Idmensaje": scheduled})
    assert (
        first(
            sandbox.call(
                "ReprogramarSMSCERTIFICADO", {"Idmensaje": scheduled, "Fecha": "2099-01-01 10:00"}
            )
        )["Res"]
        == "-5"
    )
    assert (
        first(
            sandbox.call("ReprogramarSMSCERTIFICADO", {"Idmensaje": 7, "Fecha": "2099-01-01 10:00"})
        )["Res"]
        == "-2"
    )


def test_sandbox_upload_list_delete(sandbox: SandboxHandle) -> None:
    """Upload (BASE64) → listed with upper-case Ext → overwrite flagged → deleted → -2
    (the lenient sandbox renames a v5-style name)."""
    sandbox.configure(strict=False)
    body = {
        "Nombre": "mi-contrato.pdf",
        "Tipo": "BASE64",
        "Contenido": base64.b64encode(PDF).decode(),
    }
    answer = first(sandbox.call("CargarFichero", body))
    assert answer == {"Res": "1", "Nombre": "micontrato.pdf", "Sobrescrito": "0", "Cred": "10000"}
    assert first(sandbox.call("CargarFichero", body))["Sobrescrito"] == "1"
    listing = first(sandbox.call("ListarFicheros"))
    assert "'Nombre':'micontrato.pdf','Ext':'PDF'" in listing["Ficheros"]
    assert first(sandbox.call("BorrarFichero", {"Nombre": "micontrato.pdf"})) == {
        "Res": "1",
        "Cred": "10000",
    }
    assert first(sandbox.call("BorrarFichero", {"Nombre": "micontrato.pdf"}))["Res"] == "-2"
    assert first(sandbox.call("ListarFicheros"))["Ficheros"] == "[]"


def test_sandbox_upload_multipart_files_mode(sandbox: SandboxHandle) -> None:
    """Tipo=FILES takes the file from the multipart part Fichero."""
    response = requests.post(
        sandbox.base_url + "CargarFichero",
        data={"Tipo": "FILES", "Resp": "JSON"},
        files={"Fichero": ("notifica.pdf", PDF, "application/pdf")},
        auth=sandbox.auth,
        timeout=10,
    )
    assert first(response)["Nombre"] == "notifica.pdf"
    assert sandbox.state()["accounts"]["demo"]["files"][0]["size_bytes"] == len(PDF)


def test_sandbox_upload_on_trial_account_is_refused(sandbox: SandboxHandle) -> None:
    """trial_account=true answers every upload -18 and stores nothing; false uploads again."""
    body = {"Nombre": "a.pdf", "Tipo": "BASE64", "Contenido": base64.b64encode(PDF).decode()}
    sandbox.configure(trial_account=True)
    answer = first(sandbox.call("CargarFichero", body))
    assert answer["Res"] == "-18" and "Trial" in answer["Error"]
    assert first(sandbox.call("ListarFicheros"))["Ficheros"] == "[]"
    sandbox.configure(trial_account=False)
    assert first(sandbox.call("CargarFichero", body))["Res"] == "1"


def test_sandbox_upload_errors(sandbox: SandboxHandle) -> None:
    """Each upload error has its code: Tipo, content, file, format, base64, size, quota."""
    b64 = base64.b64encode(PDF).decode()
    cases = [
        ({"Nombre": "a.pdf", "Contenido": b64}, "-15"),
        ({"Nombre": "a.pdf", "Tipo": "BASE64"}, "-12"),
        ({"Tipo": "FILES"}, "-13"),
        ({"Nombre": "a.exe", "Tipo": "BASE64", "Contenido": b64}, "-11"),
        (
            {"Nombre": "a.pdf", "Tipo": "BASE64", "Contenido": base64.b64encode(b"nope").decode()},
            "-11",
        ),
        ({"Nombre": "a.pdf", "Tipo": "BASE64", "Contenido": "!!not base64!!"}, "-17"),
    ]
    for body, code in cases:
        assert first(sandbox.call("CargarFichero", body))["Res"] == code, body
    sandbox.reset()
    sandbox.configure(library_max_file_bytes=10)
    assert (
        first(
            sandbox.call("CargarFichero", {"Nombre": "a.pdf", "Tipo": "BASE64", "Contenido": b64})
        )["Res"]
        == "-16"
    )
    sandbox.configure(library_max_file_bytes=1000, library_max_files=1)
    assert (
        first(
            sandbox.call("CargarFichero", {"Nombre": "a.pdf", "Tipo": "BASE64", "Contenido": b64})
        )["Res"]
        == "1"
    )
    assert (
        first(
            sandbox.call("CargarFichero", {"Nombre": "b.pdf", "Tipo": "BASE64", "Contenido": b64})
        )["Res"]
        == "-10"
    )


def test_sandbox_certificate_only_once_certified(sandbox: SandboxHandle) -> None:
    """The ZIP (PDF + CSV) is served once the recipient is certified; before, Res -4."""
    message_id = send(sandbox)["idMensaje"]
    params = {"Idmensaje": message_id, "Telefono": "34600000001"}
    early = sandbox.call("GetSMSCERTIFICADO", params)
    assert first(early)["Res"] == "-4"
    sandbox.tick(3)
    response = sandbox.call("GetSMSCERTIFICADO", params)
    assert response.headers["Content-Type"] == "application/zip"
    assert response.content.startswith(b"PK\x03\x04")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        pdf = archive.read(f"certificado_{message_id}_34600000001.pdf")
        csv = archive.read(names[-1]).decode()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert csv.splitlines()[1].startswith(f"{message_id};34600000001;14;")
    digest = hashlib.sha256(response.content).hexdigest()
    assert digest == sandbox.certificate_sha256(message_id, "34600000001")
    assert sandbox.call("GetSMSCERTIFICADO", params).content == response.content  # deterministic


def test_sandbox_certificate_by_message_and_alias(sandbox: SandboxHandle) -> None:
    """By Idmensaje alone the ZIP holds every certified recipient; the alias path works."""
    message_id = send(sandbox)["idMensaje"]
    sandbox.tick(3)
    response = sandbox.call("GetCertificadoSMSCERTIFICADO", {"Idmensaje": message_id})
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        pdfs = [n for n in archive.namelist() if n.endswith(".pdf")]
    assert len(pdfs) == 2


def test_sandbox_certificate_by_date_range_once_per_interval(sandbox: SandboxHandle) -> None:
    """A date-range download works once; a repeat within the interval is refused (-4)."""
    send(sandbox)
    sandbox.tick(3)
    params = {"Fechainicio": "2000-01-01 00:00", "Fechafin": "2099-12-31 23:59"}
    assert sandbox.call("GetSMSCERTIFICADO", params).content.startswith(b"PK")
    assert first(sandbox.call("GetSMSCERTIFICADO", params))["Res"] == "-4"
    sandbox.advance_clock(901)
    assert sandbox.call("GetSMSCERTIFICADO", params).content.startswith(b"PK")
    assert first(sandbox.call("GetSMSCERTIFICADO", {}))["Res"] == "-3"
