"""Parsing the provider's three callback kinds (all values possibly strings)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from certsms.mensatek.callbacks import (
    AttachmentEvent,
    CallbackInvalid,
    InboundReply,
    StatusCallback,
    parse_callback,
)
from certsms.mensatek.dates import MADRID

STATUS = {
    "Servicio": "SMSCERTIFICADO",
    "Resultado": "11",
    "Remitente": "TUEMPRESA",
    "Movil": "34600123456",
    "Fecha": "2020-12-03 11:14:24",
    "Segundos": "3",
    "idMensaje": "10573758",
    "Referencia": "Your reference",
    "idReport": "1234567890",
}
EVENT = {
    "Servicio": "EVENTOSSMSCERTIFICADO",
    "Fichero": "Nombrefichero.pdf",
    "TipoAdjunto": "1",
    "Fecha": "2020-12-03 11:14:24",
    "Telefono": "34600000000",
    "TipoEvento": "1",
    "idEnvio": "123433379",
    "idMensaje": "123433379",
    "Valor": "00000000T",
    "Referencia": "19927743TR",
    "IP": "127.0.0.1",
    "Puerto": "56678",
}
REPLY = {
    "Servicio": "SMSRECIBIDO",
    "timestamp": "1664795529",
    "Fecha": "2020-12-03 11:14:24",
    "Movil": "34600000000",
    "Remitente": "MIEMPRESA",
    "Mensaje": "MIEMPRESA",
    "idR": "56399876",
    "idM": "78334454",
    "EsCert": "true",
    "Referencia": "667887TR",
}


def test_parse_documented_status_example() -> None:
    """The reference's SMSCERTIFICADO example parses to typed values."""
    parsed = parse_callback(STATUS)
    assert isinstance(parsed, StatusCallback)
    assert (parsed.message_id, parsed.result_code, parsed.phone) == (10573758, 11, "34600123456")
    assert parsed.reported_at == datetime(2020, 12, 3, 11, 14, 24, tzinfo=MADRID)
    assert (parsed.seconds, parsed.report_id, parsed.reference) == (3, 1234567890, "Your reference")


def test_parse_documented_event_and_reply_examples() -> None:
    """The EVENTOSSMSCERTIFICADO and SMSRECIBIDO examples parse to typed values."""
    event = parse_callback(EVENT)
    assert isinstance(event, AttachmentEvent)
    assert (event.message_id, event.phone, event.event_type, event.port) == (
        123433379,
        "34600000000",
        "1",
        56678,
    )
    reply = parse_callback(REPLY)
    assert isinstance(reply, InboundReply)
    assert (reply.message_id, reply.certified, reply.text) == (78334454, True, "MIEMPRESA")


def test_parse_accepts_numbers_lowercase_keys_and_plus_phones() -> None:
    """Real numbers, case-insensitive names and +/00 phone prefixes are all accepted."""
    parsed = parse_callback(
        {"servicio": "smscertificado", "RESULTADO": 14, "movil": "+34 600 123 456", "idmensaje": 5}
    )
    assert isinstance(parsed, StatusCallback)
    assert (parsed.result_code, parsed.phone, parsed.message_id) == (14, "34600123456", 5)


def test_parse_status_by_reference_only() -> None:
    """A status without idMensaje but with Referencia is still usable."""
    parsed = parse_callback(
        {"Servicio": "SMSCERTIFICADO", "Resultado": "14", "Movil": "346001", "Referencia": "ref-1"}
    )
    assert isinstance(parsed, StatusCallback)
    assert (parsed.message_id, parsed.reference) == (None, "ref-1")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "Servicio"),
        ({**STATUS, "Servicio": "SMSMASIVO"}, "Servicio"),
        ({k: v for k, v in STATUS.items() if k != "Movil"}, "Movil"),
        ({k: v for k, v in STATUS.items() if k != "Resultado"}, "Resultado"),
        ({**STATUS, "Resultado": "catorce"}, "Resultado"),
        ({**STATUS, "idMensaje": "12ab"}, "idMensaje"),
        ({**STATUS, "idMensaje": "", "Referencia": ""}, "idMensaje"),
        ({**STATUS, "Fecha": "yesterday"}, "Fecha"),
        ({**STATUS, "Movil": "call me"}, "Movil"),
        ({**STATUS, "Resultado": {"x": 1}}, "Resultado"),
        ({**EVENT, "TipoEvento": ""}, "TipoEvento"),
        ({**EVENT, "Puerto": "http"}, "Puerto"),
        ({**REPLY, "idM": "x"}, "idM"),
        ({**REPLY, "EsCert": "maybe"}, "EsCert"),
    ],
)
def test_parse_rejects_naming_the_field(body: dict[str, object], field: str) -> None:
    """Unknown services, missing required and malformed fields are refused by name."""
    with pytest.raises(CallbackInvalid) as info:
        parse_callback(body)
    assert info.value.field == field


def test_parse_status_date_in_the_spring_forward_gap_moves_forward() -> None:
    """A Fecha inside the 2026 gap (02:30 does not exist in Madrid) is 03:30 CEST."""
    parsed = parse_callback({**STATUS, "Fecha": "2026-03-29 02:30:00"})
    assert isinstance(parsed, StatusCallback)
    assert parsed.reported_at is not None
    assert parsed.reported_at.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert parsed.reported_at.strftime("%H:%M %z") == "03:30 +0200"


@pytest.mark.parametrize("text", ["2020-12-03 11:14:24", "2020-12-03T11:14:24", "20201203111424"])
def test_parse_accepts_every_callback_date_spelling(text: str) -> None:
    """The provider's callback date spellings read as the same Madrid instant."""
    parsed = parse_callback({**EVENT, "Fecha": text})
    assert isinstance(parsed, AttachmentEvent)
    assert parsed.at == datetime(2020, 12, 3, 11, 14, 24, tzinfo=MADRID)


@pytest.mark.parametrize(
    ("raw", "certified"), [("Si", True), ("1", True), ("no", False), ("", False)]
)
def test_parse_reply_flag_uses_the_shared_yes_no_strings(raw: str, certified: bool) -> None:
    """EsCert is read with the same yes/no strings as payloads and answers."""
    parsed = parse_callback({**REPLY, "EsCert": raw})
    assert isinstance(parsed, InboundReply)
    assert parsed.certified is certified


@pytest.mark.parametrize("phone", ["0034600123456", "+34600123456", " 34 600 123 456 "])
def test_parse_phones_use_the_canonical_form(phone: str) -> None:
    """Callback phones come out in the same canonical form as request phones."""
    parsed = parse_callback({**STATUS, "Movil": phone})
    assert isinstance(parsed, StatusCallback)
    assert parsed.phone == "34600123456"


def test_read_callback_never_refuses_and_says_why() -> None:
    """Unknown Servicio or a missing field → UnrecognisedCallback with the message id found;
    odd optional fields and extra fields → the callback plus warnings."""
    from certsms.mensatek.callbacks import UnrecognisedCallback, read_callback

    status = {
        "Servicio": "SMSCERTIFICADO",
        "Resultado": "14",
        "Movil": "34600000001",
        "idMensaje": "77",
    }
    odd, warnings = read_callback({**status, "Segundos": "", "Puerto": "x", "Nuevo": "1"})
    assert isinstance(odd, StatusCallback) and odd.seconds is None and odd.result_code == 14
    assert any("nuevo" in w for w in warnings)
    unknown, warnings = read_callback({**status, "Servicio": "SMSMASIVO"})
    assert isinstance(unknown, UnrecognisedCallback) and unknown.message_id == 77
    assert unknown.service == "SMSMASIVO" and warnings
    missing, _ = read_callback({k: v for k, v in status.items() if k != "Movil"})
    assert isinstance(missing, UnrecognisedCallback) and missing.field == "Movil"
    nested, warnings = read_callback({**status, "Extra": {"a": 1}})
    assert isinstance(nested, StatusCallback) and any("Extra" in w for w in warnings)
