"""Local validation of sends: phones, sender, tax ids, ranges, dates, macros, GSM text."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mensatek.errors import FieldProblem
from mensatek.macros import Macro, decode_pdf_base64, macro_problems, parse_macros
from mensatek.requests import Recipient, SendRequest
from mensatek.validation import sender_problem, tax_id_problem, validate_send

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
        (Macro("FILE", 2, "ABCDEFGHIJKLMNO.pdf", (0, 1)), True),
        (Macro("FILE", 2, "ABCDEFGHIJKLMNOP.pdf", (0, 1)), False),
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
