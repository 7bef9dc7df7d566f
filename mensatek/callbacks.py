"""The provider's callbacks as typed values: one parser, used by the web app and the actor.

Mensatek POSTs one callback per recipient status change (``Servicio=SMSCERTIFICADO``),
per recipient event on a PDF attachment (``EVENTOSSMSCERTIFICADO``) and per inbound
reply (``SMSRECIBIDO``); docs/provider.md §5. Every value may arrive as a string; field names
are matched case-insensitively.

A notification must never be lost, so :func:`read_callback` never refuses one: it
gives :class:`StatusCallback`, :class:`AttachmentEvent` or :class:`InboundReply`
with a list of warnings (an unknown field, an empty or oddly typed optional field
read as absent), or an :class:`UnrecognisedCallback` (an unknown ``Servicio``, a
required field missing or unreadable) that is kept, with its raw body, but applied
to nothing. :func:`parse_callback` is the strict reading: it raises
:class:`CallbackInvalid` naming the field where :func:`read_callback` would give an
``UnrecognisedCallback``.

Processing needs: status callbacks ``Resultado``, ``Movil`` and ``idMensaje`` or
``Referencia``; events ``idMensaje`` (or ``idEnvio``), ``Telefono`` and
``TipoEvento``; replies ``Mensaje``. Phones, dates and yes/no values are read by the
same helpers as the client's requests and answers (:mod:`mensatek.phones`,
:mod:`mensatek.dates`, :mod:`mensatek.values`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certsms.config.errors import CertsmsError
from certsms.mensatek.dates import parse_callback_datetime
from certsms.mensatek.phones import canonical_phone, is_plausible_phone
from certsms.mensatek.values import parse_bool

SERVICE_STATUS = "SMSCERTIFICADO"
SERVICE_EVENT = "EVENTOSSMSCERTIFICADO"
SERVICE_REPLY = "SMSRECIBIDO"
SERVICES = (SERVICE_STATUS, SERVICE_EVENT, SERVICE_REPLY)

_INT_RE = re.compile(r"^[+-]?\d{1,19}$")


class CallbackInvalid(CertsmsError):
    """Raised when a callback body is not a callback we can process (the field and why)."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)

    def as_dict(self) -> dict[str, str | None]:
        """The problem as plain JSON (the web's 4xx body)."""
        return {"error": self.reason, "field": self.field}


@dataclass(frozen=True)
class StatusCallback:
    """``SMSCERTIFICADO``: a recipient's ``Resultado`` changed."""

    message_id: int | None  # idMensaje
    reference: str | None  # Referencia (the send's Referenciausuario)
    phone: str  # Movil, digits only
    result_code: int  # Resultado
    sender: str | None  # Remitente
    reported_at: datetime | None  # Fecha (aware, Madrid)
    seconds: int | None  # Segundos
    report_id: int | None  # idReport
    csv: str | None  # CSV (contract final statuses; meaning unknown)

    kind = SERVICE_STATUS


@dataclass(frozen=True)
class AttachmentEvent:
    """``EVENTOSSMSCERTIFICADO``: the recipient did something with a PDF attachment."""

    message_id: int  # idMensaje (or idEnvio)
    phone: str  # Telefono
    event_type: str  # TipoEvento (code list unknown)
    attachment_type: str | None  # TipoAdjunto
    file_name: str | None  # Fichero
    at: datetime | None  # Fecha
    value: str | None  # Valor (e.g. an identity number)
    reference: str | None  # Referencia
    ip: str | None  # IP
    port: int | None  # Puerto

    kind = SERVICE_EVENT


@dataclass(frozen=True)
class InboundReply:
    """``SMSRECIBIDO``: an SMS arrived on a contracted number (maybe a reply to one of ours)."""

    message_id: int | None  # idM: the original message, when a reply
    internal_id: int | None  # idR
    receiver: str | None  # Movil: the number that received it
    sender: str | None  # Remitente: normally the replying mobile
    text: str  # Mensaje
    received_at: datetime | None  # Fecha
    timestamp: int | None  # timestamp (Unix seconds)
    certified: bool  # EsCert
    reference: str | None  # Referencia

    kind = SERVICE_REPLY


@dataclass(frozen=True)
class UnrecognisedCallback:
    """An authenticated callback certsms cannot apply: kept with its raw body, shown,
    never applied to a job's status."""

    service: str | None  # Servicio as given (None when absent)
    reason: str  # why it cannot be applied
    field: str | None  # the field at fault, when one is
    message_id: int | None  # idMensaje / idEnvio / idM, when readable (to find the job)
    reference: str | None  # Referencia, when given

    kind = "unrecognised"


Callback = StatusCallback | AttachmentEvent | InboundReply

KNOWN_FIELDS: dict[str, frozenset[str]] = {
    SERVICE_STATUS: frozenset(
        name.lower()
        for name in (
            "Servicio",
            "Resultado",
            "Remitente",
            "Movil",
            "Fecha",
            "Segundos",
            "idMensaje",
            "idEnvio",
            "Referencia",
            "idReport",
            "CSV",
        )
    ),
    SERVICE_EVENT: frozenset(
        name.lower()
        for name in (
            "Servicio",
            "Fichero",
            "TipoAdjunto",
            "Fecha",
            "Telefono",
            "TipoEvento",
            "idEnvio",
            "idMensaje",
            "Valor",
            "Referencia",
            "IP",
            "Puerto",
        )
    ),
    SERVICE_REPLY: frozenset(
        name.lower()
        for name in (
            "Servicio",
            "timestamp",
            "Fecha",
            "Movil",
            "Remitente",
            "Mensaje",
            "idR",
            "idM",
            "EsCert",
            "Referencia",
        )
    ),
}
"""The fields the v7 docs list per ``Servicio``; others are kept and warned about."""


class _Fields:
    """Case-insensitive access to a flat mapping of scalar values.

    ``lenient``: an optional field that does not parse is read as absent and noted in
    :attr:`warnings` instead of raising.
    """

    def __init__(self, raw: Mapping[str, Any], *, lenient: bool = False) -> None:
        self._values: dict[str, str] = {}
        self.lenient = lenient
        self.warnings: list[str] = []
        for key, value in raw.items():
            if isinstance(value, list) and len(value) == 1:  # form parsers may give lists
                value = value[0]
            if value is None:
                continue
            if isinstance(value, dict | list):
                if not lenient:
                    raise CallbackInvalid("must be a single value", field=str(key))
                self.warnings.append(f"{key}: not a single value; ignored")
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            self._values[str(key).lower()] = text.strip()

    def names(self) -> set[str]:
        """The (lower-case) names present."""
        return set(self._values)

    def _odd(self, name: str, reason: str, *, required: bool) -> None:
        """An unreadable value: raise when required or strict; else warn (read as absent)."""
        if required or not self.lenient:
            raise CallbackInvalid(reason, field=name)
        self.warnings.append(f"{name}: {reason}, got {self._values.get(name.lower(), '')[:40]!r}")

    def text(self, name: str, *, required: bool = False, alias: str | None = None) -> str | None:
        value = self._values.get(name.lower())
        if not value and alias:
            value = self._values.get(alias.lower())
        if not value:
            if required:
                raise CallbackInvalid("is required", field=name)
            return None
        return value

    def integer(self, name: str, *, required: bool = False, alias: str | None = None) -> int | None:
        value = self.text(name, required=required, alias=alias)
        if value is None:
            return None
        if value.endswith(".0"):
            value = value[:-2]
        if not _INT_RE.match(value):
            self._odd(name, "must be an integer", required=required)
            return None
        return int(value)

    def date(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None or value.startswith("0000"):
            return None
        try:
            return parse_callback_datetime(value)
        except ValueError:
            self._odd(name, "must be a date like YYYY-MM-DD HH:MM:SS", required=False)
            return None

    def phone(self, name: str, *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        phone = canonical_phone(value)
        if not is_plausible_phone(phone):
            self._odd(name, "must be a phone number", required=required)
            return None
        return phone

    def boolean(self, name: str) -> bool:
        flag = parse_bool(self.text(name) or "")
        if flag is None:
            self._odd(name, "must be true or false", required=False)
            return False
        return flag


def parse_callback(raw: Mapping[str, Any]) -> Callback:
    """Parse one callback body (already decoded from JSON or form) or raise CallbackInvalid."""
    return _parse(_Fields(raw))


def read_callback(raw: Mapping[str, Any]) -> tuple[Callback | UnrecognisedCallback, list[str]]:
    """Read one callback body without ever refusing it: the callback (or an
    :class:`UnrecognisedCallback`) and the warnings about it (see the module docstring)."""
    fields = _Fields(raw, lenient=True)
    try:
        callback: Callback | UnrecognisedCallback = _parse(fields)
    except CallbackInvalid as exc:
        callback = UnrecognisedCallback(
            service=fields.text("Servicio"),
            reason=exc.reason,
            field=exc.field,
            message_id=_any_message_id(fields),
            reference=fields.text("Referencia"),
        )
        return callback, [*fields.warnings, str(exc)]
    known = KNOWN_FIELDS[callback.kind]
    unknown = sorted(fields.names() - known)
    warnings = list(fields.warnings)
    if unknown:
        warnings.append("unknown fields kept: " + ", ".join(name[:40] for name in unknown[:20]))
    return callback, warnings


def _any_message_id(fields: _Fields) -> int | None:
    for name in ("idMensaje", "idEnvio", "idM"):
        value = fields.text(name)
        if value and _INT_RE.match(value) and int(value) > 0:
            return int(value)
    return None


def _parse(fields: _Fields) -> Callback:
    service = (fields.text("Servicio", required=True) or "").upper()
    if service == SERVICE_STATUS:
        message_id = fields.integer("idMensaje", alias="idEnvio")
        reference = fields.text("Referencia")
        if message_id is None and reference is None:
            raise CallbackInvalid("idMensaje or Referencia is required", field="idMensaje")
        return StatusCallback(
            message_id=message_id,
            reference=reference,
            phone=fields.phone("Movil", required=True) or "",
            result_code=fields.integer("Resultado", required=True) or 0,
            sender=fields.text("Remitente"),
            reported_at=fields.date("Fecha"),
            seconds=fields.integer("Segundos"),
            report_id=fields.integer("idReport"),
            csv=fields.text("CSV"),
        )
    if service == SERVICE_EVENT:
        return AttachmentEvent(
            message_id=fields.integer("idMensaje", required=True, alias="idEnvio") or 0,
            phone=fields.phone("Telefono", required=True) or "",
            event_type=fields.text("TipoEvento", required=True) or "",
            attachment_type=fields.text("TipoAdjunto"),
            file_name=fields.text("Fichero"),
            at=fields.date("Fecha"),
            value=fields.text("Valor"),
            reference=fields.text("Referencia"),
            ip=fields.text("IP"),
            port=fields.integer("Puerto"),
        )
    if service == SERVICE_REPLY:
        message_id = fields.integer("idM")
        return InboundReply(
            message_id=message_id or None,  # 0 = not a reply to one of ours
            internal_id=fields.integer("idR"),
            receiver=fields.phone("Movil"),
            sender=fields.text("Remitente"),
            text=fields.text("Mensaje", required=True) or "",
            received_at=fields.date("Fecha"),
            timestamp=fields.integer("timestamp"),
            certified=fields.boolean("EsCert"),
            reference=fields.text("Referencia"),
        )
    raise CallbackInvalid(f"unknown service {service[:40]!r}", field="Servicio")
