"""Provider dates in Europe/Madrid: formatting, parsing, the 2026 DST gap and fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certsms.mensatek.dates import (
    MADRID,
    is_ambiguous,
    is_nonexistent,
    parse_callback_datetime,
    parse_provider_datetime,
    to_provider_datetime,
)

FORMAT_CASES = [
    # (aware datetime, provider text)
    (datetime(2026, 1, 15, 10, 0, tzinfo=UTC), "2026-01-15 11:00"),
    (datetime(2026, 7, 1, 10, 0, tzinfo=UTC), "2026-07-01 12:00"),
    (datetime(2026, 7, 1, 10, 0, 59, 999, tzinfo=UTC), "2026-07-01 12:00"),
    (datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-07-01 19:00"),
    # spring forward (2026-03-29 01:00 UTC): 02:00-02:59 Madrid never appears
    (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "2026-03-29 01:59"),
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29 03:00"),
    # fall back (2026-10-25 01:00 UTC): 02:00-02:59 Madrid appears twice
    (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25 02:30"),
    (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25 02:30"),
    (datetime(2026, 10, 25, 2, 30, tzinfo=UTC), "2026-10-25 03:30"),
]


@pytest.mark.parametrize(("value", "text"), FORMAT_CASES)
def test_to_provider_datetime_writes_madrid_wall_time(value: datetime, text: str) -> None:
    """An aware datetime is written as Madrid wall time to the minute."""
    assert to_provider_datetime(value) == text


def test_to_provider_datetime_refuses_naive() -> None:
    """A naive datetime is refused instead of guessing its zone."""
    with pytest.raises(ValueError, match="naive"):
        to_provider_datetime(datetime(2026, 5, 1, 10, 0))


PARSE_CASES = [
    # (text, expected UTC instant, expected Madrid wall time)
    ("2026-01-15 11:00", datetime(2026, 1, 15, 10, 0, tzinfo=UTC), "2026-01-15 11:00:00"),
    ("2026-07-01 12:00:30", datetime(2026, 7, 1, 10, 0, 30, tzinfo=UTC), "2026-07-01 12:00:30"),
    # gap: shifted forward by the hour
    ("2026-03-29 02:30", datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "2026-03-29 03:30:00"),
    ("2026-03-29 02:00", datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29 03:00:00"),
    ("2026-03-29 03:00", datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29 03:00:00"),
    # fold: the first occurrence (CEST, +02:00)
    ("2026-10-25 02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25 02:30:00"),
    ("2026-10-25 03:00", datetime(2026, 10, 25, 2, 0, tzinfo=UTC), "2026-10-25 03:00:00"),
]


@pytest.mark.parametrize(("text", "instant", "wall"), PARSE_CASES)
def test_parse_provider_datetime_handles_gap_and_fold(
    text: str, instant: datetime, wall: str
) -> None:
    """Provider text becomes an aware Madrid datetime; gap times move forward, folds take CEST."""
    parsed = parse_provider_datetime(text)
    assert parsed.tzinfo is MADRID
    assert parsed.astimezone(UTC) == instant
    assert parsed.strftime("%Y-%m-%d %H:%M:%S") == wall


@pytest.mark.parametrize(
    "text", ["2026-05-01T10:00", "2026-02-30 10:00", "2026/05/01 10:00", "2026-05-01", "", "x"]
)
def test_parse_provider_datetime_refuses_other_formats(text: str) -> None:
    """Anything but 'YYYY-MM-DD HH:MM[:SS]' with a real date is refused."""
    with pytest.raises(ValueError):
        parse_provider_datetime(text)


CALLBACK_CASES = [
    # (callback text, expected UTC instant): every spelling goes through the same gap/fold rule
    ("2026-01-15 11:00:05", datetime(2026, 1, 15, 10, 0, 5, tzinfo=UTC)),
    ("2026-01-15 11:00", datetime(2026, 1, 15, 10, 0, tzinfo=UTC)),
    ("2026-01-15T11:00:05", datetime(2026, 1, 15, 10, 0, 5, tzinfo=UTC)),
    ("20260115110005", datetime(2026, 1, 15, 10, 0, 5, tzinfo=UTC)),
    ("2026-03-29 02:30:00", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # gap: 03:30 CEST
    ("20260329023000", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
    ("2026-10-25T02:30:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # fold: first, CEST
]


@pytest.mark.parametrize(("text", "instant"), CALLBACK_CASES)
def test_parse_callback_datetime_shares_the_gap_and_fold_rule(text: str, instant: datetime) -> None:
    """Callback spellings are Madrid wall times read with the provider-date rule."""
    parsed = parse_callback_datetime(text)
    assert parsed.tzinfo is MADRID
    assert parsed.astimezone(UTC) == instant


@pytest.mark.parametrize("text", ["yesterday", "2026-02-30 10:00:00", "2026/05/01 10:00", ""])
def test_parse_callback_datetime_refuses_non_dates(text: str) -> None:
    """Text that is no date, or no real date, is refused."""
    with pytest.raises(ValueError):
        parse_callback_datetime(text)


def test_gap_and_fold_detection() -> None:
    """The helpers recognise the 2026 spring gap and autumn fold and nothing else."""
    assert is_nonexistent(datetime(2026, 3, 29, 2, 30, tzinfo=MADRID))
    assert not is_nonexistent(datetime(2026, 3, 29, 3, 30, tzinfo=MADRID))
    assert is_ambiguous(datetime(2026, 10, 25, 2, 30))
    assert not is_ambiguous(datetime(2026, 10, 25, 3, 30))
    assert not is_ambiguous(datetime(2026, 3, 29, 2, 30))


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    )
)
def test_round_trip_keeps_the_minute_except_the_second_fold_hour(value: datetime) -> None:
    """Formatting then parsing gives the same minute; a second-occurrence fold time comes back
    as the first occurrence, one hour earlier (the provider's format cannot tell them apart)."""
    minute = value.replace(second=0, microsecond=0)
    back = parse_provider_datetime(to_provider_datetime(value)).astimezone(UTC)
    local = minute.astimezone(MADRID)
    if local.fold == 1 and is_ambiguous(local.replace(tzinfo=None)):
        assert back == minute - timedelta(hours=1)
    else:
        assert back == minute
