"""EnviarSMSCERTIFICADO: validation, recipients sent and not sent, credits, attachments.

Answer of a send (docs/provider.md §2.1, Res codes §3.1): ``Res`` = SMS parts sent,
``Destinatarios`` = recipients sent, ``Mensajes``, ``NoEnviados``,
``CreditosUsados`` = parts × ``credits_per_message``, ``Cred`` after the send.

Not sent ("Normally because the recipient is duplicated or because the mobile is
not correct"): the rest of the request is sent, ``NoEnviados`` counts recipients
(not SMS parts), and nothing is charged for them.

- a mobile repeated in the request (``duplicate``) or already in the group of
  ``Idmensaje`` (``already_in_group``) is skipped: it is absent from the message
  (its one entry is the one sent);
- a mobile listed in ``invalid_phones`` (``invalid_phone``: the sandbox deems it
  "not correct") is kept in the message with Resultado 104 "El teléfono no es
  correcto", never progresses, gets no status callback and no certificate, and
  appears in ``GetReportSMSCERTIFICADO`` (``Tiempo`` 0). A malformed mobile (not
  9–15 digits) still fails the whole request with ``Res -3``.

When nothing is sent, ``Res`` is 0. Lack of credits (the credits are below what
the recipients to send cost) sends nothing and answers ``Res``
``no_credit_res`` (-2 by default; 0 or another negative code by config) with
``CreditosNecesarios`` = the credits the whole send needs, and ``Cred``.

``Report=1`` (any case of the name, string or int) is remembered per recipient:
with ``report_gates_callbacks`` only those get status callbacks. ``Links=1``
decides whether macros are macros when ``links_need_flag`` is on (see
:mod:`sandbox.macros`); a send under an existing ``Idmensaje`` joins that
message (its text, macros and attachments), only ``Report`` is per send.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from certsms.sandbox import strict
from certsms.sandbox.clock import parse_provider
from certsms.sandbox.macros import (
    DOCUMENT_TYPES,
    Attachment,
    Macro,
    as_sms_text,
    find_macros,
    inline_name,
    inline_pdf,
)
from certsms.sandbox.parsing import ParamError, ParsedRequest, normalize_phone, parse_recipients
from certsms.sandbox.progression import path_for
from certsms.sandbox.rendering import V7_ONLY_FIELDS, Answer
from certsms.sandbox.state import Account, LibraryFile, Message, Recipient
from certsms.sandbox.statuses import NOT_SENT, SCHEDULED

if TYPE_CHECKING:
    from certsms.sandbox.core import SandboxCore

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
_GSM_EXT = set("^{}\\[~]|€")
Selected = list[tuple[str, dict[str, str]]]


def _error(res: int, text: str, credits: float) -> Answer:
    return Answer({"Res": res, "Error": text, "Cred": credits}, outcome="error")


def segments(text: str, *, unicode: bool, macros: bool = True) -> int:
    """SMS parts a text costs: GSM 160/153 (extension chars count 2), Unicode 70/67.

    Interpreted macros (``macros``) count as the short link they become; macros
    kept as text count as their characters. Non-GSM characters without
    ``Unicode=1`` are transliterated by the provider, so they count as one.
    """
    body = as_sms_text(text, interpreted=macros)
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
    config = core.config
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
    phones: Selected = []
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
        if config.strict and strict.fecha_in_past(scheduled_at, now):
            text = f"Fecha is in the past (Madrid time): {fecha}"
            return strict.refusal("fecha_past", text, Cred=account.credits)
        if scheduled_at <= now:
            scheduled_at = None  # a past date sends now
    text = req.text("Mensaje") or ""
    macros = find_macros(text)
    links = numbers["Links"] == 1
    interpreted = links or not config.links_need_flag
    documents = [m for m in macros if m.kind in DOCUMENT_TYPES] if interpreted else []
    contract_type = numbers["Tipocontrato"] or 0
    if contract_type in config.pdf_contract_types and not documents:
        hint = " (macros are plain text without Links=1)" if macros and not interpreted else ""
        return _error(-3, f"Contract SMS needs a (FILE:…) or (BASE64:…) PDF{hint}", account.credits)
    for macro in documents:
        if macro.kind == "FILE" and macro.content.lower() not in account.files:
            text_error = f"File not found in the library: {macro.content}"
            return _error(-3, text_error, account.credits)
    group: Message | None = None
    if numbers["Idmensaje"] is not None:
        group = core.state.messages.get(numbers["Idmensaje"])
        if group is None or group.user != user:
            return _error(-3, "Idmensaje does not exist", account.credits)
    kept, not_sent = _select(core, phones, group)
    to_send = [(phone, variables) for phone, variables, reason in kept if reason is None]
    parts = segments(text, unicode=bool(numbers["Unicode"]), macros=interpreted)
    cost_each = parts * config.credits_per_message
    needed = cost_each * len(to_send)
    if needed > account.credits:
        return Answer(
            {"Res": config.no_credit_res, "Cred": account.credits, "CreditosNecesarios": needed},
            outcome="no_credit",
        )
    report = numbers["Report"] == 1
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
        report=report,
        links=links,
        macros=tuple(macros),
        macros_as_text=bool(macros) and not interpreted,
    )
    if group is None and to_send:
        message.attachments = _attach(core, account, message.id, documents)
    for phone, variables, reason in kept:  # in the request's order
        message.recipients[phone] = _recipient(
            core, message, phone, variables, reason, scheduled_at, report=report
        )
    message.not_sent.extend(not_sent)
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
            "NoEnviados": len(not_sent),
            "CreditosUsados": needed,
        },
        legacy_omit=V7_ONLY_FIELDS,
    )


def _select(
    core: SandboxCore, phones: Selected, group: Message | None
) -> tuple[list[tuple[str, dict[str, str], str | None]], list[dict[str, str]]]:
    """The request's mobiles to keep (reason None: send; ``invalid_phone``: keep as 104),
    in order, and every mobile not sent with its reason."""
    not_correct = {normalize_phone(p) or p for p in core.config.invalid_phones}
    in_group = set(group.recipients) if group else set()
    in_request: set[str] = set()
    kept: list[tuple[str, dict[str, str], str | None]] = []
    not_sent: list[dict[str, str]] = []
    for phone, variables in phones:
        if phone in in_request or phone in in_group:
            reason = "duplicate" if phone in in_request else "already_in_group"
            not_sent.append({"phone": phone, "reason": reason})
            continue
        in_request.add(phone)
        if phone in not_correct:
            kept.append((phone, variables, "invalid_phone"))
            not_sent.append({"phone": phone, "reason": "invalid_phone"})
        else:
            kept.append((phone, variables, None))
    return kept, not_sent


def _recipient(
    core: SandboxCore,
    message: Message,
    phone: str,
    variables: dict[str, str],
    not_sent_reason: str | None,
    scheduled_at: float | None,
    *,
    report: bool,
) -> Recipient:
    """A new recipient: sending now, scheduled (Resultado 1), or not sent (104, final)."""
    now = core.clock.now()
    recipient = Recipient(
        phone=phone,
        variables=variables,
        path=path_for(core, phone, message.contract_type),
        id_report=core.state.new_report_id(),
        result=SCHEDULED if scheduled_at else 0,
        scheduled_at=scheduled_at,
        report=report,
        not_sent_reason=not_sent_reason,
    )
    if not_sent_reason is not None:
        recipient.path, recipient.result, recipient.step = (NOT_SENT,), NOT_SENT, 0
        recipient.scheduled_at = None
        recipient.history.append((now, NOT_SENT))
    elif scheduled_at:
        recipient.history.append((now, SCHEDULED))
    else:
        recipient.step = 0
        recipient.sent_at = now
        recipient.result = recipient.path[0]
        recipient.history.append((now, recipient.result))
    return recipient


def _attach(
    core: SandboxCore, account: Account, message_id: int, documents: list[Macro]
) -> tuple[Attachment, ...]:
    """The message's documents: library files copied, inline PDFs put in the library."""
    attachments: list[Attachment] = []
    inline_count = 0
    for macro in documents:
        if macro.kind == "FILE":
            entry = account.files[macro.content.lower()]
            attachments.append(Attachment("FILE", entry.name, entry.content))
            continue
        inline_count += 1
        name = inline_name(message_id, inline_count)
        content = inline_pdf(macro.content)
        account.files[name.lower()] = LibraryFile(
            name, content, core.clock.now(), auto_delete=True, inline=True
        )
        attachments.append(Attachment("BASE64", name, content))
    return tuple(attachments)
