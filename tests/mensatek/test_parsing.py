"""The answer parser: a table of documented quirks, and property tests over every encoding."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsms.mensatek.dates import parse_provider_datetime
from certsms.mensatek.errors import ProviderUnavailable
from certsms.mensatek.parsing import Answer, parse_answer, to_float, to_int
from certsms.mensatek.results import (
    CancelResult,
    FileEntry,
    ListFilesResult,
    ReportEntry,
    ReportResult,
    SendResult,
)

MADRID = ZoneInfo("Europe/Madrid")

# --- table: documented examples and quirks ------------------------------------------------

SEED_REPORT = (
    '[{"Res":"1","Destinatarios":"1","Cred":"12000","Informe":"[{\'Fecha\':\'2021-09-04 '
    "19:37:21','Tiempo':3,'Telefono':34601234567,'Resultado':14,"
    "'Estado':'Entregado y Certificado'}]\"}]"
)


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ('[{"Res":"1","Msgid":"12000"}]', "msgid", "12000"),
        ('{"Res":1,"Msgid":27184020,"Cred":19808.45}', "CRED", 19808.45),
        ('[{"Res":"1","IDMENSAJE":"12000","CRED":"12000","CREDR":"9"}]', "idMensaje", "12000"),
        ('{"Resp":"1","Msgid":"345678923","Cred":"12345.67","CredR":"200"}', "Res", "1"),
        ('\ufeff\r\n  [{"Res":"-3"}]  \n', "res", "-3"),
        ('PHP Notice: x\n[{"Res":"1"}]\n<!-- 0.1s -->', "Res", "1"),
        ("<code>[{'Res':'1','Cred':'12,5'}]</code>", "cred", "12,5"),
        ("Res:1;\nMsgid:123456789;\nCred:12345.67;\n", "msgid", "123456789"),
        ("Res:1;Msgid:5;", "Res", "1"),
        ('<?xml version="1.0"?><result><Res>-4</Res></result>', "RES", "-4"),
        ("-1", "Res", -1),
    ],
)
def test_parse_answer_reads_documented_shapes(body: str, key: str, expected: object) -> None:
    """Each documented answer shape parses and its keys are found in any case."""
    assert parse_answer(body)[key] == expected


def test_parse_answer_reads_the_seed_report_with_a_single_quoted_array() -> None:
    """The doc's single-quoted ``Informe`` string becomes real records."""
    result = ReportResult.from_response(parse_answer(SEED_REPORT))
    assert result.recipients == (
        ReportEntry(
            "34601234567",
            14,
            "Entregado y Certificado",
            datetime(2021, 9, 4, 19, 37, 21, tzinfo=MADRID),
            3,
        ),
    )
    assert result.credits == 12000.0


def test_parse_answer_keeps_apostrophes_inside_single_quoted_values() -> None:
    """An apostrophe inside a value does not end the single-quoted string."""
    body = (
        """[{"Res":"1","Informe":"[{'Estado':'Entregado a l'usuario','Resultado':11}, """
        """{'Estado':'d'Artagnan'}]"}]"""
    )
    records = parse_answer(body).records("informe")
    assert [r["Estado"] for r in records] == ["Entregado a l'usuario", "d'Artagnan"]


def test_parse_answer_reads_txt_and_xml_arrays() -> None:
    """TXT ``0: [`` blocks and XML ``itemN`` children become records."""
    txt = (
        "Res:1;\nInforme:\n[\n0: [\nFecha:2015-03-15 14:58:00;\n"
        "Estado:Entregado al teléfono;\n]\n]\n"
    )
    xml = "<result><Res>1</Res><Ficheros><item0><Nombre>a.pdf</Nombre></item0></Ficheros></result>"
    assert parse_answer(txt).records("Informe")[0]["Estado"] == "Entregado al teléfono"
    assert parse_answer(xml).records("ficheros")[0]["nombre"] == "a.pdf"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b"<html><body>Forbidden</body></html>",
        b"Access temporarily blocked: too many erroneous requests",
        b"[]",
        b'["Res"]',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><result><Res>&a;</Res></result>',
        b"\xff\xfe\x00garbage",
    ],
)
def test_parse_answer_refuses_non_answers_as_unavailable(body: bytes) -> None:
    """HTML pages, empty and garbage bodies are ProviderUnavailable, never an answer."""
    with pytest.raises(ProviderUnavailable):
        parse_answer(body)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.345,67", 12345.67),
        ("67,17", 67.17),
        ("12345.67", 12345.67),
        (19808.45, 19808.45),
        ("1.234.567", 1234567.0),
        (" 9 ", 9.0),
        ("", None),
        ("abc", None),
        (None, None),
        (True, None),
    ],
)
def test_to_float_accepts_spanish_and_plain_decimals(value: Any, expected: float | None) -> None:
    """Spanish decimals, plain decimals and numbers read as the same float."""
    assert to_float(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        (" -3 ", -3),
        (7, 7),
        (12.0, 12),
        ("12.0", 12),
        ("+5", 5),
        ("1,5", None),
        ("x", None),
        (None, None),
        (False, None),
    ],
)
def test_to_int_accepts_numbers_and_numeric_strings(value: Any, expected: int | None) -> None:
    """Integers arrive as numbers or strings; anything else is None."""
    assert to_int(value) == expected


def test_answer_is_case_insensitive_and_aliases_resp() -> None:
    """Lookups ignore case, ``Resp`` answers for ``Res``, iteration keeps the provider's keys."""
    answer = Answer({"Resp": "1", "IDMENSAJE": "7"})
    assert answer["RES"] == "1" and "idMensaje" in answer and list(answer) == ["Resp", "IDMENSAJE"]


# --- property tests: one model, every encoding ----------------------------------------------

TEXT = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEÑ ñáéíóúü'&.-()0123456789")),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s != "")
WHEN = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
CENTS = st.integers(min_value=0, max_value=10**9)

# A field is (key, value, kind); kind decides how it may be rendered.
Field = tuple[str, Any, str]


def _spanish(value: float) -> str:
    return f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def _scalar(draw: st.DrawFn, value: Any, kind: str) -> Any:
    if kind == "int":
        return draw(st.sampled_from([value, str(value)]))
    if kind == "credit":
        return draw(
            st.sampled_from(
                [value, f"{value:.2f}", _spanish(value), f"{value:.2f}".replace(".", ",")]
            )
        )
    return value


def _case(draw: st.DrawFn, key: str) -> str:
    return draw(st.sampled_from([key, key.upper(), key.lower()]))


def _single_quoted(obj: Any) -> str:
    """The doc's pseudo-JSON: single quotes, nothing escaped, numbers bare."""
    if isinstance(obj, list):
        return "[" + ",".join(_single_quoted(item) for item in obj) + "]"
    if isinstance(obj, dict):
        return "{" + ",".join(f"'{k}':{_single_quoted(v)}" for k, v in obj.items()) + "}"
    return f"'{obj}'" if isinstance(obj, str) else json.dumps(obj)


def _render_json(
    draw: st.DrawFn, top: list[Field], nested: tuple[str, list[list[Field]]] | None
) -> str:
    obj = {_case(draw, k): _scalar(draw, v, kind) for k, v, kind in top}
    if nested is not None:
        name, records = nested
        array = [{_case(draw, k): _scalar(draw, v, kind) for k, v, kind in rec} for rec in records]
        style = draw(
            st.sampled_from(["array", "json_string", "single", "code_single", "code_json"])
        )
        value: Any = {
            "array": array,
            "json_string": json.dumps(array, ensure_ascii=False),
            "single": _single_quoted(array),
            "code_single": "<code>" + _single_quoted(array) + "</code>",
            "code_json": "<code>" + json.dumps(array, ensure_ascii=False) + "</code>",
        }[style]
        obj[_case(draw, name)] = value
    text = json.dumps([obj] if draw(st.booleans()) else obj, ensure_ascii=draw(st.booleans()))
    return (
        draw(st.sampled_from(["", "\ufeff", "\ufeff\r\n "]))
        + text
        + draw(st.sampled_from(["", "\n", " \r\n"]))
    )


def _render_txt(
    draw: st.DrawFn, top: list[Field], nested: tuple[str, list[list[Field]]] | None
) -> str:
    lines = [f"{_case(draw, k)}:{_scalar(draw, v, kind)};" for k, v, kind in top]
    if nested is not None:
        lines += [f"{nested[0]}:", "["]
        for index, record in enumerate(nested[1]):
            lines += (
                [f"{index}: ["]
                + [f"{k}:{_scalar(draw, v, kind)};" for k, v, kind in record]
                + ["]"]
            )
        lines.append("]")
    return "\n".join(lines) + "\n"


def _render_xml(
    draw: st.DrawFn, top: list[Field], nested: tuple[str, list[list[Field]]] | None
) -> str:
    def tags(fields: list[Field]) -> str:
        return "".join(f"<{k}>{escape(str(_scalar(draw, v, kind)))}</{k}>" for k, v, kind in fields)

    body = tags(top)
    if nested is not None:
        items = "".join(f"<item{i}>{tags(rec)}</item{i}>" for i, rec in enumerate(nested[1]))
        body += f"<{nested[0]}>{items}</{nested[0]}>"
    return f'<?xml version="1.0"?>\n<result>{body}</result>'


def _render(
    draw: st.DrawFn, top: list[Field], nested: tuple[str, list[list[Field]]] | None = None
) -> str | bytes:
    fmt = draw(st.sampled_from(["json", "json", "json", "txt", "xml"]))
    text = {"json": _render_json, "txt": _render_txt, "xml": _render_xml}[fmt](draw, top, nested)
    return text.encode("utf-8") if draw(st.booleans()) else text


@st.composite
def report_cases(draw: st.DrawFn) -> tuple[str | bytes, ReportResult]:
    rows = draw(
        st.lists(
            st.tuples(
                WHEN,
                st.integers(0, 10**6),
                st.integers(10**7, 10**15 - 1),
                st.integers(0, 1100),
                TEXT,
            ),
            max_size=4,
        )
    )
    credits = draw(CENTS) / 100
    records = [
        [
            ("Fecha", when.strftime("%Y-%m-%d %H:%M:%S"), "text"),
            ("Tiempo", secs, "int"),
            ("Telefono", phone, "int"),
            ("Resultado", code, "int"),
            ("Estado", estado, "text"),
        ]
        for when, secs, phone, code, estado in rows
    ]
    top: list[Field] = [
        ("Res", 1, "int"),
        ("Destinatarios", len(rows), "int"),
        ("Cred", credits, "credit"),
    ]
    expected = ReportResult(
        recipient_count=len(rows),
        recipients=tuple(
            ReportEntry(
                str(phone),
                code,
                estado,
                parse_provider_datetime(when.strftime("%Y-%m-%d %H:%M:%S")),
                secs,
            )
            for when, secs, phone, code, estado in rows
        ),
        credits=credits,
    )
    return _render(draw, top, ("Informe", records)), expected


@st.composite
def list_files_cases(draw: st.DrawFn) -> tuple[str | bytes, ListFilesResult]:
    names = draw(
        st.lists(st.from_regex(r"[A-Za-z0-9]{1,15}\.(pdf|docx|xls)", fullmatch=True), max_size=4)
    )
    whens = [draw(WHEN) for _ in names]
    records = [
        [
            ("Fecha", w.strftime("%Y-%m-%d %H:%M:%S"), "text"),
            ("Nombre", n, "text"),
            ("Ext", n.rsplit(".", 1)[1].upper(), "text"),
        ]
        for n, w in zip(names, whens, strict=True)
    ]
    expected = ListFilesResult(
        files=tuple(
            FileEntry(
                n,
                n.rsplit(".", 1)[1].upper(),
                parse_provider_datetime(w.strftime("%Y-%m-%d %H:%M:%S")),
            )
            for n, w in zip(names, whens, strict=True)
        ),
        credits=12000.0,
    )
    return _render(
        draw, [("Res", 1, "int"), ("Cred", 12000.0, "credit")], ("Ficheros", records)
    ), expected


@st.composite
def send_cases(draw: st.DrawFn) -> tuple[str | bytes, SendResult]:
    message_id, sent, not_sent = (
        draw(st.integers(1, 10**10)),
        draw(st.integers(1, 1000)),
        draw(st.integers(0, 9)),
    )
    credits, used = draw(CENTS) / 100, draw(st.integers(0, 10**5))
    id_key = draw(st.sampled_from(["idMensaje", "Msgid"]))
    top: list[Field] = [
        ("Res", sent, "int"),
        (id_key, message_id, "int"),
        ("Cred", credits, "credit"),
        ("Mensajes", sent, "int"),
        ("Destinatarios", sent + not_sent, "int"),
        ("NoEnviados", not_sent, "int"),
        ("CreditosUsados", used, "int"),
    ]
    expected = SendResult(message_id, sent, sent + not_sent, sent, not_sent, float(used), credits)
    return _render(draw, top), expected


@st.composite
def cancel_cases(draw: st.DrawFn) -> tuple[str | bytes, CancelResult]:
    count, message_id = draw(st.integers(0, 50)), draw(st.integers(1, 10**10))
    credits, recovered = draw(CENTS) / 100, draw(CENTS) / 100
    res_key = draw(st.sampled_from(["Res", "Resp"]))  # v5 answered cancels with Resp
    top: list[Field] = [
        (res_key, count, "int"),
        ("IDMENSAJE", message_id, "int"),
        ("CRED", credits, "credit"),
        ("CREDR", recovered, "credit"),
    ]
    return _render(draw, top), CancelResult(count, message_id, credits, recovered)


@settings(max_examples=150, deadline=None)
@given(report_cases())
def test_report_parses_to_the_same_model_in_every_encoding(
    case: tuple[str | bytes, ReportResult],
) -> None:
    """A report rendered in any encoding parses back to the model it was rendered from."""
    body, expected = case
    assert ReportResult.from_response(parse_answer(body)) == expected


@settings(max_examples=100, deadline=None)
@given(list_files_cases())
def test_list_files_parses_to_the_same_model_in_every_encoding(
    case: tuple[str | bytes, ListFilesResult],
) -> None:
    """A file list rendered in any encoding (including ``<code>``) parses back to its model."""
    body, expected = case
    assert ListFilesResult.from_response(parse_answer(body)) == expected


@settings(max_examples=100, deadline=None)
@given(send_cases())
def test_send_parses_to_the_same_model_in_every_encoding(
    case: tuple[str | bytes, SendResult],
) -> None:
    """A send answer parses the same with string or number values and any key case."""
    body, expected = case
    assert SendResult.from_response(parse_answer(body)) == expected


@settings(max_examples=100, deadline=None)
@given(cancel_cases())
def test_cancel_parses_to_the_same_model_in_every_encoding(
    case: tuple[str | bytes, CancelResult],
) -> None:
    """A cancel answer (upper-case keys, ``Resp`` alias, Spanish decimals) parses to its model."""
    body, expected = case
    assert CancelResult.from_response(parse_answer(body)) == expected
