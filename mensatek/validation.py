"""Local validation: nothing the provider would reject is sent, and every problem is reported.

Each rule yields a :class:`~mensatek.errors.FieldProblem` naming the provider's
field, the Python field and the rule. The rules (and the decisions where the
provider's behaviour is unknown) are listed in ``docs/readme/31-validation.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import phonenumbers
from stdnum.es import cif, nie, nif

from mensatek.errors import FieldProblem
from mensatek.gsm import analyze_text
from mensatek.macros import macro_problems, parse_macros, strip_macros
from mensatek.requests import RECIPIENT_KEYS, Recipient, SendRequest, canonical_phone

PHONE_MIN_DIGITS = 8
PHONE_MAX_DIGITS = 15
REFERENCE_MAX_CHARS = 100
EMAIL_MAX_CHARS = 254
FOREIGN_TAX_ID_RE = re.compile(r"^[A-Z0-9]{2,20}$")
SENDER_ALNUM_RE = re.compile(r"^[A-Za-z0-9&_]{1,11}$")
SENDER_NUMERIC_RE = re.compile(r"^\+?[0-9]{1,15}$")
CONTACT_PHONE_RE = re.compile(r"^\+?[0-9 ().-]{6,25}$")
EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
_DIGITS_RE = re.compile(r"^[0-9]+$")
_TAX_SEPARATORS_RE = re.compile(r"[\s.\-/]")
RANGES: dict[str, tuple[str, int, int]] = {
    # python name: (provider name, min, max), both inclusive
    "validity_days": ("Vpd", 1, 20),
    "validity_hours": ("Vph", 0, 23),
    "validity_minutes": ("Vpm", 0, 59),
    "acceptance_days": ("Aceptacion", 0, 15),
}


def normalize_phone(raw: str) -> str:
    """Return the phone as international digits (``34600000000``) or raise ``ValueError``.

    Spaces, a leading ``+`` or ``00`` are removed; 8–15 digits must remain. A
    number starting with 34 must be a valid Spanish number (``phonenumbers``);
    others must have a possible length for their country code.
    """
    phone = canonical_phone(raw)
    if not phone:
        raise ValueError("is empty")
    if not _DIGITS_RE.match(phone):
        raise ValueError("must contain only digits after removing spaces, '+' and '00'")
    if not PHONE_MIN_DIGITS <= len(phone) <= PHONE_MAX_DIGITS:
        raise ValueError(
            f"must have {PHONE_MIN_DIGITS}–{PHONE_MAX_DIGITS} digits with the country code, "
            f"has {len(phone)}"
        )
    try:
        number = phonenumbers.parse("+" + phone)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number ({exc})") from exc
    if phone.startswith("34"):
        if not phonenumbers.is_valid_number(number):
            raise ValueError("is not a valid Spanish number")
    elif len(phone) == 9 and phone[0] in "6789" and not phonenumbers.is_valid_number(number):
        raise ValueError("looks like a Spanish number without its country code 34")
    elif not phonenumbers.is_possible_number(number):
        raise ValueError("is not a possible international number (country code + number)")
    return phone


def mask_phone(phone: str) -> str:
    """A phone shortened for problem messages: ``3460…67``."""
    return f"{phone[:4]}…{phone[-2:]}" if len(phone) > 6 else "…"


def sender_problem(sender: str) -> str | None:
    """Why ``Remitente`` is unacceptable, or None."""
    if not sender:
        return "is required (the account's default sender is not used implicitly)"
    if SENDER_ALNUM_RE.match(sender) or SENDER_NUMERIC_RE.match(sender):
        return None
    return (
        "must be up to 11 letters, digits, '&' or '_' (ASCII, no spaces), "
        "or up to 15 digits with an optional '+'"
    )


def tax_id_problem(tax_id: str, *, foreign: bool) -> str | None:
    """Why ``Cifcontacto`` is unacceptable, or None (Spanish NIF/NIE/CIF via stdnum)."""
    compact = _TAX_SEPARATORS_RE.sub("", tax_id).upper()
    if not compact:
        return "is required"
    if nif.is_valid(compact) or nie.is_valid(compact) or cif.is_valid(compact):
        return None
    if foreign:
        if FOREIGN_TAX_ID_RE.match(compact):
            return None
        return "a foreign tax id must be 2–20 letters or digits"
    return (
        "is not a valid Spanish NIF, NIE or CIF (check the control character); "
        "set foreign_tax_id=True for a foreign tax id"
    )


def future_problem(value: datetime, *, now: datetime) -> str | None:
    """Why a scheduled date is unacceptable (naive, or not after ``now`` at minute precision)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "must be timezone-aware"
    if value.replace(second=0, microsecond=0) <= now:
        return "must be in the future (the provider takes minutes: seconds are dropped)"
    return None


def _char_list(chars: Iterable[str]) -> str:
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars)


def recipient_problems(recipients: tuple[Recipient, ...]) -> list[FieldProblem]:
    """Problems of ``Destinatarios``: none given, bad phones, duplicates, unknown variables."""
    problems: list[str] = []
    if not recipients:
        problems.append("at least one recipient is required")
    first_seen: dict[str, int] = {}
    for index, recipient in enumerate(recipients, start=1):
        try:
            phone = normalize_phone(recipient.phone)
        except ValueError as exc:
            problems.append(f"recipient #{index} ({mask_phone(recipient.phone)}): Movil {exc}")
            continue
        if phone in first_seen:
            problems.append(
                f"recipient #{index} ({mask_phone(phone)}) duplicates recipient "
                f"#{first_seen[phone]}"
            )
        else:
            first_seen[phone] = index
        unknown = sorted(set(recipient.variables) - set(RECIPIENT_KEYS[1:]))
        if unknown:
            problems.append(
                f"recipient #{index}: unknown variables {unknown}; allowed: "
                + ", ".join(RECIPIENT_KEYS[1:])
            )
    return [FieldProblem("Destinatarios", "recipients", text) for text in problems]


def message_problems(req: SendRequest) -> list[FieldProblem]:
    """Problems of ``Mensaje``: empty, bad macros, missing contract PDF, characters outside GSM."""
    texts: list[str] = []
    if not req.message.strip():
        return [FieldProblem("Mensaje", "message", "is required")]
    macros = parse_macros(req.message)
    for macro in macros:
        texts.extend(macro_problems(macro))
    if req.contract_type != 0 and not any(macro.is_pdf for macro in macros):
        texts.append(
            "a Contract SMS (Tipocontrato != 0) must carry its PDF: (FILE:2:name.pdf) "
            "or (BASE64:2:<base64 of the PDF>)"
        )
    if not req.unicode:
        analysis = analyze_text(strip_macros(req.message, macros))
        if analysis.transliterated and not req.transliterate:
            pairs = ", ".join(f"{k!r}→{v!r}" for k, v in analysis.transliterated.items())
            texts.append(
                f"characters outside GSM 03.38 that the provider would change: {pairs}; "
                "set transliterate=True to convert them, or Unicode=1"
            )
        if analysis.non_gsm:
            texts.append(
                f"characters outside GSM 03.38 need Unicode=1: {_char_list(analysis.non_gsm)}"
            )
    return [FieldProblem("Mensaje", "message", text) for text in texts]


def validate_send(req: SendRequest, *, now: datetime) -> list[FieldProblem]:
    """Return every problem of a send request (empty when it may be sent)."""
    problems = recipient_problems(req.recipients) + message_problems(req)

    def add(provider: str, python: str, message: str | None) -> None:
        if message:
            problems.append(FieldProblem(provider, python, message))

    add("Remitente", "sender", sender_problem(req.sender))
    add("Contacto", "contact", None if req.contact.strip() else "is required")
    if not req.contact_phone.strip():
        add("Telcontacto", "contact_phone", "is required")
    elif not CONTACT_PHONE_RE.match(req.contact_phone.strip()):
        add("Telcontacto", "contact_phone", "must be a phone number (digits, spaces, '+')")
    add(
        "Cifcontacto",
        "contact_tax_id",
        tax_id_problem(req.contact_tax_id, foreign=req.foreign_tax_id),
    )
    if req.contract_type < 0:
        add("Tipocontrato", "contract_type", "must be 0 (Certified SMS) or a contract type > 0")
    for python, (provider, low, high) in RANGES.items():
        value = getattr(req, python)
        if value is not None and not low <= value <= high:
            add(provider, python, f"must be between {low} and {high}, got {value}")
    if req.contract_type != 0:
        if req.identify is not None:
            add("Identificar", "identify", "is only for Certified SMS (Tipocontrato 0)")
        if req.acceptance_days:
            add("Aceptacion", "acceptance_days", "is only for Certified SMS (Tipocontrato 0)")
    if req.identify is not None and not req.identify.strip():
        add("Identificar", "identify", "must not be empty when given")
    if req.scheduled_at is not None:
        add("Fecha", "scheduled_at", future_problem(req.scheduled_at, now=now))
    if req.reference is not None:
        if not req.reference.strip():
            add("Referenciausuario", "reference", "must not be empty when given")
        elif len(req.reference) > REFERENCE_MAX_CHARS:
            add(
                "Referenciausuario",
                "reference",
                f"must be at most {REFERENCE_MAX_CHARS} characters",
            )
    if req.message_group_id is not None and req.message_group_id <= 0:
        add("Idmensaje", "message_group_id", "must be a positive message id")
    if req.email_report is not None and (
        len(req.email_report) > EMAIL_MAX_CHARS or not EMAIL_RE.match(req.email_report)
    ):
        add("Emailreport", "email_report", "must be one valid email address")
    return problems
