"""Typed request models of the nine provider functions (no rules, no payload reading).

English names in Python, the provider's names in the docstrings. ``to_params()``
gives the provider's parameters (``Resp`` is added by the client);
``fingerprint_params()`` gives a canonical form for the failure memo (sorted keys,
normalised values, file contents replaced by their sha256); ``to_payload()`` gives
a JSON-safe dict of Python names that :func:`mensatek.payloads.request_from_payload`
reads back. The rules live in :mod:`mensatek.validation`; reading payloads into
validated models in :mod:`mensatek.payloads`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Self, get_type_hints

from certsms.mensatek.dates import to_provider_datetime
from certsms.mensatek.gsm import transliterate as gsm_transliterate
from certsms.mensatek.macros import map_outside_macros, needs_links
from certsms.mensatek.phones import canonical_phone

RECIPIENT_KEYS: tuple[str, ...] = (
    "Movil",
    "Sexo",
    "Nombre",
    "Apellidos",
    "Fecha",
    "Email",
    *(f"Variable_{n}" for n in range(1, 11)),
)
_RECIPIENT_KEY_BY_LOWER = {key.lower(): key for key in RECIPIENT_KEYS}
KINDS: tuple[str, ...] = (
    "send",
    "cancel",
    "reschedule",
    "certificate",
    "report",
    "upload",
    "delete_file",
    "credits",
    "list_files",
)
_TAX_SEPARATORS_RE = re.compile(r"[\s.\-/]")
_BASE64_MACRO_RE = re.compile(r"\((BASE64):([012]):([^()]*)\)", re.IGNORECASE)


def compact_tax_id(tax_id: str) -> str:
    """``Cifcontacto`` as sent: upper case, without spaces, dots, hyphens or slashes."""
    return _TAX_SEPARATORS_RE.sub("", tax_id).upper()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(params: Mapping[str, object]) -> dict[str, object]:
    return {key: params[key] for key in sorted(params)}


@dataclass(frozen=True)
class Recipient:
    """One entry of ``Destinatarios``: ``phone`` is ``Movil`` (international digits);
    ``variables`` are the other keys (``Nombre``, ``Variable_1`` … ``Variable_10`` …)."""

    phone: str
    variables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "phone", canonical_phone(self.phone))
        object.__setattr__(
            self,
            "variables",
            {_RECIPIENT_KEY_BY_LOWER.get(k.lower(), k): str(v) for k, v in self.variables.items()},
        )

    @classmethod
    def from_params(cls, item: object) -> Recipient:
        """From :meth:`to_params` (``{"Movil": …, **variables}``) or a bare phone."""
        if not isinstance(item, Mapping):
            return cls(str(item))
        variables = {str(k): str(v) for k, v in item.items() if str(k) != "Movil"}
        return cls(str(item.get("Movil", "")), variables)

    def to_params(self) -> dict[str, str]:
        """``{"Movil": phone, **variables}``."""
        return {"Movil": self.phone, **{k: v for k, v in self.variables.items() if k != "Movil"}}


@dataclass(frozen=True)
class _Request:
    """Shared behaviour: canonical fingerprint and JSON-safe payload of Python names."""

    def to_params(self) -> dict[str, object]:  # pragma: no cover - overridden
        raise NotImplementedError

    def fingerprint_params(self) -> dict[str, object]:
        """The parameters with sorted keys (nothing secret is ever in them)."""
        return _canonical(self.to_params())

    def to_payload(self) -> dict[str, object]:
        """Python names, JSON-safe: dates ISO-8601 with offset, bytes base64, no None."""
        data: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, bytes):
                value = base64.b64encode(value).decode("ascii")
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """The model back from its :meth:`to_payload` (a job's canonical payload), as it
        was validated then: no rule is checked again (``Fecha`` may have passed since)."""
        hints = get_type_hints(cls)
        values: dict[str, object] = {}
        for name in cls.__dataclass_fields__:
            if name not in data:
                continue
            value = data[name]
            hint = str(hints[name])
            if value is not None and "datetime" in hint:
                value = datetime.fromisoformat(str(value))
            elif value is not None and "bytes" in hint:
                value = base64.b64decode(str(value))
            elif name == "recipients" and isinstance(value, list | tuple):
                value = tuple(Recipient.from_params(item) for item in value)
            values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class SendRequest(_Request):
    """``EnviarSMSCERTIFICADO``: a Certified SMS (``Tipocontrato`` 0) or a Contract SMS.

    sender=Remitente, recipients=Destinatarios, message=Mensaje, contact=Contacto,
    contact_phone=Telcontacto, contact_tax_id=Cifcontacto, contract_type=Tipocontrato,
    scheduled_at=Fecha (aware), reference=Referenciausuario, report=Report,
    message_group_id=Idmensaje, validity_days/hours/minutes=Vpd/Vph/Vpm,
    identify=Identificar, acceptance_days=Aceptacion, unicode=Unicode,
    fix_utf8=Fixutf8, email_report=Emailreport, links=Links (None: 1 when ``Mensaje``
    holds a FILE, BASE64, LINK or IMG macro, else left out). ``foreign_tax_id``,
    ``transliterate`` and ``delete_files_after_certificate`` (alias ``Autoborrado``:
    delete the message's ``(FILE:…)`` library files once its evidence is stored) are
    local flags, never sent.
    """

    sender: str
    recipients: tuple[Recipient, ...]
    message: str
    contact: str
    contact_phone: str
    contact_tax_id: str
    contract_type: int = 0
    scheduled_at: datetime | None = None
    reference: str | None = None
    report: bool = False
    message_group_id: int | None = None
    validity_days: int | None = None
    validity_hours: int | None = None
    validity_minutes: int | None = None
    identify: str | None = None
    acceptance_days: int | None = None
    unicode: bool = False
    fix_utf8: bool = False
    email_report: str | None = None
    foreign_tax_id: bool = False
    transliterate: bool = False
    delete_files_after_certificate: bool = False
    links: bool | None = None

    def __post_init__(self) -> None:
        recipients = tuple(
            r if isinstance(r, Recipient) else Recipient(str(r)) for r in self.recipients
        )
        object.__setattr__(self, "recipients", recipients)

    @property
    def wire_message(self) -> str:
        """``Mensaje`` as sent: transliterated outside macros when asked and not Unicode."""
        if self.transliterate and not self.unicode:
            return map_outside_macros(self.message, gsm_transliterate)
        return self.message

    @property
    def links_param(self) -> int | None:
        """``Links``: as asked, else 1 when the message holds a macro that needs it."""
        if self.links is not None:
            return int(self.links)
        return 1 if needs_links(self.message) else None

    def to_params(self) -> dict[str, object]:
        """The provider's parameters (without ``Resp``)."""
        params: dict[str, object] = {
            "Remitente": self.sender,
            "Destinatarios": [r.to_params() for r in self.recipients],
            "Mensaje": self.wire_message,
            "Tipocontrato": self.contract_type,
            "Contacto": self.contact,
            "Telcontacto": self.contact_phone,
            "Cifcontacto": self.contact_tax_id
            if self.foreign_tax_id
            else compact_tax_id(self.contact_tax_id),
            "Report": int(self.report),
            "Unicode": int(self.unicode),
            "Fixutf8": int(self.fix_utf8),
        }
        optional: dict[str, object | None] = {
            "Fecha": to_provider_datetime(self.scheduled_at) if self.scheduled_at else None,
            "Referenciausuario": self.reference,
            "Idmensaje": self.message_group_id,
            "Vpd": self.validity_days,
            "Vph": self.validity_hours,
            "Vpm": self.validity_minutes,
            "Identificar": self.identify,
            "Aceptacion": self.acceptance_days,
            "Emailreport": self.email_report,
            "Links": self.links_param,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        return params

    def fingerprint_params(self) -> dict[str, object]:
        """Canonical parameters: sorted keys and recipients, inline PDFs as their sha256."""
        params = self.to_params()
        recipients = [_canonical(r.to_params()) for r in self.recipients]
        params["Destinatarios"] = sorted(recipients, key=lambda r: str(r["Movil"]))
        params["Mensaje"] = _BASE64_MACRO_RE.sub(
            lambda m: (
                f"({m.group(1).upper()}:{m.group(2)}:"
                f"{_sha256(''.join(m.group(3).split()).encode())})"
            ),
            str(params["Mensaje"]),
        )
        return _canonical(params)

    def to_payload(self) -> dict[str, object]:
        """Python names, JSON-safe (recipients as provider dicts); read back by from_payload."""
        data = super().to_payload()
        data["recipients"] = [r.to_params() for r in self.recipients]
        return data


@dataclass(frozen=True)
class CancelRequest(_Request):
    """``CancelarSMSCERTIFICADO``: message_id=Idmensaje."""

    message_id: int

    def to_params(self) -> dict[str, object]:
        """``{"Idmensaje": message_id}``."""
        return {"Idmensaje": self.message_id}


@dataclass(frozen=True)
class ReportRequest(CancelRequest):
    """``GetReportSMSCERTIFICADO``: message_id=Idmensaje."""


@dataclass(frozen=True)
class RescheduleRequest(_Request):
    """``ReprogramarSMSCERTIFICADO``: message_id=Idmensaje, scheduled_at=Fecha (aware)."""

    message_id: int
    scheduled_at: datetime

    def to_params(self) -> dict[str, object]:
        """``Idmensaje`` and ``Fecha`` (Madrid, minutes)."""
        return {"Idmensaje": self.message_id, "Fecha": to_provider_datetime(self.scheduled_at)}


@dataclass(frozen=True)
class CertificateRequest(_Request):
    """``GetSMSCERTIFICADO``: message_id=Idmensaje, phone=Telefono,
    start=Fechainicio, end=Fechafin. Modes: message+phone, message, date range."""

    message_id: int | None = None
    phone: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.phone is not None:
            object.__setattr__(self, "phone", canonical_phone(self.phone))

    @property
    def mode(self) -> Literal["message_phone", "message", "date_range"]:
        """Which of the three uses of the function this request is."""
        if self.message_id is not None:
            return "message_phone" if self.phone else "message"
        return "date_range"

    def to_params(self) -> dict[str, object]:
        """The parameters of the request's mode only."""
        if self.mode == "message_phone":
            return {"Idmensaje": self.message_id, "Telefono": self.phone}
        if self.mode == "message":
            return {"Idmensaje": self.message_id}
        dates = {"Fechainicio": self.start, "Fechafin": self.end}
        return {k: to_provider_datetime(v) for k, v in dates.items() if v is not None}


@dataclass(frozen=True)
class UploadRequest(_Request):
    """``CargarFichero``: name=Nombre, content=Contenido (raw bytes; sent base64),
    mode=Tipo (``BASE64``, or ``FILES``: the client sends ``content`` as a
    multipart file part), auto_delete=Autoborrado (``Si``)."""

    name: str
    content: bytes
    mode: Literal["BASE64", "FILES"] = "BASE64"
    auto_delete: bool = False

    def to_params(self) -> dict[str, object]:
        """``Nombre``, ``Tipo``, ``Contenido`` (BASE64 mode only), ``Autoborrado="Si"``."""
        params: dict[str, object] = {"Nombre": self.name, "Tipo": self.mode}
        if self.mode == "BASE64":
            params["Contenido"] = base64.b64encode(self.content).decode("ascii")
        if self.auto_delete:
            params["Autoborrado"] = "Si"
        return params

    def fingerprint_params(self) -> dict[str, object]:
        """Sorted parameters with ``Contenido`` replaced by the content's sha256."""
        params = self.to_params()
        params["Contenido"] = _sha256(self.content)
        return _canonical(params)


@dataclass(frozen=True)
class DeleteFileRequest(_Request):
    """``BorrarFichero``: name=Nombre."""

    name: str

    def to_params(self) -> dict[str, object]:
        """``{"Nombre": name}``."""
        return {"Nombre": self.name}


Request = (
    SendRequest
    | CancelRequest
    | RescheduleRequest
    | CertificateRequest
    | ReportRequest
    | UploadRequest
    | DeleteFileRequest
)
