"""Yes/no values: one set of strings for answers, callbacks, payloads and job options."""

from __future__ import annotations

from typing import Any

import pytest

from certsms.mensatek.values import FALSE_STRINGS, TRUE_STRINGS, parse_bool


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("1", True),
        ("Si", True),
        ("SÍ", True),
        (" yes ", True),
        ("y", True),
        ("s", True),
        ("on", True),
        (True, True),
        (1, True),
        (1.0, True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("n", False),
        ("OFF", False),
        ("", False),
        (False, False),
        (0, False),
        ("quizá", None),
        ("2", None),
        (2, None),
        (None, None),
        ([1], None),
    ],
)
def test_parse_bool_reads_every_accepted_spelling(value: Any, expected: bool | None) -> None:
    """Booleans, 0/1 and the yes/no strings (any case, spaces around) read as bools."""
    assert parse_bool(value) is expected


def test_true_and_false_strings_do_not_overlap() -> None:
    """No spelling means both yes and no."""
    assert not TRUE_STRINGS & FALSE_STRINGS
    assert all(text == text.strip().lower() for text in TRUE_STRINGS | FALSE_STRINGS)
