"""Provider dates: ``YYYY-MM-DD HH:MM`` wall-clock time in Europe/Madrid (CET/CEST).

The provider's date parameters (``Fecha``, ``Fechainicio``, ``Fechafin``) carry no
offset, so the offset is lost on the wire. Two decisions follow (documented in
``docs/readme/31-validation.md``):

- **Gap** (spring forward, e.g. 2026-03-29 02:00–02:59 does not exist in Madrid):
  a non-existent wall time is shifted forward by the gap, ``02:30`` → ``03:30``
  CEST — the instant a clock that kept running would show.
- **Fold** (fall back, e.g. 2026-10-25 02:00–02:59 happens twice): an ambiguous
  wall time means its first occurrence (``fold=0``, CEST, UTC+2). Sending the
  second occurrence therefore reaches the provider as the first; it is an
  inherent ambiguity of the provider's format.

Seconds and microseconds are truncated when formatting (the provider takes minutes).
The same gap and fold rule reads every offset-less date: parameters and answers
(:func:`parse_provider_datetime`) and callbacks, which come in more spellings
(:func:`parse_callback_datetime`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

MADRID = ZoneInfo("Europe/Madrid")

#: Parameters and answers: ``YYYY-MM-DD HH:MM[:SS]``.
_PARAMETER_RE = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2}) (?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?$"
)
#: Callbacks: the parameter format (``T`` also separates date and time, one-digit fields
#: are tolerated) and ``YYYYMMDDHHMMSS``.
_CALLBACK_RES = (
    re.compile(
        r"^(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})[ T]"
        r"(?P<h>\d{1,2}):(?P<mi>\d{1,2})(?::(?P<s>\d{1,2}))?$"
    ),
    re.compile(r"^(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})$"),
)


def to_provider_datetime(value: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DD HH:MM`` in Madrid time (seconds dropped).

    Raises ``ValueError`` for a naive datetime: its zone would be a guess.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: give a timezone-aware datetime")
    return value.astimezone(MADRID).strftime("%Y-%m-%d %H:%M")


def is_provider_format(text: str) -> bool:
    """Tell whether ``text`` looks like ``YYYY-MM-DD HH:MM[:SS]`` (no offset)."""
    return _PARAMETER_RE.match(text.strip()) is not None


def parse_provider_datetime(text: str) -> datetime:
    """Parse ``YYYY-MM-DD HH:MM[:SS]`` as Madrid wall time into an aware datetime.

    A time in the spring-forward gap is shifted forward by the gap; a time in the
    autumn fold is the first occurrence (CEST). Raises ``ValueError`` on bad input.
    """
    return _parse_wall_time(text, (_PARAMETER_RE,))


def parse_callback_datetime(text: str) -> datetime:
    """Parse a callback's ``Fecha`` as Madrid wall time, with the same gap and fold rule.

    Accepts ``YYYY-MM-DD HH:MM[:SS]``, ``YYYY-MM-DDTHH:MM[:SS]`` and
    ``YYYYMMDDHHMMSS``. Raises ``ValueError`` on bad input.
    """
    return _parse_wall_time(text, _CALLBACK_RES)


def _parse_wall_time(text: str, patterns: tuple[re.Pattern[str], ...]) -> datetime:
    stripped = text.strip()
    match = next((m for m in (p.match(stripped) for p in patterns) if m is not None), None)
    if match is None:
        raise ValueError(f"not a provider date (YYYY-MM-DD HH:MM[:SS]): {text!r}")
    parts = {k: int(v) for k, v in match.groupdict(default="0").items()}
    local = datetime(
        parts["y"],
        parts["mo"],
        parts["d"],
        parts["h"],
        parts["mi"],
        parts["s"],
        tzinfo=MADRID,
        fold=0,
    )
    return normalize_madrid(local)


def normalize_madrid(value: datetime) -> datetime:
    """Return ``value`` as a real Madrid instant (a gap time moves forward by the gap).

    zoneinfo gives a non-existent time the offset in force before the gap (fold=0),
    so a round trip through UTC lands on the shifted-forward wall time.
    """
    return value.astimezone(UTC).astimezone(MADRID)


def is_nonexistent(value: datetime) -> bool:
    """Tell whether an aware Madrid wall time falls in a spring-forward gap."""
    return normalize_madrid(value).replace(tzinfo=None) != value.replace(tzinfo=None)


def is_ambiguous(value: datetime) -> bool:
    """Tell whether a Madrid wall time happens twice (autumn fold)."""
    first = value.replace(tzinfo=MADRID, fold=0).utcoffset()
    second = value.replace(tzinfo=MADRID, fold=1).utcoffset()
    return first != second and not is_nonexistent(value.replace(tzinfo=MADRID, fold=0))
