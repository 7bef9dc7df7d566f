"""Reading payloads (CLI, HTTP, job records) into validated request models.

Keys are the provider's names (case-insensitive, with the aliases ``Referencia``
and ``TipoContrato``…) or the Python field names; ``Resp`` is accepted and
ignored (the client always asks for JSON), so the provider's own examples load.
``Destinatarios`` may be a list of dicts, a single dict, a list of phones, a JSON
string, or a ``;``/``,``-separated string (:func:`read_recipients`, the one reader
of it). Values are converted by the field reader in :mod:`mensatek._reader`.
Problems found while reading (unknown keys, wrong types) and the rules of
:mod:`mensatek.validation` are raised together as one
:class:`~mensatek.errors.InvalidRequest`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal, cast

from certsms.mensatek._reader import FieldSpec, PayloadReader
from certsms.mensatek.errors import FieldProblem, InvalidRequest
from certsms.mensatek.macros import needs_links
from certsms.mensatek.requests import (
    KINDS,
    CancelRequest,
    CertificateRequest,
    DeleteFileRequest,
    Recipient,
    ReportRequest,
    Request,
    RescheduleRequest,
    SendRequest,
    UploadRequest,
)
from certsms.mensatek.validation import validate_request

_F = FieldSpec
RECIPIENTS = _F("recipients", "Destinatarios")
SEND_FIELDS = (
    _F("sender", "Remitente"),
    RECIPIENTS,
    _F("message", "Mensaje"),
    _F("contact", "Contacto"),
    _F("contact_phone", "Telcontacto"),
    _F("contact_tax_id", "Cifcontacto"),
    _F("contract_type", "Tipocontrato"),
    _F("scheduled_at", "Fecha"),
    _F("reference", "Referenciausuario", ("Referencia",)),
    _F("report", "Report"),
    _F("message_group_id", "Idmensaje"),
    _F("validity_days", "Vpd"),
    _F("validity_hours", "Vph"),
    _F("validity_minutes", "Vpm"),
    _F("identify", "Identificar"),
    _F("acceptance_days", "Aceptacion"),
    _F("unicode", "Unicode"),
    _F("fix_utf8", "Fixutf8"),
    _F("email_report", "Emailreport"),
    _F("foreign_tax_id", "foreign_tax_id"),
    _F("transliterate", "transliterate"),
    _F("delete_files_after_certificate", "delete_files_after_certificate", ("Autoborrado",)),
    _F("links", "Links"),
)
IGNORED_KEYS = frozenset({"resp"})
"""Keys read and dropped: ``Resp`` (the client always asks for JSON), so a payload copied
from the provider's examples is accepted."""
MESSAGE_ID = _F("message_id", "Idmensaje")
_PHONE_KEYS = frozenset({"movil", "phone", "telefono"})
_SPLIT_RE = re.compile(r"[;,]")


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


def _finish(
    reader: PayloadReader,
    req: Request,
    *,
    kind: str,
    now: datetime,
    pdf_contract_types: Iterable[int] | None = None,
) -> None:
    """Raise InvalidRequest with the reading problems plus the model's (for unbroken fields)."""
    broken = {p.python_name for p in reader.problems}
    checked = validate_request(req, now=now, pdf_contract_types=pdf_contract_types)
    problems = reader.problems + [p for p in checked if p.python_name not in broken]
    if problems:
        raise InvalidRequest(problems, function=kind)


def _reader(payload: object, specs: tuple[FieldSpec, ...], kind: str) -> PayloadReader:
    if payload is None:
        payload = {}
    if not isinstance(payload, Mapping):
        problem = FieldProblem("payload", "payload", f"a {kind} payload must be a JSON object")
        raise InvalidRequest([problem], function=kind)
    payload = {k: v for k, v in payload.items() if str(k).lower() not in IGNORED_KEYS}
    return PayloadReader(payload, specs, kind=kind)


def read_recipients(reader: PayloadReader) -> tuple[Recipient, ...]:
    """``Destinatarios`` in any accepted shape → recipients (phones are checked later)."""
    raw = reader.raw("recipients")
    if raw is None:
        reader.problem("recipients", "is required")
        return ()
    if isinstance(raw, str):
        text = raw.strip()
        if text[:1] in "[{":
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                reader.problem("recipients", "is not valid JSON")
                return ()
        else:
            raw = [part for part in _SPLIT_RE.split(text) if part.strip()]
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        reader.problem("recipients", f"must be a list of recipients, not {type(raw).__name__}")
        return ()
    recipients: list[Recipient] = []
    for index, item in enumerate(raw, start=1):
        recipient = _recipient(item)
        if isinstance(recipient, str):
            reader.problem("recipients", f"recipient #{index}: {recipient}")
        else:
            recipients.append(recipient)
    return tuple(recipients)


def payload_recipients(payload: Mapping[str, object]) -> tuple[Recipient, ...]:
    """The recipients a send payload names, read as :func:`read_recipients` reads them.

    For code that only needs whom a stored send was for: nothing else is read or
    checked, and entries that cannot be read are left out.
    """
    return read_recipients(PayloadReader(payload, (RECIPIENTS,), kind="send"))


def _recipient(item: object) -> Recipient | str:
    """One recipient, or the reason it cannot be read."""
    if isinstance(item, Recipient):
        return item
    if isinstance(item, str) or (isinstance(item, int) and not isinstance(item, bool)):
        return Recipient(str(item))
    if not isinstance(item, Mapping):
        return f"must be a phone or an object with Movil, not {type(item).__name__}"
    phone: object = None
    variables: dict[str, str] = {}
    for key, value in item.items():
        if str(key).lower() in _PHONE_KEYS:
            phone = value
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            variables[str(key)] = str(value)
        else:
            return f"variable {key!r} must be text or a number"
    if not isinstance(phone, str | int) or isinstance(phone, bool) or not str(phone).strip():
        return "has no Movil"
    return Recipient(str(phone), variables)


def _links(reader: PayloadReader, message: str) -> bool | None:
    """``Links`` as given, or None when it says what the message implies anyway (so a
    request read back from its own parameters is the same request)."""
    if reader.raw("links") is None:
        return None
    links = reader.boolean("links")
    return None if links == needs_links(message) else links


def send_request_from_payload(
    payload: Mapping[str, object],
    *,
    now: datetime | None = None,
    pdf_contract_types: Iterable[int] | None = None,
) -> SendRequest:
    """Build a :class:`SendRequest` and validate it; raise ``InvalidRequest`` with every problem.

    ``pdf_contract_types``: the contract types that must carry a PDF (default
    :data:`mensatek.validation.PDF_CONTRACT_TYPES`).
    """
    now = _now(now)
    r = _reader(payload, SEND_FIELDS, "send")
    message = r.string("message", required=True, strip=False) or ""
    req = SendRequest(
        sender=r.string("sender", required=True) or "",
        recipients=read_recipients(r),
        message=message,
        contact=r.string("contact", required=True) or "",
        contact_phone=r.string("contact_phone", required=True) or "",
        contact_tax_id=r.string("contact_tax_id", required=True) or "",
        contract_type=r.integer("contract_type") or 0,
        scheduled_at=r.when("scheduled_at"),
        reference=r.string("reference"),
        report=r.boolean("report"),
        message_group_id=r.integer("message_group_id"),
        validity_days=r.integer("validity_days"),
        validity_hours=r.integer("validity_hours"),
        validity_minutes=r.integer("validity_minutes"),
        identify=r.string("identify"),
        acceptance_days=r.integer("acceptance_days"),
        unicode=r.boolean("unicode"),
        fix_utf8=r.boolean("fix_utf8"),
        email_report=r.string("email_report"),
        foreign_tax_id=r.boolean("foreign_tax_id"),
        transliterate=r.boolean("transliterate"),
        delete_files_after_certificate=r.boolean("delete_files_after_certificate"),
        links=_links(r, message),
    )
    _finish(r, req, kind="send", now=now, pdf_contract_types=pdf_contract_types)
    return req


def _by_message_id(cls: type[CancelRequest]) -> Callable[[PayloadReader, datetime], Request]:
    return lambda r, now: cls(message_id=r.integer("message_id", required=True) or 0)


def _reschedule(r: PayloadReader, now: datetime) -> Request:
    return RescheduleRequest(
        message_id=r.integer("message_id", required=True) or 0,
        scheduled_at=r.when("scheduled_at", required=True) or now + timedelta(days=1),
    )


def _certificate(r: PayloadReader, now: datetime) -> Request:
    return CertificateRequest(
        message_id=r.integer("message_id"),
        phone=r.string("phone"),
        start=r.when("start"),
        end=r.when("end"),
    )


def _upload(r: PayloadReader, now: datetime) -> Request:
    mode = (r.string("mode") or "BASE64").upper()
    return UploadRequest(
        name=r.string("name", required=True) or "",
        content=r.content("content", required=True) or b"",
        mode=cast(Literal["BASE64", "FILES"], mode),
        auto_delete=r.boolean("auto_delete"),
    )


def _delete(r: PayloadReader, now: datetime) -> Request:
    return DeleteFileRequest(name=r.string("name", required=True) or "")


_NAME = _F("name", "Nombre")
_BUILDERS: dict[str, tuple[tuple[FieldSpec, ...], Callable[[PayloadReader, datetime], Request]]] = {
    "cancel": ((MESSAGE_ID,), _by_message_id(CancelRequest)),
    "report": ((MESSAGE_ID,), _by_message_id(ReportRequest)),
    "reschedule": ((MESSAGE_ID, _F("scheduled_at", "Fecha")), _reschedule),
    "certificate": (
        (MESSAGE_ID, _F("phone", "Telefono"), _F("start", "Fechainicio"), _F("end", "Fechafin")),
        _certificate,
    ),
    "upload": (
        (_NAME, _F("content", "Contenido"), _F("mode", "Tipo"), _F("auto_delete", "Autoborrado")),
        _upload,
    ),
    "delete_file": ((_NAME,), _delete),
}


def field_specs(kind: str) -> tuple[FieldSpec, ...]:
    """The fields a payload of ``kind`` may carry (empty for credits and list_files)."""
    if kind == "send":
        return SEND_FIELDS
    return _BUILDERS[kind][0] if kind in _BUILDERS else ()


def request_from_payload(
    kind: str,
    payload: Mapping[str, object] | None,
    *,
    now: datetime | None = None,
    pdf_contract_types: Iterable[int] | None = None,
) -> Request | None:
    """Build and validate the request of ``kind`` (one of ``KINDS``).

    ``credits`` and ``list_files`` take no parameters: an empty (or None) payload
    gives None, any key but ``Resp`` is a problem. Raises ``InvalidRequest`` with every
    problem. ``pdf_contract_types``: see :func:`send_request_from_payload`.
    """
    if kind not in KINDS:
        problem = FieldProblem("kind", "kind", f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        raise InvalidRequest([problem])
    if kind == "send":
        return send_request_from_payload(
            payload if payload is not None else {}, now=now, pdf_contract_types=pdf_contract_types
        )
    now = _now(now)
    if kind not in _BUILDERS:  # credits, list_files: no parameters
        reader = _reader(payload, (), kind)
        if reader.problems:
            raise InvalidRequest(reader.problems, function=kind)
        return None
    specs, build = _BUILDERS[kind]
    reader = _reader(payload, specs, kind)
    req = build(reader, now)
    _finish(reader, req, kind=kind, now=now)
    return req


def stored_send_request(payload: Mapping[str, object] | None) -> SendRequest | None:
    """A send's model from the payload a job recorded, without checking rules again.

    A job records the canonical payload of its validated request
    (:meth:`SendRequest.to_payload`), read back as it is. A payload in the provider's
    spellings (a record written before payloads were canonical, or a message pushed
    by a producer with only dramatiq) is read as at its enqueue: every rule but the
    "in the future" ones. None when there is no payload or it cannot be read.
    """
    if not payload:
        return None
    if set(payload) <= set(SendRequest.__dataclass_fields__):
        try:
            return SendRequest.from_payload(payload)
        except (TypeError, ValueError):
            return None
    try:
        return send_request_from_payload(payload, now=datetime.min.replace(tzinfo=UTC))
    except InvalidRequest:
        return None
