"""Local validation of sends: phones, sender, tax ids, ranges, dates, macros, GSM text."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import pytest

from certsms.mensatek.errors import FieldProblem
from certsms.mensatek.macros import Macro, decode_pdf_base64, macro_problems, parse_macros
from certsms.mensatek.requests import (
    CancelRequest,
    CertificateRequest,
    Recipient,
    ReportRequest,
    RescheduleRequest,
    SendRequest,
    UploadRequest,
)
from certsms.mensatek.validation import (
    count_recipients,
    future_problem,
    recipient_count_problem,
    sender_problem,
    tax_id_problem,
    validate_request,
    validate_send,
)

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
PDF_B64 = base64.b64encode(b"%PDF-1.4\n%test\n").decode()


def make_send(**changes: Any) -> SendRequest:
    """A valid Certified SMS, with ``changes`` applied."""
    base = SendRequest(
        sender="MiEmpresa",
        recipients=(Recipient("34600000000"), Recipient("34611111111", {"Nombre": "Ana"})),
        message="Tiene una notificacion (FILE:2:notifica.pdf)",
        contact="EMPRESA S.L.",
        contact_phone="900000000",
        contact_tax_id="B12345674",
    )
    return dataclasses.replace(base, **changes)


def fields(problems: list[FieldProblem]) -> set[tuple[str, str]]:
    """The (provider, python) names of a list of problems."""
    return {(p.provider_name, p.python_name) for p in problems}


@pytest.mark.parametrize(
    ("sender", "ok"),
    [
        ("MiEmpresa", True),
        ("A&B_C123456", True),
        ("+34600000000", True),
        ("346000000001234", True),
        ("", False),
        ("MiEmpresaSL12", False),
        ("Mi Empresa", False),
        ("Señor", False),
        ("+3460000000012345", False),
    ],
)
def test_sender_rule(sender: str, ok: bool) -> None:
    """Remitente: ≤ 11 of letters/digits/&/_, or ≤ 15 digits with an optional '+'."""
    assert (sender_problem(sender) is None) is ok


@pytest.mark.parametrize(
    ("tax_id", "foreign", "ok"),
    [
        ("12345678Z", False, True),
        ("12345678-z", False, True),
        ("X1234567L", False, True),
        ("B12345674", False, True),
        ("Q2826000H", False, True),
        ("12345678A", False, False),
        ("B12345670", False, False),
        ("X1234567A", False, False),
        ("DE123456789", False, False),
        ("DE123456789", True, True),
        ("B12345674", True, True),
        ("!", True, False),
        ("", False, False),
    ],
)
def test_tax_id_rule(tax_id: str, foreign: bool, ok: bool) -> None:
    """Cifcontacto: a Spanish NIF/NIE/CIF with its control character, or a flagged foreign id."""
    assert (tax_id_problem(tax_id, foreign=foreign) is None) is ok


def test_valid_send_has_no_problems() -> None:
    """The base request passes every rule."""
    assert validate_send(make_send(), now=NOW) == []


VALID_VARIANTS = [
    {"validity_days": 1, "validity_hours": 0, "validity_minutes": 0},
    {"validity_days": 20, "validity_hours": 23, "validity_minutes": 59},
    {"acceptance_days": 15, "identify": "CERTIFICADO-12345678Z"},
    {"acceptance_days": 0, "contract_type": 18},
    {"contract_type": 18, "message": "Firme (BASE64:2:" + PDF_B64 + ")"},
    {"scheduled_at": NOW + timedelta(minutes=1)},
    {"reference": "r" * 100},
    {"email_report": "avisos@empresa.es", "report": True},
    {"message_group_id": 1283876988},
    {"message": "Señor: ¿pagó 5€? ¡Hola!", "transliterate": True},
    {"message": "Hola 😀 ¿qué tal?", "unicode": True},
    {"message": "Pingüino ñandú".replace("ú", "u")},
    {"contact_tax_id": "DE123456789", "foreign_tax_id": True},
    {"recipients": (Recipient("34600000000", {"Variable_1": "x", "Nombre": "Ana"}),)},
]


@pytest.mark.parametrize("changes", VALID_VARIANTS)
def test_valid_variants_pass(changes: dict[str, object]) -> None:
    """Each boundary or optional value within the rules is accepted."""
    assert validate_send(make_send(**changes), now=NOW) == []


INVALID_CASES = [
    ({"sender": ""}, ("Remitente", "sender")),
    ({"sender": "Nombre Largo SL"}, ("Remitente", "sender")),
    ({"recipients": ()}, ("Destinatarios", "recipients")),
    ({"recipients": (Recipient("34500000000"),)}, ("Destinatarios", "recipients")),
    (
        {"recipients": (Recipient("34600000000"), Recipient("+34 600 000 000"))},
        ("Destinatarios", "recipients"),
    ),
    ({"recipients": (Recipient("34600000000", {"Apodo": "x"}),)}, ("Destinatarios", "recipients")),
    ({"message": "  "}, ("Mensaje", "message")),
    ({"message": "Está aquí"}, ("Mensaje", "message")),
    ({"message": "Hola 😀", "transliterate": True}, ("Mensaje", "message")),
    ({"message": "(FILE:2:nombredemasiadolargo.pdf)"}, ("Mensaje", "message")),
    ({"message": "(BASE64:2:bm90IGEgcGRm)"}, ("Mensaje", "message")),
    ({"message": "(BASE64:2:***)"}, ("Mensaje", "message")),
    ({"contract_type": 18, "message": "Firme (LINK:2:https://x.es)"}, ("Mensaje", "message")),
    ({"contact": " "}, ("Contacto", "contact")),
    ({"contact_phone": ""}, ("Telcontacto", "contact_phone")),
    ({"contact_phone": "llamar"}, ("Telcontacto", "contact_phone")),
    ({"contact_tax_id": "B12345670"}, ("Cifcontacto", "contact_tax_id")),
    ({"contact_tax_id": "DE123456789"}, ("Cifcontacto", "contact_tax_id")),
    ({"contract_type": -1}, ("Tipocontrato", "contract_type")),
    ({"validity_days": 0}, ("Vpd", "validity_days")),
    ({"validity_days": 21}, ("Vpd", "validity_days")),
    ({"validity_hours": 24}, ("Vph", "validity_hours")),
    ({"validity_hours": -1}, ("Vph", "validity_hours")),
    ({"validity_minutes": 60}, ("Vpm", "validity_minutes")),
    ({"acceptance_days": 16}, ("Aceptacion", "acceptance_days")),
    ({"acceptance_days": 3, "contract_type": 18}, ("Aceptacion", "acceptance_days")),
    ({"identify": "CERTIFICADO-1", "contract_type": 18}, ("Identificar", "identify")),
    ({"identify": " "}, ("Identificar", "identify")),
    ({"scheduled_at": NOW}, ("Fecha", "scheduled_at")),
    ({"scheduled_at": NOW + timedelta(seconds=59)}, ("Fecha", "scheduled_at")),
    ({"scheduled_at": datetime(2027, 1, 1)}, ("Fecha", "scheduled_at")),
    ({"reference": "r" * 101}, ("Referenciausuario", "reference")),
    ({"reference": ""}, ("Referenciausuario", "reference")),
    ({"message_group_id": 0}, ("Idmensaje", "message_group_id")),
    ({"email_report": "no-es-un-email"}, ("Emailreport", "email_report")),
    ({"email_report": "a@b.es, c@d.es"}, ("Emailreport", "email_report")),
]


@pytest.mark.parametrize(("changes", "field"), INVALID_CASES)
def test_each_rule_names_its_field(changes: dict[str, object], field: tuple[str, str]) -> None:
    """Breaking one rule yields exactly the problems of that field, named both ways."""
    problems = validate_send(make_send(**changes), now=NOW)
    assert fields(problems) == {field}


def test_every_problem_is_reported_together() -> None:
    """A request breaking many rules gets one problem per broken rule, not just the first."""
    req = make_send(
        sender="",
        recipients=(Recipient("123"), Recipient("34600000000"), Recipient("0034600000000")),
        message="Está 😀",
        contact="",
        contact_tax_id="X",
        validity_days=99,
        validity_minutes=99,
        scheduled_at=NOW - timedelta(days=1),
        email_report="x",
    )
    problems = validate_send(req, now=NOW)
    assert fields(problems) == {
        ("Remitente", "sender"),
        ("Destinatarios", "recipients"),
        ("Mensaje", "message"),
        ("Contacto", "contact"),
        ("Cifcontacto", "contact_tax_id"),
        ("Vpd", "validity_days"),
        ("Vpm", "validity_minutes"),
        ("Fecha", "scheduled_at"),
        ("Emailreport", "email_report"),
    }
    texts = [p.message for p in problems if p.python_name == "recipients"]
    assert len(texts) == 2 and "duplicates recipient #2" in texts[1]
    message_texts = " ".join(p.message for p in problems if p.python_name == "message")
    assert "'á'→'a'" in message_texts and "U+1F600" in message_texts


def test_gsm_problem_names_the_offending_characters() -> None:
    """A non-GSM character with Unicode=0 is named in the problem (with its code point)."""
    problems = validate_send(make_send(message="Pagó con “tarjeta”"), now=NOW)
    text = " ".join(p.message for p in problems)
    assert "'ó'→'o'" in text and "U+201C" in text and "U+201D" in text


def test_gsm_check_ignores_macro_content() -> None:
    """Characters inside macros (a URL, base64) are not part of the GSM text analysis."""
    req = make_send(message="Vea (LINK:2:https://ejemplo.es/ñandú?x=á)")
    assert validate_send(req, now=NOW) == []


MACRO_CASES = [
    ("Hola (FILE:2:contrato.pdf)", [("FILE", 2, "contrato.pdf")]),
    (
        "(LINK:1:www.dominio.com/a?b=1) y (IMG:0:foto.jpg)",
        [("LINK", 1, "www.dominio.com/a?b=1"), ("IMG", 0, "foto.jpg")],
    ),
    ("(link:2:http://www.dominio.com)", [("LINK", 2, "http://www.dominio.com")]),
    ("(File:Renombrado.pdf) (TICKET:3)", [("FILE", None, "Renombrado.pdf"), ("TICKET", None, "3")]),
    ("(QRCODE:ver (FILE:a.pdf))", [("FILE", None, "a.pdf")]),
    ("Nota (ojo: esto no es macro)", []),
    # an unknown protocol falls back to the lenient v5 form; its name is then refused
    ("(FILE:3:x.pdf)", [("FILE", None, "3:x.pdf")]),
]


@pytest.mark.parametrize(("text", "expected"), MACRO_CASES)
def test_parse_macros(text: str, expected: list[tuple[str, int | None, str]]) -> None:
    """v7 three-part and v5 two-part macros are found; other parentheses are text."""
    assert [(m.type, m.protocol, m.content) for m in parse_macros(text)] == expected


def test_macro_span_points_at_the_macro() -> None:
    """The span slices the macro out of the text."""
    text = "abc (FILE:2:x.pdf) def"
    (macro,) = parse_macros(text)
    assert text[macro.span[0] : macro.span[1]] == "(FILE:2:x.pdf)"


@pytest.mark.parametrize(
    ("macro", "ok"),
    [
        (Macro("BASE64", 2, PDF_B64, (0, 1)), True),
        (Macro("BASE64", 2, PDF_B64[:10] + "\n" + PDF_B64[10:], (0, 1)), True),
        (Macro("BASE64", 2, base64.b64encode(b"PK\x03\x04").decode(), (0, 1)), False),
        (Macro("BASE64", 2, "%%%", (0, 1)), False),
        (Macro("BASE64", None, PDF_B64, (0, 1)), False),
        (Macro("FILE", 2, "ABCDEFGHIJK.pdf", (0, 1)), True),  # 15 characters in all
        (Macro("FILE", 2, "ABCDEFGHIJKL.pdf", (0, 1)), False),  # 16 in all
        (Macro("FILE", 2, "mi-contrato.pdf", (0, 1)), False),
        (Macro("FILE", 2, "contrato", (0, 1)), False),
        (Macro("FILE", None, "3:x.pdf", (0, 1)), False),
        (Macro("LINK", 2, " ", (0, 1)), False),
    ],
)
def test_macro_problems(macro: Macro, ok: bool) -> None:
    """BASE64 must decode to a PDF; FILE names are ≤ 15 letters/digits plus an extension."""
    assert (macro_problems(macro) == []) is ok


def test_decode_pdf_base64_returns_the_pdf() -> None:
    """A good BASE64 macro content decodes to the PDF bytes."""
    assert decode_pdf_base64(PDF_B64).startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("contract_type", "pdf_types", "needs_pdf"),
    [(18, None, True), (5, None, False), (5, (5, 18), True), (18, (), False)],
)
def test_contract_without_pdf_only_refused_for_types_known_to_need_one(
    contract_type: int, pdf_types: tuple[int, ...] | None, needs_pdf: bool
) -> None:
    """A Contract SMS needs a PDF only when its type is in the (configurable) list."""
    req = make_send(contract_type=contract_type, message="Responda SI para aceptar")
    problems = validate_send(req, now=NOW, pdf_contract_types=pdf_types)
    assert (("Mensaje", "message") in fields(problems)) is needs_pdf


# --- boundaries and non-send requests (found unchecked by `make mutation`) -------------


@pytest.mark.parametrize(("message_id", "ok"), [(1, True), (0, False), (-5, False)])
def test_cancel_and_reschedule_need_a_positive_message_id(message_id: int, ok: bool) -> None:
    """Idmensaje 1 is the smallest valid id for cancel, reschedule and report."""
    later = NOW + timedelta(hours=1)
    for req in (
        CancelRequest(message_id),
        ReportRequest(message_id),
        RescheduleRequest(message_id, later),
    ):
        problems = validate_request(req, now=NOW)
        assert (problems == []) is ok, problems
        if not ok:
            assert fields(problems) == {("Idmensaje", "message_id")}


def test_validate_request_defaults_now_to_the_current_time() -> None:
    """Without ``now`` a reschedule is checked against the current time."""
    soon = datetime.now(UTC) + timedelta(hours=2)
    assert validate_request(RescheduleRequest(5, soon)) == []
    assert fields(validate_request(RescheduleRequest(5, datetime(2020, 1, 1, tzinfo=UTC)))) == {
        ("Fecha", "scheduled_at")
    }


@pytest.mark.parametrize(
    ("tax_id", "ok"),
    [("12345678Z", True), ("X1234567L", True), ("B12345674", True), ("12345678A", False)],
)
def test_tax_id_accepts_each_spanish_kind(tax_id: str, ok: bool) -> None:
    """NIF, NIE and CIF are each accepted on their own; a wrong control letter is not."""
    assert (tax_id_problem(tax_id, foreign=False) is None) is ok


def test_future_problem_needs_an_aware_date_with_an_offset() -> None:
    """A naive date, or one whose tzinfo gives no offset, is refused as not timezone-aware."""

    class NoOffset(tzinfo):
        def utcoffset(self, dt: datetime | None) -> None:
            return None

    assert future_problem(datetime(2030, 1, 1), now=NOW) == "must be timezone-aware"
    naive_zone = datetime(2030, 1, 1, tzinfo=NoOffset())
    assert future_problem(naive_zone, now=NOW) == "must be timezone-aware"
    assert future_problem(datetime(2030, 1, 1, tzinfo=UTC), now=NOW) is None


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        ({"Destinatarios": [{"Movil": "1"}, {"Movil": "2"}]}, 2),
        ({"recipients": ({"Movil": "1"},)}, 1),
        ({"DESTINATARIOS": '[{"Movil": "1"}, {"Movil": "2"}, {"Movil": "3"}]'}, 3),
        ({"Destinatarios": "[not json"}, 0),
        ({"Destinatarios": "34600000001; 34600000002,34600000003"}, 3),
        ({"Destinatarios": "34600000001"}, 1),
        ({"Destinatarios": {"Movil": "1"}}, 1),
        ({"Destinatarios": 5}, 0),
        ({"Mensaje": "x"}, 0),
    ],
)
def test_count_recipients_reads_every_shape(payload: dict[str, object], count: int) -> None:
    """Lists, JSON texts, separated texts and a single mapping are counted; others are 0."""
    assert count_recipients(payload) == count


def test_recipient_cap_allows_exactly_the_maximum() -> None:
    """max_recipients recipients pass; one more is refused naming the setting."""
    at_cap = {"Destinatarios": [{"Movil": str(i)} for i in range(3)]}
    assert recipient_count_problem(at_cap, max_recipients=3) is None
    problem = recipient_count_problem(at_cap, max_recipients=2)
    assert problem is not None and "CERTSMS_MAX_RECIPIENTS_PER_SEND" in problem.message
    default = {"Destinatarios": [{"Movil": str(i)} for i in range(10_000)]}
    assert recipient_count_problem(default) is None
    assert recipient_count_problem({"Destinatarios": [*default["Destinatarios"], {}]}) is not None


def test_recipient_variables_exclude_movil_and_list_the_allowed() -> None:
    """A recipient may carry the documented variables; the message lists them, not Movil."""
    problems = validate_send(
        make_send(recipients=(Recipient("34600000000", {"Apodo": "x"}),)), now=NOW
    )
    text = problems[0].message
    allowed = text.split("allowed:")[1]
    assert "Apodo" in text and "Movil" not in allowed
    assert "Sexo" in allowed and "Nombre" in allowed  # every documented variable is listed
    every = {"Sexo": "M", "Nombre": "Ana", "Apellidos": "Ruiz"}
    assert validate_send(make_send(recipients=(Recipient("34600000000", every),)), now=NOW) == []


def test_links_off_is_refused_only_with_link_macros() -> None:
    """Links=0 with a FILE macro is refused; Links=0 without macros, or Links unset, is fine."""
    assert fields(validate_send(make_send(links=False), now=NOW)) == {("Mensaje", "message")}
    assert validate_send(make_send(links=False, message="Sin adjuntos"), now=NOW) == []
    assert validate_send(make_send(links=None), now=NOW) == []


@pytest.mark.parametrize(("group", "ok"), [(None, True), (1, True), (0, False), (-1, False)])
def test_message_group_id_must_be_positive(group: int | None, ok: bool) -> None:
    """Idmensaje (a group) 1 is fine, 0 and below are refused."""
    assert (validate_send(make_send(message_group_id=group), now=NOW) == []) is ok


def test_email_report_length_limit() -> None:
    """An address of exactly 254 characters passes; 255 is refused."""
    local = "a" * (254 - len("@ejemplo.es"))
    assert validate_send(make_send(email_report=f"{local}@ejemplo.es"), now=NOW) == []
    too_long = f"{local}a@ejemplo.es"
    assert fields(validate_send(make_send(email_report=too_long), now=NOW)) == {
        ("Emailreport", "email_report")
    }


@pytest.mark.parametrize(("message_id", "ok"), [(1, True), (0, False)])
def test_certificate_message_id_must_be_positive(message_id: int, ok: bool) -> None:
    """A certificate by message needs Idmensaje ≥ 1."""
    problems = validate_request(CertificateRequest(message_id=message_id), now=NOW)
    assert (problems == []) is ok


START = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
END = datetime(2026, 4, 2, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"message_id": 5}, set()),
        ({"message_id": 5, "phone": "34600000001"}, set()),
        ({"start": START, "end": END}, set()),
        ({}, {("Idmensaje", "message_id")}),
        ({"phone": "34600000001"}, {("Telefono", "phone")}),
        ({"message_id": 5, "start": START}, {("Fechainicio", "start")}),
        ({"message_id": 5, "end": END}, {("Fechainicio", "start")}),
        ({"message_id": 5, "phone": "12"}, {("Telefono", "phone")}),
        ({"start": START}, {("Fechafin", "end")}),
        ({"end": END}, {("Fechainicio", "start")}),
        ({"start": END, "end": START}, {("Fechafin", "end")}),
        ({"start": START, "end": START}, {("Fechafin", "end")}),
        ({"start": START.replace(tzinfo=None), "end": END}, {("Fechainicio", "start")}),
        ({"start": START, "end": END.replace(tzinfo=None)}, {("Fechainicio", "start")}),
    ],
)
def test_certificate_request_modes(kwargs: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    """A certificate is asked by message (optionally one phone) or by an aware date range
    with start before end; every other combination names the field at fault."""
    assert fields(validate_request(CertificateRequest(**kwargs), now=NOW)) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": "doc.pdf", "content": b"%PDF-1.4 x"}, set()),
        ({"name": "doc.PDF", "content": b"%PDF-1.4 x", "mode": "FILES"}, set()),
        ({"name": "hoja.xlsx", "content": b"PK"}, set()),
        ({"name": "doc.pdf", "content": b"%PDF-1.4", "mode": "RAW"}, {("Tipo", "mode")}),
        ({"name": "doc.pdf", "content": b""}, {("Contenido", "content")}),
        ({"name": "doc.pdf", "content": b"not a pdf"}, {("Contenido", "content")}),
        ({"name": "doc.exe", "content": b"MZ"}, {("Nombre", "name")}),
        ({"name": "hoja.xlsx", "content": b"%PDF-1.4"}, set()),
    ],
)
def test_upload_request_rules(kwargs: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    """Upload mode, non-empty content, allowed extension, and a PDF header for .pdf."""
    problems = validate_request(UploadRequest(**kwargs), now=NOW)
    assert fields(problems) == expected
