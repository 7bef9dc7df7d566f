"""The recipient cap: counted in every payload shape without reading a recipient."""

from __future__ import annotations

import pytest

from certsms.mensatek.validation import count_recipients, recipient_count_problem


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        ({"Destinatarios": [{"Movil": "34600000001"}, {"Movil": "34600000002"}]}, 2),
        ({"recipients": ["34600000001"]}, 1),
        ({"destinatarios": '[{"Movil": "1"}, {"Movil": "2"}, {"Movil": "3"}]'}, 3),
        ({"Destinatarios": "34600000001,34600000002;34600000003"}, 3),
        ({"Destinatarios": {"Movil": "34600000001"}}, 1),
        ({"Destinatarios": "[not json"}, 0),
        ({}, 0),
    ],
)
def test_count_recipients_reads_every_shape(payload: dict[str, object], count: int) -> None:
    """Lists, JSON text, separated text and a single object are all counted."""
    assert count_recipients(payload) == count


def test_more_than_the_cap_is_a_problem_on_destinatarios() -> None:
    """One over the cap names Destinatarios, the count and the cap; the cap itself is fine."""
    payload = {"Destinatarios": [{"Movil": f"3460000{n:04d}"} for n in range(11)]}
    problem = recipient_count_problem(payload, max_recipients=10)
    assert problem is not None and problem.provider_name == "Destinatarios"
    assert "11" in problem.message and "at most 10" in problem.message
    assert recipient_count_problem(payload, max_recipients=11) is None
