"""Request models: payload parsing (any spelling, any shape), to_params, fingerprints."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from certsms.mensatek.dates import MADRID
from certsms.mensatek.errors import InvalidRequest
from certsms.mensatek.payloads import request_from_payload, send_request_from_payload
from certsms.mensatek.requests import (
    KINDS,
    CancelRequest,
    CertificateRequest,
    DeleteFileRequest,
    Recipient,
    ReportRequest,
    RescheduleRequest,
    SendRequest,
    UploadRequest,
)
from certsms.mensatek.validation import validate_request

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n%certsms test\n"
PDF_B64 = base64.b64encode(PDF).decode()
BASE = {
    "Remitente": "MiEmpresa",
    "Mensaje": "Tiene una notificacion (FILE:2:notifica.pdf)",
    "Contacto": "EMPRESA S.L.",
    "Telcontacto": "900000000",
    "Cifcontacto": "B12345674",
}
EXPECTED = SendRequest(
    sender="MiEmpresa",
    recipients=(Recipient("34600000000"), Recipient("34611111111")),
    message="Tiene una notificacion (FILE:2:notifica.pdf)",
    contact="EMPRESA S.L.",
    contact_phone="900000000",
    contact_tax_id="B12345674",
    scheduled_at=datetime(2026, 5, 2, 10, 0, tzinfo=MADRID),
    validity_days=3,
    report=True,
)
PHONES_VARIANTS = [
    [{"Movil": "34600000000"}, {"Movil": "34611111111"}],
    [{"movil": 34600000000}, {"MOVIL": "+34 611 111 111"}],
    ["34600000000", "0034611111111"],
    '[{"Movil":"34600000000"},{"Movil":"34611111111"}]',
    "34600000000;34611111111",
    "34600000000, +34611111111",
]
FECHA_VARIANTS = [
    "2026-05-02 10:00",
    "2026-05-02T10:00:00+02:00",
    "2026-05-02T08:00:00Z",
    datetime(2026, 5, 2, 8, 0, tzinfo=UTC),
]


def assert_problem(exc: pytest.ExceptionInfo[InvalidRequest], provider: str, python: str) -> None:
    """The raised InvalidRequest names the field both ways."""
    assert (provider, python) in {(p.provider_name, p.python_name) for p in exc.value.problems}


@pytest.mark.parametrize("phones", PHONES_VARIANTS)
@pytest.mark.parametrize("fecha", FECHA_VARIANTS)
def test_payload_variants_parse_to_the_same_request(phones: object, fecha: object) -> None:
    """Every accepted shape of Destinatarios and Fecha yields the same SendRequest."""
    payload = {**BASE, "Destinatarios": phones, "Fecha": fecha, "Vpd": "3", "Report": "true"}
    assert send_request_from_payload(payload, now=NOW) == EXPECTED


def test_key_spellings_and_python_names_parse_the_same() -> None:
    """Provider names in any case, aliases and Python names are all accepted."""
    upper = {k.upper(): v for k, v in BASE.items()}
    python = {
        "sender": "MiEmpresa",
        "message": BASE["Mensaje"],
        "contact": "EMPRESA S.L.",
        "contact_phone": 900000000,
        "contact_tax_id": "B12345674",
        "recipients": ["34600000000", "34611111111"],
        "scheduled_at": "2026-05-02T10:00:00+02:00",
        "validity_days": 3,
        "report": 1,
    }
    rest = {"DESTINATARIOS": "34600000000;34611111111", "fecha": "2026-05-02 10:00"}
    assert send_request_from_payload({**upper, **rest, "VPD": 3, "report": True}, now=NOW) == (
        EXPECTED
    )
    assert send_request_from_payload(python, now=NOW) == EXPECTED
    aliased = {**BASE, "Destinatarios": "34600000000", "TipoContrato": "0", "Referencia": "R-1"}
    assert send_request_from_payload(aliased, now=NOW).reference == "R-1"


def test_to_params_uses_provider_names_and_formats() -> None:
    """to_params gives provider names, recipients as dicts, Madrid Fecha, 0/1 flags, no Resp."""
    req = SendRequest(
        sender="MiEmpresa",
        recipients=(Recipient("+34 600 000 000", {"nombre": "Ana", "Variable_1": "7"}),),
        message="Pagó (FILE:2:notifica.pdf)",
        contact="EMPRESA S.L.",
        contact_phone="900000000",
        contact_tax_id="b-12345674",
        scheduled_at=datetime(2026, 7, 1, 8, 5, 30, tzinfo=UTC),
        reference="R-1",
        validity_days=2,
        validity_hours=0,
        acceptance_days=5,
        identify="CERTIFICADO-12345678Z",
        email_report="a@b.es",
        message_group_id=77,
        transliterate=True,
    )
    assert req.to_params() == {
        "Remitente": "MiEmpresa",
        "Destinatarios": [{"Movil": "34600000000", "Nombre": "Ana", "Variable_1": "7"}],
        "Mensaje": "Pago (FILE:2:notifica.pdf)",
        "Tipocontrato": 0,
        "Contacto": "EMPRESA S.L.",
        "Telcontacto": "900000000",
        "Cifcontacto": "B12345674",
        "Report": 0,
        "Unicode": 0,
        "Fixutf8": 0,
        "Fecha": "2026-07-01 10:05",
        "Referenciausuario": "R-1",
        "Idmensaje": 77,
        "Vpd": 2,
        "Vph": 0,
        "Identificar": "CERTIFICADO-12345678Z",
        "Aceptacion": 5,
        "Emailreport": "a@b.es",
        "Links": 1,
    }
    assert "Resp" not in req.to_params()


def test_transliteration_leaves_macros_untouched() -> None:
    """Only the text outside macros is transliterated; with Unicode nothing is."""
    req = EXPECTED.__class__(**{**EXPECTED.__dict__, "message": "Está (LINK:2:x.es/á)"})
    assert req.wire_message == "Está (LINK:2:x.es/á)"
    converted = SendRequest(**{**req.__dict__, "transliterate": True})
    assert converted.wire_message == "Esta (LINK:2:x.es/á)"
    assert SendRequest(**{**converted.__dict__, "unicode": True}).wire_message == req.message


def test_fingerprint_is_canonical_and_hides_inline_pdfs() -> None:
    """Recipient order does not change the fingerprint; a BASE64 PDF appears as its sha256."""
    message = f"Firme (BASE64:2:{PDF_B64})"
    one = SendRequest(**{**EXPECTED.__dict__, "message": message})
    two = SendRequest(**{**one.__dict__, "recipients": tuple(reversed(one.recipients))})
    assert one.fingerprint_params() == two.fingerprint_params()
    fingerprint = one.fingerprint_params()
    assert list(fingerprint) == sorted(fingerprint)
    digest = hashlib.sha256(PDF_B64.encode()).hexdigest()
    assert fingerprint["Mensaje"] == f"Firme (BASE64:2:sha256:{digest})"
    assert PDF_B64 not in json.dumps(fingerprint)


def test_upload_params_and_fingerprint() -> None:
    """Uploads send base64 Contenido and Autoborrado=Si; the fingerprint holds only a sha256."""
    req = UploadRequest(name="contrato.pdf", content=PDF, auto_delete=True)
    assert req.to_params() == {
        "Nombre": "contrato.pdf",
        "Tipo": "BASE64",
        "Contenido": PDF_B64,
        "Autoborrado": "Si",
    }
    assert req.fingerprint_params()["Contenido"] == "sha256:" + hashlib.sha256(PDF).hexdigest()
    files = UploadRequest(name="contrato.pdf", content=PDF, mode="FILES")
    assert files.to_params() == {"Nombre": "contrato.pdf", "Tipo": "FILES"}


KIND_CASES = [
    ("cancel", {"Idmensaje": "1283876988"}, CancelRequest(1283876988)),
    ("report", {"idMensaje": 5}, ReportRequest(5)),
    (
        "reschedule",
        {"Idmensaje": 5, "Fecha": "2026-12-03 11:15"},
        RescheduleRequest(5, datetime(2026, 12, 3, 11, 15, tzinfo=MADRID)),
    ),
    (
        "certificate",
        {"Idmensaje": "5", "Telefono": "+34600000000"},
        CertificateRequest(message_id=5, phone="34600000000"),
    ),
    ("certificate", {"message_id": 5}, CertificateRequest(message_id=5)),
    (
        "certificate",
        {"Fechainicio": "2026-01-01 00:00", "Fechafin": "2026-02-01T00:00:00+01:00"},
        CertificateRequest(
            start=datetime(2026, 1, 1, tzinfo=MADRID), end=datetime(2026, 2, 1, tzinfo=MADRID)
        ),
    ),
    (
        "upload",
        {"Nombre": "contrato.pdf", "Contenido": PDF_B64, "Tipo": "base64", "Autoborrado": "Si"},
        UploadRequest("contrato.pdf", PDF, "BASE64", True),
    ),
    ("delete_file", {"Nombre": "contrato.pdf"}, DeleteFileRequest("contrato.pdf")),
    ("credits", {}, None),
    ("list_files", None, None),
]


@pytest.mark.parametrize(("kind", "payload", "expected"), KIND_CASES)
def test_request_from_payload_builds_each_kind(
    kind: str, payload: object, expected: object
) -> None:
    """Each kind's payload becomes its model (credits and list_files give None)."""
    assert request_from_payload(kind, payload, now=NOW) == expected  # type: ignore[arg-type]


def test_certificate_modes() -> None:
    """The mode follows the fields given, and to_params sends only that mode's fields."""
    assert CertificateRequest(message_id=5, phone="34600000000").mode == "message_phone"
    assert CertificateRequest(message_id=5).to_params() == {"Idmensaje": 5}
    ranged = CertificateRequest(
        start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert ranged.mode == "date_range"
    assert ranged.to_params() == {"Fechainicio": "2026-01-01 01:00", "Fechafin": "2026-01-02 01:00"}


ROUND_TRIPS = [
    SendRequest(**{**EXPECTED.__dict__, "foreign_tax_id": True, "transliterate": True}),
    SendRequest(
        **{
            **EXPECTED.__dict__,
            "recipients": (Recipient("34600000000", {"Nombre": "Ana", "Variable_2": "x"}),),
            "scheduled_at": datetime(2026, 10, 25, 2, 30, tzinfo=timezone(timedelta(hours=1))),
        }
    ),
    CancelRequest(9),
    ReportRequest(9),
    RescheduleRequest(9, datetime(2026, 6, 1, 9, 0, tzinfo=UTC)),
    CertificateRequest(message_id=9, phone="34600000000"),
    CertificateRequest(
        start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 2, 1, tzinfo=UTC)
    ),
    UploadRequest("contrato.pdf", PDF, "FILES", True),
    DeleteFileRequest("contrato.pdf"),
]
_KIND_OF = {
    SendRequest: "send",
    CancelRequest: "cancel",
    ReportRequest: "report",
    RescheduleRequest: "reschedule",
    CertificateRequest: "certificate",
    UploadRequest: "upload",
    DeleteFileRequest: "delete_file",
}


@pytest.mark.parametrize("req", ROUND_TRIPS)
def test_to_payload_round_trips_through_json(req: object) -> None:
    """to_payload → JSON → request_from_payload gives back an equal request."""
    payload = json.loads(json.dumps(req.to_payload()))  # type: ignore[attr-defined]
    assert request_from_payload(_KIND_OF[type(req)], payload, now=NOW) == req


def test_to_params_round_trips_for_send() -> None:
    """The provider-name parameters of a send parse back to the same request."""
    assert send_request_from_payload(EXPECTED.to_params(), now=NOW) == EXPECTED


BAD_PAYLOADS = [
    ({"Telefono2": 1}, "Telefono2", "Telefono2"),
    ({"Vpd": "tres"}, "Vpd", "validity_days"),
    ({"Vpd": True}, "Vpd", "validity_days"),
    ({"Report": "maybe"}, "Report", "report"),
    ({"Mensaje": ["x"]}, "Mensaje", "message"),
    ({"Fecha": "2026-05-02T10:00"}, "Fecha", "scheduled_at"),
    ({"Fecha": "mañana"}, "Fecha", "scheduled_at"),
    ({"Fecha": datetime(2026, 5, 2, 10, 0)}, "Fecha", "scheduled_at"),
    ({"Fecha": "2026-04-30 10:00"}, "Fecha", "scheduled_at"),
    ({"Destinatarios": "[{bad json"}, "Destinatarios", "recipients"),
    ({"Destinatarios": [{"Nombre": "Ana"}]}, "Destinatarios", "recipients"),
    ({"Destinatarios": [{"Movil": "34600000000", "Nombre": ["x"]}]}, "Destinatarios", "recipients"),
    ({"Destinatarios": 34600000000.5}, "Destinatarios", "recipients"),
    ({"Referencia": "a", "Referenciausuario": "b"}, "Referenciausuario", "reference"),
    ({"Remitente": None}, "Remitente", "sender"),
]


@pytest.mark.parametrize(("changes", "provider", "python"), BAD_PAYLOADS)
def test_bad_payload_values_name_the_field(
    changes: dict[str, object], provider: str, python: str
) -> None:
    """Unknown keys, wrong types and bad dates are problems naming the field."""
    payload = {**BASE, "Destinatarios": "34600000000", **changes}
    with pytest.raises(InvalidRequest) as exc:
        send_request_from_payload(payload, now=NOW)
    assert_problem(exc, provider, python)
    assert exc.value.function == "send"


def test_payload_reports_every_problem_once() -> None:
    """Reading and validation problems come together, one per broken field."""
    payload = {"Remitente": "Nombre Demasiado Largo", "Vpd": "x", "Vph": 40, "Otro": 1}
    with pytest.raises(InvalidRequest) as exc:
        send_request_from_payload(payload, now=NOW)
    names = [p.python_name for p in exc.value.problems]
    assert set(names) == {
        "Otro",
        "sender",
        "recipients",
        "message",
        "contact",
        "contact_phone",
        "contact_tax_id",
        "validity_days",
        "validity_hours",
    }
    assert len(names) == len(set(names))
    assert exc.value.problems[0].as_dict().keys() == {"field", "python_name", "error"}


BAD_KIND_CASES = [
    ("cancel", {}, "Idmensaje", "message_id"),
    ("cancel", {"Idmensaje": "-3"}, "Idmensaje", "message_id"),
    ("report", {"Idmensaje": "x"}, "Idmensaje", "message_id"),
    ("reschedule", {"Idmensaje": 5, "Fecha": "2026-04-30 10:00"}, "Fecha", "scheduled_at"),
    ("reschedule", {"Idmensaje": 5}, "Fecha", "scheduled_at"),
    ("certificate", {}, "Idmensaje", "message_id"),
    ("certificate", {"Telefono": "34600000000"}, "Telefono", "phone"),
    ("certificate", {"Idmensaje": 5, "Telefono": "123"}, "Telefono", "phone"),
    ("certificate", {"Idmensaje": 5, "Fechainicio": "2026-01-01 00:00"}, "Fechainicio", "start"),
    ("certificate", {"Fechainicio": "2026-01-01 00:00"}, "Fechafin", "end"),
    (
        "certificate",
        {"Fechainicio": "2026-02-01 00:00", "Fechafin": "2026-01-01 00:00"},
        "Fechafin",
        "end",
    ),
    ("upload", {"Nombre": "contrato.pdf"}, "Contenido", "content"),
    ("upload", {"Nombre": "contrato.pdf", "Contenido": "%%%"}, "Contenido", "content"),
    ("upload", {"Nombre": "contrato.pdf", "Contenido": "UEsDBA=="}, "Contenido", "content"),
    ("upload", {"Nombre": "mi contrato.pdf", "Contenido": PDF_B64}, "Nombre", "name"),
    ("upload", {"Nombre": "foto.exe", "Contenido": PDF_B64}, "Nombre", "name"),
    ("upload", {"Nombre": "a.pdf", "Contenido": PDF_B64, "Tipo": "URL"}, "Tipo", "mode"),
    ("delete_file", {"Nombre": "../etc/passwd"}, "Nombre", "name"),
    ("credits", {"Resp": "JSON", "Cred": 1}, "Cred", "Cred"),
    ("list_files", {"x": 1}, "x", "x"),
    ("nonsense", {}, "kind", "kind"),
]


@pytest.mark.parametrize(("kind", "payload", "provider", "python"), BAD_KIND_CASES)
def test_bad_payloads_of_other_kinds(
    kind: str, payload: dict[str, object], provider: str, python: str
) -> None:
    """Every kind refuses bad input with a problem naming the field."""
    with pytest.raises(InvalidRequest) as exc:
        request_from_payload(kind, payload, now=NOW)
    assert_problem(exc, provider, python)


def test_non_object_payload_is_refused() -> None:
    """A payload that is not an object is one clear problem."""
    with pytest.raises(InvalidRequest) as exc:
        request_from_payload("cancel", ["5"], now=NOW)  # type: ignore[arg-type]
    assert_problem(exc, "payload", "payload")


def test_validate_request_validates_built_models() -> None:
    """Models built in code are validated the same way as payloads."""
    assert validate_request(EXPECTED, now=NOW) == []
    assert validate_request(CancelRequest(0), now=NOW)[0].provider_name == "Idmensaje"
    assert set(KINDS) >= set(_KIND_OF.values()) | {"credits", "list_files"}


DOCS_EXAMPLE: dict[str, object] = {
    "Remitente": "MIEMPRESA",
    "Destinatarios": '[{"Movil":"34600000000","Variable_1":"Pedro"},'
    '{"Movil":"34600000001","Variable_1":"Ana"}]',
    "Mensaje": "To the attention of Ana, We send you this notification (FILE:2:notifica.pdf)",
    "Tipocontrato": "0",
    "Fecha": "2026-10-01 15:10",
    "Referenciausuario": "Your reference",
    "Report": "0",
    "Idmensaje": "1765987",
    "Contacto": "EMPRESA S.L.",
    "Telcontacto": "900000000",
    "Cifcontacto": "B12345674",
    "Vpd": "3",
    "Vph": "0",
    "Vpm": "0",
    "Identificar": "CERTIFICADO-12345678Z",
    "Aceptacion": "10",
    "Unicode": "0",
    "Fixutf8": "0",
    "Emailreport": "a@b.es",
    "Resp": "JSON",
}


def test_payload_copied_from_the_docs_example_is_accepted() -> None:
    """The v7 docs' send example (strings everywhere, Destinatarios a JSON string, Resp,
    keys in any case) loads; Resp is ignored and a macro gets Links=1."""
    lowered = {key.lower(): value for key, value in DOCS_EXAMPLE.items()}
    for payload in (DOCS_EXAMPLE, lowered):
        req = send_request_from_payload(payload, now=NOW)
        assert [r.phone for r in req.recipients] == ["34600000000", "34600000001"]
        assert req.validity_days == 3 and req.acceptance_days == 10
        params = req.to_params()
        assert params["Links"] == 1 and "Resp" not in params
    assert request_from_payload("credits", {"Resp": "JSON"}, now=NOW) is None


@pytest.mark.parametrize(
    ("message", "links", "expected"),
    [
        ("Hola (FILE:2:notifica.pdf)", None, 1),
        ("Hola (LINK:2:https://x.es)", None, 1),
        ("Hola (IMG:2:foto.jpg)", None, 1),
        ("Hola", None, None),
        ("Hola", "1", 1),
        ("Hola (LINK:2:https://x.es)", "true", 1),
    ],
)
def test_links_is_sent_with_macros_or_when_asked(
    message: str, links: str | None, expected: int | None
) -> None:
    """Links=1 whenever Mensaje holds a FILE/BASE64/LINK/IMG macro, or the payload asks."""
    payload = {**BASE, "Destinatarios": "34600000000", "Mensaje": message}
    payload |= {"links": links} if links else {}
    assert send_request_from_payload(payload, now=NOW).to_params().get("Links") == expected


def test_links_zero_with_a_macro_is_refused_naming_the_message() -> None:
    """Links=0 with a document macro would send it as plain text: refused on Mensaje."""
    payload = {**BASE, "Destinatarios": "34600000000", "Mensaje": "Hola (LINK:2:https://x.es)"}
    payload["Links"] = "0"
    with pytest.raises(InvalidRequest) as exc:
        send_request_from_payload(payload, now=NOW)
    assert any(p.provider_name == "Mensaje" and "Links=0" in p.message for p in exc.value.problems)
