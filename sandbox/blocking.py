"""Spam blocking per credential (docs/provider.md §7; thresholds are inferred, configurable).

Counted as "erroneous": every negative ``Res`` answer and every credit/report query
repeated with identical parameters within ``repeat_window_s``. More than
``block_threshold`` of them within ``block_window_s`` block the credential for
``block_duration_s``: every request is then answered with ``block_status`` and
``block_body``. Each block is recorded as an episode (soak tests assert none).
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from certsms.sandbox.clock import Clock, to_provider
from certsms.sandbox.config import SandboxConfig

ANONYMOUS = "<anonymous>"


class SpamGuard:
    """Counters, repeat memory, active blocks and the history of block episodes."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._lock = threading.Lock()
        self._errors: dict[str, collections.deque[float]] = {}
        self._last_query: dict[tuple[str, str], float] = {}
        self._blocked_until: dict[str, float] = {}
        self.episodes: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forget counters, blocks and episodes."""
        with self._lock:
            self._errors.clear()
            self._last_query.clear()
            self._blocked_until.clear()
            self.episodes.clear()

    def blocked_for_s(self, credential: str | None) -> float:
        """Seconds the credential stays blocked (0 when it is not blocked)."""
        key = credential or ANONYMOUS
        with self._lock:
            until = self._blocked_until.get(key)
            if until is None:
                return 0.0
            left = until - self.clock.now()
            if left <= 0:
                del self._blocked_until[key]
                return 0.0
            return left

    def is_repeat(self, credential: str | None, signature: str) -> bool:
        """Remember a credit/report query; True if the same one came within the window."""
        key = (credential or ANONYMOUS, signature)
        now = self.clock.now()
        with self._lock:
            last = self._last_query.get(key)
            self._last_query[key] = now
            if len(self._last_query) > 50_000:  # bound memory under soak
                self._last_query.clear()
        return last is not None and now - last < self.config.repeat_window_s

    def record_error(self, credential: str | None, reason: str) -> bool:
        """Count one erroneous request; True if it started a block."""
        key = credential or ANONYMOUS
        config = self.config
        now = self.clock.now()
        with self._lock:
            events = self._errors.setdefault(key, collections.deque())
            events.append(now)
            while events and now - events[0] > config.block_window_s:
                events.popleft()
            if len(events) <= config.block_threshold or key in self._blocked_until:
                return False
            self._blocked_until[key] = now + config.block_duration_s
            events.clear()
            self.episodes.append(
                {
                    "credential": key,
                    "reason": reason,
                    "started_at": to_provider(now),
                    "duration_s": config.block_duration_s,
                }
            )
            return True

    def snapshot(self) -> dict[str, Any]:
        """Active blocks, error counts in the window, and all episodes."""
        now = self.clock.now()
        with self._lock:
            return {
                "active": {
                    key: round(until - now, 3)
                    for key, until in self._blocked_until.items()
                    if until > now
                },
                "error_counts": {key: len(events) for key, events in self._errors.items()},
                "episodes": list(self.episodes),
            }
