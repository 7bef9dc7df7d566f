"""Phone numbers: one canonical form, one validity rule, one mask for messages.

The canonical form is what job records, callbacks, reports and evidence file names
use as a recipient's key: the number without whitespace and without a leading
``+`` or ``00`` (``+34 600 123 456`` → ``34600123456``). Canonicalising never
fails; :func:`phone_problem` says whether the result is a number we may send to.
"""

from __future__ import annotations

import re

import phonenumbers

PHONE_MIN_DIGITS = 8
PHONE_MAX_DIGITS = 15
_DIGITS_RE = re.compile(r"^[0-9]+$")
_PLAUSIBLE_RE = re.compile(r"^[0-9]{4,20}$")


def canonical_phone(raw: str) -> str:
    """``raw`` without whitespace and without a leading ``+`` or ``00``; never fails."""
    text = "".join(str(raw).split())
    if text.startswith("+"):
        return text[1:]
    if text.startswith("00"):
        return text[2:]
    return text


def is_plausible_phone(phone: str) -> bool:
    """Whether a canonical phone is 4–20 digits: enough to key a recipient we did not
    choose (callbacks, report entries, evidence file names); sends use :func:`phone_problem`."""
    return _PLAUSIBLE_RE.match(phone) is not None


def phone_problem(raw: str) -> str | None:
    """Why ``raw`` is not a phone we may send to, or None.

    After :func:`canonical_phone`, 8–15 digits must remain. A number starting with
    34 must be a valid Spanish number (``phonenumbers``); 9 digits starting 6–9
    that are not valid internationally are a Spanish number without its 34;
    others must have a possible length for their country code.
    """
    phone = canonical_phone(raw)
    if not phone:
        return "is empty"
    if not _DIGITS_RE.match(phone):
        return "must contain only digits after removing spaces, '+' and '00'"
    if not PHONE_MIN_DIGITS <= len(phone) <= PHONE_MAX_DIGITS:
        return (
            f"must have {PHONE_MIN_DIGITS}–{PHONE_MAX_DIGITS} digits with the country code, "
            f"has {len(phone)}"
        )
    try:
        number = phonenumbers.parse("+" + phone)
    except phonenumbers.NumberParseException as exc:
        return f"is not a phone number ({exc})"
    if phone.startswith("34"):
        return None if phonenumbers.is_valid_number(number) else "is not a valid Spanish number"
    if len(phone) == 9 and phone[0] in "6789" and not phonenumbers.is_valid_number(number):
        return "looks like a Spanish number without its country code 34"
    if not phonenumbers.is_possible_number(number):
        return "is not a possible international number (country code + number)"
    return None


def mask_phone(phone: str) -> str:
    """A phone shortened for problem messages: ``34600123456`` → ``3460…56``."""
    return f"{phone[:4]}…{phone[-2:]}" if len(phone) > 6 else "…"
