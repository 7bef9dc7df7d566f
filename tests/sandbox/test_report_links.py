"""Report=1 gates status callbacks; Links=1 makes macros macros (the docs, not our client)."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import requests

from tests.fixtures.sandbox import CallbackReceiver, SandboxHandle, send_params

PDF = b"%PDF-1.4\n% sandbox links test " + b"x" * 120  # 200 base64 characters
PDF64 = base64.b64encode(PDF).decode()
ONE = [{"Movil": "34600000001"}]


def _send(sandbox: SandboxHandle, **overrides: Any) -> dict[str, Any]:
    answer = sandbox.call("EnviarSMSCERTIFICADO", send_params(**overrides)).json()[0]
    assert int(answer["Res"]) > 0, answer
    return dict(answer)


def _upload(sandbox: SandboxHandle, name: str = "notifica.pdf") -> None:
    body = {"Nombre": name, "Tipo": "BASE64", "Contenido": PDF64}
    assert sandbox.call("CargarFichero", body).json()[0]["Res"] == "1"


def _certificate_pdf(sandbox: SandboxHandle, message_id: str) -> bytes:
    response = sandbox.call(
        "GetSMSCERTIFICADO", {"Idmensaje": message_id, "Telefono": ONE[0]["Movil"]}
    )
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return archive.read(f"certificado_{message_id}_34600000001.pdf")


def test_sandbox_report_gates_status_callbacks(
    sandbox: SandboxHandle, callback_receiver: CallbackReceiver
) -> None:
    """With report_gates_callbacks only sends with Report=1 (any name case, int or string) get
    status callbacks; the others are logged as not_requested and the state shows the flag."""
    sandbox.configure(report_gates_callbacks=True, callback_url=callback_receiver.url)
    wanted_int = _send(sandbox, Destinatarios=[{"Movil": "34600000001"}], Report=1)["idMensaje"]
    wanted_str = _send(sandbox, Destinatarios=[{"Movil": "34600000002"}], REPORT="1")["idMensaje"]
    form = {**send_params(Destinatarios='[{"Movil":"34600000003"}]'), "report": "1", "Resp": "JSON"}
    wanted_form = sandbox.raw("EnviarSMSCERTIFICADO", data=form).json()[0]["idMensaje"]
    zero = _send(sandbox, Destinatarios=[{"Movil": "34600000004"}], Report="0")["idMensaje"]
    absent = _send(sandbox, Destinatarios=[{"Movil": "34600000005"}])["idMensaje"]
    sandbox.tick(3)
    deliveries = sandbox.wait_callbacks()
    received = {(b["idMensaje"], b["Resultado"]) for b in callback_receiver.bodies()}
    assert received == {
        (m, r) for m in (wanted_int, wanted_str, wanted_form) for r in ["10", "11", "14"]
    }
    held = [d for d in deliveries if d["outcome"] == "not_requested"]
    assert sorted({d["payload"]["idMensaje"] for d in held}) == sorted([zero, absent])
    assert len(held) == 6 and all(d["attempts"] == 0 for d in held)
    for message_id, report in (
        (wanted_str, True),
        (wanted_form, True),
        (zero, False),
        (absent, False),
    ):
        message = sandbox.message(message_id)
        assert message["report"] is report and message["recipients"][0]["report"] is report


def test_sandbox_report_is_ignored_while_the_gate_is_off(
    sandbox: SandboxHandle, callback_receiver: CallbackReceiver
) -> None:
    """With the gate off (today's default for our client) Report=0 still gets every callback."""
    sandbox.configure(report_gates_callbacks=False, callback_url=callback_receiver.url)
    message_id = _send(sandbox, Destinatarios=ONE, Report=0)["idMensaje"]
    sandbox.tick(3)
    sandbox.wait_callbacks()
    assert sorted(int(b["Resultado"]) for b in callback_receiver.bodies()) == [10, 11, 14]
    assert sandbox.message(message_id)["report"] is False


def test_sandbox_report_is_per_send_within_a_group(
    sandbox: SandboxHandle, callback_receiver: CallbackReceiver
) -> None:
    """A send joining an Idmensaje group with Report=1 gets callbacks for its recipients only."""
    sandbox.configure(report_gates_callbacks=True, callback_url=callback_receiver.url)
    message_id = _send(sandbox, Destinatarios=ONE, Report=0)["idMensaje"]
    _send(sandbox, Idmensaje=message_id, Destinatarios=[{"Movil": "34600000002"}], Report=1)
    sandbox.tick()
    sandbox.wait_callbacks()
    assert [b["Movil"] for b in callback_receiver.bodies()] == ["34600000002"]
    flags = {r["phone"]: r["report"] for r in sandbox.message(message_id)["recipients"]}
    assert flags == {"34600000001": False, "34600000002": True}


def test_sandbox_macros_without_links_are_plain_text(sandbox: SandboxHandle) -> None:
    """With links_need_flag and no Links=1: no attachment, no inline PDF in the library, the
    text costs its characters, no attachment event, no document in the certificate."""
    sandbox.configure(links_need_flag=True)
    _upload(sandbox)
    text = f"Doc (FILE:2:notifica.pdf) y (BASE64:2:{PDF64}) ver (LINK:2:http://a.es) (IMG:2:f.jpg)"
    answer = _send(sandbox, Destinatarios=ONE, Mensaje=text)
    assert len(text) > 160 and answer["Mensajes"] == "2" and answer["CreditosUsados"] == "18"
    message = sandbox.message(answer["idMensaje"])
    assert message["links"] is False and message["macros_as_text"] is True
    assert message["attachments"] == []
    assert [m["type"] for m in message["macros"]] == ["FILE", "BASE64", "LINK", "IMG"]
    assert PDF64 not in str(message["macros"])  # base64 shown as a digest only
    assert [f["name"] for f in sandbox.state()["accounts"]["demo"]["files"]] == ["notifica.pdf"]
    refused = requests.post(
        sandbox.admin_url + "event", json={"idmensaje": answer["idMensaje"]}, timeout=10
    )
    assert refused.status_code == 409 and "Links=1" in refused.json()["error"]
    sandbox.tick(3)
    assert b"Documento adjunto" not in _certificate_pdf(sandbox, answer["idMensaje"])


def test_sandbox_macros_with_links_register_attachments(
    sandbox: SandboxHandle, callback_receiver: CallbackReceiver
) -> None:
    """With Links=1 the FILE and BASE64 documents are attachments: the inline PDF sits in the
    library until the message is final, events name the file, the certificate lists both."""
    sandbox.configure(links_need_flag=True, callback_url=callback_receiver.url)
    _upload(sandbox)
    text = f"Doc (FILE:2:notifica.pdf) y (BASE64:2:{PDF64}) ver (LINK:2:http://a.es)"
    answer = _send(sandbox, Destinatarios=ONE, Mensaje=text, Links="1")
    message_id = answer["idMensaje"]
    assert answer["Mensajes"] == "1"  # each macro is a short link
    message = sandbox.message(message_id)
    assert message["links"] is True and message["macros_as_text"] is False
    inline = f"base64_{message_id}_1.pdf"
    assert [(a["type"], a["name"], a["size_bytes"]) for a in message["attachments"]] == [
        ("FILE", "notifica.pdf", len(PDF)),
        ("BASE64", inline, len(PDF)),
    ]
    listing = sandbox.call("ListarFicheros").json()[0]["Ficheros"]
    assert f"'Nombre':'{inline}'" in listing
    sandbox.emit_event(message_id)
    sandbox.wait_callbacks()
    assert callback_receiver.bodies("EVENTOSSMSCERTIFICADO")[0]["Fichero"] == "notifica.pdf"
    sandbox.tick(3)
    pdf = _certificate_pdf(sandbox, message_id)
    assert b"Documento adjunto FILE: notifica.pdf sha256=" in pdf
    assert f"Documento adjunto BASE64: {inline} sha256=".encode() in pdf
    names = [f["name"] for f in sandbox.state()["accounts"]["demo"]["files"]]
    assert names == ["notifica.pdf"]  # the inline PDF left with the final status


def test_sandbox_links_flag_decides_what_is_checked(sandbox: SandboxHandle) -> None:
    """Without Links=1 a missing library file and a contract's PDF macro are just text: the
    first is sent as is, the second lacks its PDF (Res -3); with Links=1 it is the reverse."""
    sandbox.configure(links_need_flag=True)
    missing = {"Destinatarios": ONE, "Mensaje": "ver (FILE:2:nohay.pdf)"}
    assert _send(sandbox, **missing)["Res"] == "1"
    refused = sandbox.call("EnviarSMSCERTIFICADO", send_params(**missing, Links=1)).json()[0]
    assert refused["Res"] == "-3" and "nohay.pdf" in refused["Error"]
    contract = {"Destinatarios": ONE, "Tipocontrato": 18, "Mensaje": f"Firme (BASE64:2:{PDF64})"}
    as_text = sandbox.call("EnviarSMSCERTIFICADO", send_params(**contract)).json()[0]
    assert as_text["Res"] == "-3" and "Links=1" in as_text["Error"]
    assert _send(sandbox, **contract, Links=1)["Res"] == "1"


def test_sandbox_macros_are_interpreted_while_the_flag_is_off(sandbox: SandboxHandle) -> None:
    """With links_need_flag off (today's default for our client) macros work without Links."""
    sandbox.configure(links_need_flag=False)
    _upload(sandbox)
    message = sandbox.message(_send(sandbox, Mensaje="(FILE:2:notifica.pdf)")["idMensaje"])
    assert message["links"] is False and message["macros_as_text"] is False
    assert [a["name"] for a in message["attachments"]] == ["notifica.pdf"]


def test_sandbox_inline_pdfs_are_outside_the_library_quota(sandbox: SandboxHandle) -> None:
    """An inline (BASE64:…) PDF is listed in the library but does not count toward its quota."""
    sandbox.configure(library_max_files=1)
    _send(sandbox, Mensaje=f"(BASE64:2:{PDF64})", Links=1)
    _upload(sandbox, "propio.pdf")
    files = sandbox.state()["accounts"]["demo"]["files"]
    assert sorted((f["name"].split("_")[0], f["inline"]) for f in files) == [
        ("base64", True),
        ("propio.pdf", False),
    ]
