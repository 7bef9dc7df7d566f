"""The sandbox's clock: wall time plus an offset that tests can advance.

Everything time-based in the sandbox (scheduled sends, spam-block windows, the
date-range download interval, report dates) reads this clock, so a test moves
time with ``POST /_admin/clock`` instead of sleeping. Provider dates are
``YYYY-MM-DD HH:MM[:SS]`` in Europe/Madrid (docs/provider.md §1.3).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

MADRID = ZoneInfo("Europe/Madrid")


class Clock:
    """Epoch seconds from ``base`` (default ``time.time``) plus an adjustable offset."""

    def __init__(self, base: Callable[[], float] | None = None) -> None:
        self._base = base or time.time
        self._offset_s = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current sandbox time in epoch seconds."""
        return self._base() + self._offset_s

    def advance(self, seconds: float) -> float:
        """Move the sandbox time forward by ``seconds``; returns the new time."""
        with self._lock:
            self._offset_s += seconds
        return self.now()

    def reset(self) -> None:
        """Back to the base clock (offset 0)."""
        with self._lock:
            self._offset_s = 0.0

    @property
    def offset_s(self) -> float:
        """How far the sandbox is ahead of its base clock."""
        return self._offset_s


def to_provider(epoch_s: float, *, seconds: bool = True) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (or without seconds) in Madrid time."""
    moment = datetime.fromtimestamp(epoch_s, MADRID)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def parse_provider(text: str) -> float | None:
    """Epoch seconds of a provider date (Madrid; ``:SS`` optional), or None if malformed."""
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            moment = datetime.strptime(text.strip(), pattern)
        except ValueError:
            continue
        return moment.replace(tzinfo=MADRID).timestamp()
    return None
