"""The send on the wire as the v7 docs show it, read back from the strict sandbox's log."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from pydantic import SecretStr

from certsms.config.settings import Settings
from certsms.mensatek.client import MensatekClient
from certsms.mensatek.errors import InsufficientCredits
from certsms.mensatek.payloads import request_from_payload, send_request_from_payload
from tests.fixtures.sandbox import SandboxHandle, send_params

PDF_NAME = "notice.pdf"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PDF_B64 = base64.b64encode(PDF).decode()


def _upload(client: MensatekClient) -> None:
    upload = request_from_payload("upload", {"name": PDF_NAME, "content": PDF})
    client.upload(upload)  # type: ignore[arg-type]


def _params(**overrides: object) -> dict[str, object]:
    return send_params(**{"Mensaje": "Su notificacion esta disponible", **overrides})


def _sent(sandbox: SandboxHandle) -> dict[str, object]:
    sends = sandbox.requests("EnviarSMSCERTIFICADO")
    assert len(sends) == 1
    return dict(sends[0])


@pytest.mark.parametrize("macro", ["(FILE:2:notice.pdf)", "(LINK:2:https://example.com/n)"])
def test_send_with_a_macro_carries_links_and_the_document_is_delivered(
    sandbox_settings: Settings, sandbox: SandboxHandle, macro: str
) -> None:
    """A (FILE:…) or (LINK:…) macro goes with Links=1, so the provider treats it as a link."""
    with MensatekClient(sandbox_settings, sleep=lambda s: None) as client:
        _upload(client)
        req = send_request_from_payload(send_params(Mensaje=f"Su notificacion {macro}"))
        result = client.send(req)
    entry = _sent(sandbox)
    assert str(entry["params"]["Links"]) == "1"  # type: ignore[index]
    message = sandbox.message(result.message_id or 0)
    assert not message["macros_as_text"]
    if macro.startswith("(FILE"):
        assert [a["name"] for a in message["attachments"]] == [PDF_NAME]


def test_base64_macro_carries_links(sandbox_settings: Settings, sandbox: SandboxHandle) -> None:
    """An inline (BASE64:2:…) PDF goes with Links=1 and becomes the message's attachment."""
    inline = base64.b64encode(PDF).decode()
    with MensatekClient(sandbox_settings, sleep=lambda s: None) as client:
        req = send_request_from_payload(send_params(Mensaje=f"Contrato (BASE64:2:{inline})"))
        result = client.send(req)
    assert str(_sent(sandbox)["params"]["Links"]) == "1"  # type: ignore[index]
    assert len(sandbox.message(result.message_id or 0)["attachments"]) == 1


@pytest.mark.parametrize(
    ("update", "report"),
    [
        ({"callback_user": "provider"}, "1"),
        ({"callback_insecure": True}, "1"),
        ({}, "0"),
        ({"callback_user": "provider", "send_report": False}, "0"),
        ({"send_report": True}, "1"),
    ],
)
def test_report_is_sent_when_callbacks_can_be_received(
    sandbox_settings: Settings, sandbox: SandboxHandle, update: dict[str, object], report: str
) -> None:
    """Report=1 whenever a callback user (or insecure callbacks) is configured, unless
    ``send_report`` says otherwise."""
    settings = sandbox_settings.model_copy(update=update)
    with MensatekClient(settings, sleep=lambda s: None) as client:
        client.send(send_request_from_payload(_params()))
    assert str(_sent(sandbox)["params"]["Report"]) == report  # type: ignore[index]


@pytest.mark.parametrize(("encoding", "seen"), [("json_string", "json_string"), ("array", "array")])
def test_destinatarios_encoding_follows_the_setting(
    sandbox_settings: Settings, sandbox: SandboxHandle, encoding: str, seen: str
) -> None:
    """Destinatarios is a JSON-encoded string as in the docs' example (or a native array)."""
    settings = sandbox_settings.model_copy(update={"recipients_encoding": encoding})
    with MensatekClient(settings, sleep=lambda s: None) as client:
        result = client.send(send_request_from_payload(_params()))
    assert _sent(sandbox)["destinatarios_format"] == seen
    assert result.recipients == 2


@pytest.mark.parametrize("res", [0, -2, -7])
def test_lack_of_credit_is_read_from_creditos_necesarios(
    sandbox_settings: Settings, sandbox: SandboxHandle, res: int
) -> None:
    """Whatever Res the provider answers, CreditosNecesarios means lack of credit."""
    sandbox.configure(no_credit_res=res)
    sandbox.set_credits(5)
    with (
        MensatekClient(sandbox_settings, sleep=lambda s: None) as client,
        pytest.raises(InsufficientCredits) as info,
    ):
        client.send(send_request_from_payload(_params()))
    assert info.value.credits_needed == 18 and info.value.credits_available == 5
    assert info.value.res == res


def test_bare_pdf_certificate_is_stored_as_a_zip_of_that_pdf(
    sandbox_settings: Settings, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """A certificate answered as a bare PDF is kept byte for byte as the one member of a ZIP."""
    sandbox.configure(certificate_phone_format="pdf")
    with MensatekClient(sandbox_settings, sleep=lambda s: None) as client:
        sent = client.send(send_request_from_payload(_params()))
        sandbox.tick(10)
        req = request_from_payload(
            "certificate", {"Idmensaje": sent.message_id, "Telefono": "34600000001"}
        )
        result = client.certificate(req, tmp_path / "cert.zip")  # type: ignore[arg-type]
    assert sandbox.certificate(sent.message_id or 0, "34600000001")["content_type"] == (
        "application/pdf"
    )
    with zipfile.ZipFile(result.path) as archive:
        assert archive.testzip() is None
        (member,) = archive.namelist()
        pdf = archive.read(member)
    assert member == f"certificado_{sent.message_id}_34600000001.pdf"
    expected = sandbox.certificate_sha256(sent.message_id or 0, "34600000001")
    assert hashlib.sha256(pdf).hexdigest() == expected
    assert result.members == (member,)


def test_the_strict_sandbox_accepts_what_the_client_sends(
    sandbox_settings: Settings, sandbox: SandboxHandle
) -> None:
    """No request of the client is refused by the strict sandbox (the suite's baseline)."""
    settings = sandbox_settings.model_copy(
        update={"callback_user": "provider", "callback_password": SecretStr("pw")}
    )
    with MensatekClient(settings, sleep=lambda s: None) as client:
        _upload(client)
        client.send(send_request_from_payload(send_params(Mensaje="Hola (FILE:2:notice.pdf)")))
        client.credits()
        client.list_files()
    assert sandbox.state()["config"]["strict"] is True
    assert [r for r in sandbox.requests() if r["outcome"] == "strict_refused"] == []


def test_library_names_the_provider_returns_are_checked(
    sandbox_settings: Settings, sandbox: SandboxHandle
) -> None:
    """A name the (lenient) provider gives back that breaks the 15-character rule is flagged."""
    sandbox.configure(strict=False)
    with MensatekClient(sandbox_settings, sleep=lambda s: None) as client:
        upload = client.upload(
            request_from_payload("upload", {"name": "ok.pdf", "content": PDF})  # type: ignore[arg-type]
        )
        assert upload.name == "ok.pdf" and upload.name_problem is None
        sandbox.call(
            "CargarFichero",
            {"Nombre": "contratodelcliente2026.pdf", "Tipo": "BASE64", "Contenido": PDF_B64},
        )
        files = {entry.name: entry.name_problem for entry in client.list_files().files}
    assert files["ok.pdf"] is None
    assert [name for name, problem in files.items() if problem] != []


def test_contract_type_without_a_pdf_is_sent_when_it_needs_none(
    sandbox_settings: Settings, sandbox: SandboxHandle
) -> None:
    """A basic Contract SMS (a type not known to need a PDF) goes out without one."""
    with MensatekClient(sandbox_settings, sleep=lambda s: None) as client:
        req = send_request_from_payload(
            _params(Mensaje="Responda SI para aceptar el contrato", Tipocontrato="5")
        )
        assert client.send(req).message_id
