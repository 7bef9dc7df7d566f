"""Send, cancel and reschedule (reference §2.1–2.3, Res codes §3.1–3.3)."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from sandbox.clock import parse_provider
from sandbox.parsing import ParamError, ParsedRequest, normalize_phone, parse_recipients
from sandbox.progression import path_for, set_status
from sandbox.rendering import V7_ONLY_FIELDS, Answer
from sandbox.state import Message, Recipient
from sandbox.statuses import CANCELLED, SCHEDULED

if TYPE_CHECKING:
    from sandbox.core import SandboxCore

REQUIRED_SEND = ("Remitente", "Mensaje", "Destinatarios", "Contacto", "Telcontacto", "Cifcontacto")
_RANGES = {
    "Vpd": (1, 20),
    "Vph": (0, 23),
    "Vpm": (0, 59),
    "Aceptacion": (0, 15),
    "Report": (0, 1),
    "Unicode": (0, 1),
    "Fixutf8": (0, 1),
    "Links": (0, 1),
}
_MACRO = re.compile(r"\((FILE|BASE64|IMG|LINK|QRCODE|SMSLAND)(?::[^()]*)?\)", re.IGNORECASE)
_FILE_MACRO = re.compile(r"\(FILE:(?:\d:)?([^()]+)\)", re.IGNORECASE)
_PDF_MACRO = re.compile(r"\((FILE|BASE64):", re.IGNORECASE)
_SHORT_LINK = "https://mtk.es/c/XXXXXXX"  # what a macro becomes in the SMS text
_GSM_EXT = set("^{}\\[~]|€")


def _error(res: int, text: str, credits: float) -> Answer:
    return Answer({"Res": res, "Error": text, "Cred": credits}, outcome="error")


def segments(text: str, *, unicode: bool) -> int:
    """SMS parts a text costs: GSM 160/153 (extension chars count 2), Unicode 70/67.

    Macros count as the short link they become; non-GSM characters without
    ``Unicode=1`` are transliterated by the provider, so they count as one.
    """
    body = _MACRO.sub(_SHORT_LINK, text)
    if unicode:
        return 1 if len(body) <= 70 else math.ceil(len(body) / 67)
    units = sum(2 if c in _GSM_EXT else 1 for c in body)
    return 1 if units <= 160 else math.ceil(units / 153)


def _valid_sender(sender: str) -> bool:
    if re.fullmatch(r"\+?\d{1,15}", sender):
        return True
    return re.fullmatch(r"[A-Za-z0-9&_ ]{1,11}", sender) is not None


def send(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """EnviarSMSCERTIFICADO."""
    account = core.state.account(user)
    missing = [name for name in REQUIRED_SEND if req.text(name) is None]
    if missing:
        return _error(-3, "Required parameter is missing: " + ", ".join(missing), account.credits)
    sender = req.text("Remitente") or ""
    if not _valid_sender(sender):
        return _error(-3, "Remitente: up to 11 letters/digits/&/_ or 15 digits", account.credits)
    try:
        numbers = {name: req.integer(name) for name in (*_RANGES, "Tipocontrato", "Idmensaje")}
        raw_recipients = parse_recipients(req.get("Destinatarios"))
    except ParamError as exc:
        return _error(-3, str(exc), account.credits)
    for name, (low, high) in _RANGES.items():
        value = numbers[name]
        if value is not None and not low <= value <= high:
            return _error(-3, f"{name} must be between {low} and {high}", account.credits)
    if not raw_recipients:
        return _error(-3, "Destinatarios is empty", account.credits)
    phones: list[tuple[str, dict[str, str]]] = []
    for item in raw_recipients:
        phone = normalize_phone(item.get("movil", ""))
        if phone is None:
            return _error(-3, f"Invalid mobile: {item.get('movil', '')!r}", account.credits)
        phones.append((phone, {k: v for k, v in item.items() if k != "movil"}))
    now = core.clock.now()
    scheduled_at: float | None = None
    fecha = req.text("Fecha")
    if fecha is not None:
        scheduled_at = parse_provider(fecha)
        if scheduled_at is None:
            return _error(-3, "Fecha must be YYYY-MM-DD HH:mm", account.credits)
        if scheduled_at <= now:
            scheduled_at = None  # a past date sends now
    text = req.text("Mensaje") or ""
    contract_type = numbers["Tipocontrato"] or 0
    if contract_type and not _PDF_MACRO.search(text):
        return _error(-3, "Contract SMS needs a (FILE:…) or (BASE64:…) PDF", account.credits)
    files = tuple(name.strip() for name in _FILE_MACRO.findall(text))
    for name in files:
        if name.lower() not in account.files:
            return _error(-3, f"File not found in the library: {name}", account.credits)
    group: Message | None = None
    if numbers["Idmensaje"] is not None:
        group = core.state.messages.get(numbers["Idmensaje"])
        if group is None or group.user != user:
            return _error(-3, "Idmensaje does not exist", account.credits)
    seen = set(group.recipients) if group else set()
    to_send: list[tuple[str, dict[str, str]]] = []
    for phone, variables in phones:
        if phone not in seen:
            seen.add(phone)
            to_send.append((phone, variables))
    not_sent = len(phones) - len(to_send)
    parts = segments(text, unicode=bool(numbers["Unicode"]))
    cost_each = parts * core.config.credits_per_message
    needed = cost_each * len(to_send)
    if needed > account.credits:
        return Answer(
            {"Res": -2, "Cred": account.credits, "CreditosNecesarios": needed}, outcome="error"
        )
    message = group or Message(
        id=core.state.new_message_id(),
        user=user,
        sender=sender,
        text=text,
        reference=req.text("Referenciausuario") or req.text("Referencia") or "",
        contract_type=contract_type,
        created_at=now,
        scheduled_at=scheduled_at,
        cost_per_recipient=cost_each,
        files=files,
    )
    for phone, variables in to_send:
        recipient = Recipient(
            phone=phone,
            variables=variables,
            path=path_for(core, phone, message.contract_type),
            id_report=core.state.new_report_id(),
            result=SCHEDULED if scheduled_at else 0,
            scheduled_at=scheduled_at,
        )
        if scheduled_at:
            recipient.history.append((now, SCHEDULED))
        else:
            recipient.step = 0
            recipient.sent_at = now
            recipient.result = recipient.path[0]
            recipient.history.append((now, recipient.result))
        message.recipients[phone] = recipient
    core.state.messages[message.id] = message
    account.credits -= needed
    sent = parts * len(to_send)
    return Answer(
        {
            "Res": sent,
            "Destinatarios": len(to_send),
            "Msgid": message.id,
            "idMensaje": message.id,
            "Cred": account.credits,
            "Mensajes": sent,
            "NoEnviados": not_sent,
            "CreditosUsados": needed,
        },
        legacy_omit=V7_ONLY_FIELDS,
    )


def _own_message(core: SandboxCore, req: ParsedRequest, user: str) -> Message | None:
    message_id = req.integer("Idmensaje")
    message = core.state.messages.get(message_id) if message_id is not None else None
    return message if message is not None and message.user == user else None


def cancel(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """CancelarSMSCERTIFICADO: cancels the scheduled recipients (29), refunds credits."""
    account = core.state.account(user)
    try:
        message_id = req.integer("Idmensaje")
        message = _own_message(core, req, user)
    except ParamError as exc:
        return Answer({"Res": -3, "Error": str(exc), "CRED": account.credits}, outcome="error")
    if message_id is None:
        answer = {"Res": -3, "Error": "Required parameter is missing: Idmensaje"}
        return Answer({**answer, "CRED": account.credits}, outcome="error")
    if message is None:
        return Answer(
            {"Res": -2, "IDMENSAJE": message_id, "CRED": account.credits}, outcome="error"
        )
    scheduled = [r for r in message.recipients.values() if r.result == SCHEDULED and r.step < 0]
    if not scheduled:
        all_cancelled = all(r.result == CANCELLED for r in message.recipients.values())
        code = -5 if all_cancelled else -4
        return Answer(
            {"Res": code, "IDMENSAJE": message.id, "CRED": account.credits}, outcome="error"
        )
    for recipient in scheduled:
        set_status(core, message, recipient, CANCELLED)
    recovered = message.cost_per_recipient * len(scheduled)
    account.credits += recovered
    return Answer(
        {
            "Res": len(scheduled),
            "IDMENSAJE": message.id,
            "CRED": account.credits,
            "CREDR": recovered,
        }
    )


def reschedule(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """ReprogramarSMSCERTIFICADO: a new future Fecha for a scheduled message."""
    account = core.state.account(user)
    missing = [name for name in ("Idmensaje", "Fecha") if req.text(name) is None]
    if missing:
        return _error(-3, "Required parameter is missing: " + ", ".join(missing), account.credits)
    try:
        message = _own_message(core, req, user)
    except ParamError as exc:
        return _error(-3, str(exc), account.credits)
    if message is None:
        return Answer({"Res": -2, "Cred": account.credits}, outcome="error")
    recipients = list(message.recipients.values())
    if all(r.result == CANCELLED for r in recipients):
        return Answer({"Res": -5, "Cred": account.credits}, outcome="error")
    scheduled = [r for r in recipients if r.result == SCHEDULED and r.step < 0]
    if not scheduled:
        return Answer({"Res": -4, "Cred": account.credits}, outcome="error")
    new_at = parse_provider(req.text("Fecha") or "")
    if new_at is None or new_at <= core.clock.now():
        return _error(-6, "Fecha must be a future YYYY-MM-DD HH:mm", account.credits)
    for recipient in scheduled:
        recipient.scheduled_at = new_at
    message.scheduled_at = new_at
    return Answer({"Res": 1, "Cred": account.credits})
