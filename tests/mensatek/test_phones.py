"""Phones: the one canonical form, the sending rule, the plausibility check and the mask."""

from __future__ import annotations

import pytest

from certsms.mensatek.phones import canonical_phone, is_plausible_phone, mask_phone, phone_problem


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("34600000000", "34600000000"),
        ("+34600000000", "34600000000"),
        ("0034600000000", "34600000000"),
        ("+34 600 000 000", "34600000000"),
        (" 34 912 345 678 ", "34912345678"),
        ("0034 600\t000\n000", "34600000000"),
        ("+49 1512 3456789", "4915123456789"),
        ("600123456", "600123456"),  # no country code: kept as given (validation says why)
        ("+0034600000000", "0034600000000"),  # only one prefix is removed
        ("34-600-000-000", "34-600-000-000"),  # separators other than spaces are kept
        ("", ""),
    ],
)
def test_canonical_phone_removes_spaces_and_one_international_prefix(
    raw: str, canonical: str
) -> None:
    """Whitespace anywhere and one leading '+' or '00' are removed; nothing else changes."""
    assert canonical_phone(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "34600000000",
        "+34 600 000 000",
        "0034600000000",
        "351912345678",
        "+49 1512 3456789",
        "+500 51234",  # 8 digits, the shortest accepted (Falkland Islands)
    ],
)
def test_phone_problem_accepts_international_numbers(raw: str) -> None:
    """Valid numbers with their country code, in any accepted spelling, have no problem."""
    assert phone_problem(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("34-600-000-000", "only digits"),
        ("3460000", "8–15 digits"),
        ("1234567890123456", "8–15 digits"),
        ("34500000000", "valid Spanish"),
        ("600123456", "country code 34"),
    ],
)
def test_phone_problem_says_why_a_number_is_refused(raw: str, reason: str) -> None:
    """Bad phones get a problem text saying why."""
    problem = phone_problem(raw)
    assert problem is not None
    assert reason in problem


@pytest.mark.parametrize(
    ("phone", "plausible"),
    [
        ("34600123456", True),
        ("3460", True),
        ("346", False),
        ("1" * 21, False),
        ("34600-123", False),
        ("+34600123456", False),
        ("３４６００", False),
    ],
)
def test_is_plausible_phone_wants_four_to_twenty_ascii_digits(phone: str, plausible: bool) -> None:
    """A canonical phone of 4–20 ASCII digits is plausible; anything else is not."""
    assert is_plausible_phone(phone) is plausible


@pytest.mark.parametrize(
    ("phone", "masked"), [("34600123456", "3460…56"), ("1234567", "1234…67"), ("123456", "…")]
)
def test_mask_phone_keeps_four_leading_and_two_trailing_digits(phone: str, masked: str) -> None:
    """Problem messages show a phone shortened; short phones are hidden entirely."""
    assert mask_phone(phone) == masked
