"""The one answer-to-error mapping, as a table over functions and Res codes."""

from __future__ import annotations

import pytest

from mensatek.answers import FUNCTIONS, error_for_answer, error_for_status, parse_retry_after
from mensatek.errors import (
    AuthenticationFailed,
    BadDate,
    BadRequestData,
    FileLibraryError,
    InsufficientCredits,
    MensatekError,
    NotCancellable,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
)
from mensatek.parsing import Answer

ROWS: list[tuple[str, int, type[MensatekError]]] = (
    [(f, -1, AuthenticationFailed) for f in FUNCTIONS]
    + [(f, -3, BadRequestData) for f in FUNCTIONS]
    + [
        ("send", -2, InsufficientCredits),
        ("send", 0, ProviderRejected),
        ("send", -50, ProviderRejected),
        ("cancel", -2, NotFound),
        ("cancel", -4, NotCancellable),
        ("cancel", -5, NotCancellable),
        ("cancel", -6, ProviderRejected),
        ("reschedule", -2, NotFound),
        ("reschedule", -4, NotCancellable),
        ("reschedule", -5, NotCancellable),
        ("reschedule", -6, BadDate),
        ("report", -4, NotFound),
        ("certificate", -4, NotFound),
        ("delete_file", -2, NotFound),
        ("upload", -2, BadRequestData),
        ("list_files", -2, ProviderRejected),
    ]
    + [("upload", res, FileLibraryError) for res in range(-18, -9)]
)


@pytest.mark.parametrize(("function", "res", "error_class"), ROWS)
def test_negative_res_maps_to_its_error(
    function: str, res: int, error_class: type[MensatekError]
) -> None:
    """Each documented Res maps to exactly its class and carries the answer's context."""
    answer = Answer({"Res": str(res), "Error": "Required parameter is missing", "Cred": "5"})
    error = error_for_answer(function, answer, http_status=200, request_id="rid")
    assert type(error) is error_class
    assert (error.function, error.res, error.http_status, error.request_id) == (
        function,
        res,
        200,
        "rid",
    )
    assert error.provider_text == "Required parameter is missing"


def test_insufficient_credits_carries_credits_needed() -> None:
    """A send's Res -2 carries ``CreditosNecesarios`` (or the v5 ``CredNecesarios``)."""
    for key in ("CreditosNecesarios", "CredNecesarios"):
        error = error_for_answer("send", Answer({"Res": "-2", key: "18"}))
        assert isinstance(error, InsufficientCredits) and error.credits_needed == 18.0


@pytest.mark.parametrize(
    ("function", "fields"),
    [
        ("send", {"Res": "3"}),
        ("cancel", {"Res": "0"}),
        ("report", {"Res": 1}),
        ("credits", {"Cred": "12000"}),
        ("reschedule", {"Resp": "1"}),
    ],
)
def test_successful_answers_map_to_no_error(function: str, fields: dict[str, object]) -> None:
    """Positive Res, a cancel of zero, and a v5 credits answer without Res are successes."""
    assert error_for_answer(function, Answer(fields), http_status=200) is None


def test_answers_without_res_are_unavailable_except_v5_credits() -> None:
    """An answer without a usable Res is unhealthy; credits' ``Cred`` -1 is an auth failure."""
    assert isinstance(error_for_answer("report", Answer({"Cred": "1"})), ProviderUnavailable)
    assert isinstance(error_for_answer("credits", Answer({"Cred": "-1"})), AuthenticationFailed)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, AuthenticationFailed),
        (403, ProviderUnavailable),
        (429, ProviderUnavailable),
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (200, type(None)),
        (404, type(None)),
    ],
)
def test_http_status_maps_before_the_body(status: int, error_class: type) -> None:
    """401 is auth, 403/429/5xx are unavailability; other statuses are judged by their body."""
    error = error_for_status("report", status, retry_after_s=2.0, request_id="r")
    assert type(error) is error_class
    if isinstance(error, ProviderUnavailable):
        assert error.retry_after_s == 2.0


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    """``Retry-After`` may be seconds or an HTTP date; garbage is ignored."""
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now_s=40.0) == 60.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
