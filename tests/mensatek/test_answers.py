"""The one answer-to-error mapping, as a table over functions and Res codes."""

from __future__ import annotations

import pytest

from certsms.mensatek.answers import (
    FUNCTIONS,
    error_for_answer,
    error_for_status,
    meaning,
    parse_retry_after,
)
from certsms.mensatek.errors import (
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
from certsms.mensatek.parsing import Answer

ROWS: list[tuple[str, int, type[MensatekError]]] = (
    [(f, -1, AuthenticationFailed) for f in FUNCTIONS]
    + [(f, -3, BadRequestData) for f in FUNCTIONS]
    + [
        ("send", -2, ProviderRejected),  # without CreditosNecesarios: not a credit signal
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


@pytest.mark.parametrize("res", ["0", "-2", "-7", None])
def test_lack_of_credit_is_recognised_by_creditos_necesarios_whatever_the_res(
    res: str | None,
) -> None:
    """``CreditosNecesarios`` in a send's answer means lack of credit with any (or no) Res."""
    fields = {"Cred": "5", "CreditosNecesarios": "18"} | ({"Res": res} if res else {})
    error = error_for_answer("send", Answer(fields))
    assert isinstance(error, InsufficientCredits)
    assert (error.credits_needed, error.credits_available) == (18.0, 5.0)


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


MEANINGS: list[tuple[str, int, str]] = [
    ("send", 0, "nothing was sent"),
    ("send", -2, "credits"),
    ("send", -1, "authentication"),
    ("cancel", -2, "unknown message"),
    ("cancel", -4, "already sent"),
    ("cancel", -5, "already cancelled"),
    ("reschedule", -2, "unknown message"),
    ("reschedule", -4, "already sent"),
    ("reschedule", -5, "already cancelled"),
    ("reschedule", -6, "date is not correct"),
    ("report", -4, "no data"),
    ("certificate", -4, "no certificate"),
    ("certificate", -3, "error in the call data"),
    ("upload", -2, "missing mandatory"),
    ("upload", -10, "storage capacity"),
    ("upload", -11, "format not allowed"),
    ("upload", -12, "BASE64"),
    ("upload", -13, "FILES mode"),
    ("upload", -14, "image format"),
    ("upload", -15, "Tipo"),
    ("upload", -16, "too large"),
    ("upload", -17, "upload error"),
    ("upload", -18, "trial"),
    ("delete_file", -2, "does not exist"),
    ("list_files", -2, "undocumented"),
    ("report", -9, "undocumented"),
]


@pytest.mark.parametrize(("function", "res", "words"), MEANINGS)
def test_meaning_names_each_documented_code(function: str, res: int, words: str) -> None:
    """Each documented (function, Res) has its provider meaning; others are undocumented."""
    assert words in meaning(function, res)


@pytest.mark.parametrize(
    ("status", "healthy"),
    [(None, True), (200, True), (204, True), (299, True), (199, False), (300, False), (404, False)],
)
def test_positive_res_outside_2xx_is_not_a_success(status: int | None, healthy: bool) -> None:
    """A positive Res counts as success only with a 2xx status (or none known); a
    non-2xx answer that says Res 1 is an unhealthy provider, not a sent message."""
    error = error_for_answer("send", Answer({"Res": "1"}), http_status=status)
    if healthy:
        assert error is None
    else:
        assert isinstance(error, ProviderUnavailable) and error.http_status == status
    cancelled_none = error_for_answer("cancel", Answer({"Res": "0"}), http_status=status)
    assert (cancelled_none is None) is healthy


def test_http_status_boundaries_of_unavailability() -> None:
    """499 is judged by its body, 500 and above are unavailable; 402 and 404 by the body."""
    assert error_for_status("send", 499) is None
    assert isinstance(error_for_status("send", 500), ProviderUnavailable)
    assert isinstance(error_for_status("send", 599), ProviderUnavailable)
    assert error_for_status("send", 402) is None


def test_credit_signal_only_for_a_send_without_positive_res() -> None:
    """``CreditosNecesarios`` on a sent message (positive Res) or on another function is
    not a lack of credit."""
    fields = {"Res": "1", "CreditosNecesarios": "18"}
    assert error_for_answer("send", Answer(fields), http_status=200) is None
    other = error_for_answer("report", Answer({"Res": "-4", "CreditosNecesarios": "1"}))
    assert type(other) is NotFound
    zero = error_for_answer("send", Answer({"Res": "0", "CreditosNecesarios": "3", "Cred": "1"}))
    assert isinstance(zero, InsufficientCredits) and zero.credits_available == 1.0


def test_credits_answer_without_res_is_healthy_unless_minus_one() -> None:
    """A v5 credits answer: any ``Cred`` but -1 is a success; no ``Cred`` is unavailable."""
    assert error_for_answer("credits", Answer({"Cred": "0"})) is None
    assert error_for_answer("credits", Answer({"Cred": "-2"})) is None
    assert isinstance(error_for_answer("credits", Answer({})), ProviderUnavailable)
    assert isinstance(error_for_answer("send", Answer({"Cred": "-1"})), ProviderUnavailable)


@pytest.mark.parametrize(
    ("function", "res", "error_class"),
    [
        ("upload", -9, ProviderRejected),
        ("upload", -19, ProviderRejected),
        ("delete_file", -4, ProviderRejected),
        ("report", -2, ProviderRejected),
        ("certificate", -5, ProviderRejected),
        ("cancel", -3, BadRequestData),
        ("reschedule", -7, ProviderRejected),
        ("send", -6, ProviderRejected),
        ("list_files", -4, ProviderRejected),
    ],
)
def test_codes_outside_the_table_map_to_the_generic_rejection(
    function: str, res: int, error_class: type[MensatekError]
) -> None:
    """A code the table does not name for that function is a plain ProviderRejected."""
    error = error_for_answer(function, Answer({"Res": str(res)}), http_status=200)
    assert type(error) is error_class
