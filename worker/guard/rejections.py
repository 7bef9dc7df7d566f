"""The rejection budget: past ``rejection_budget`` provider rejections within
``rejection_window_s``, all traffic pauses (like an open breaker) until the oldest
of them leaves the window. Many rejected requests in a short time are what the
provider's spam rule punishes, whatever their individual causes.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from redis import Redis
from redis.client import Pipeline

from certsms.config.settings import Settings
from certsms.worker.guard._common import Clock, load_script, now_arg
from certsms.worker.guard.errors import GuardDelay

log = structlog.get_logger(__name__)


class RejectionBudget:
    """A shared rolling window of provider rejections (a Redis sorted set)."""

    def __init__(self, redis: Redis, settings: Settings, *, clock: Clock | None = None) -> None:
        self._settings = settings
        self._clock = clock
        self._script = redis.register_script(load_script("rejections.lua"))
        self.key = settings.key("guard", "rejections")

    def _call(self, op: str, client: Pipeline | None = None) -> Any:
        s = self._settings
        return self._script(
            keys=[self.key],
            args=[
                op,
                now_arg(self._clock),
                s.rejection_window_s * 1_000_000,
                s.rejection_budget,
                uuid.uuid4().hex,
            ],
            client=client,
        )

    def _run(self, op: str) -> tuple[int, float]:
        return _decode(self._call(op))

    def queue_check(self, pipe: Pipeline) -> None:
        """Add a check to a pipeline; hand its reply to :meth:`checked`."""
        self._call("check", client=pipe)

    def check(self, *, function: str | None = None) -> None:
        """Raise :class:`GuardDelay` (``rejection_budget``) while the budget is spent."""
        self.checked(self._call("check"), function=function)

    def checked(self, reply: Any, *, function: str | None = None) -> None:
        """Raise :class:`GuardDelay` if a check's script reply says the budget is spent."""
        _count, wait_s = _decode(reply)
        if wait_s > 0:
            raise GuardDelay(delay_s=wait_s, reason="rejection_budget", function=function)

    def add(self, *, function: str | None = None) -> int:
        """Count one provider rejection; returns the count in the window."""
        count, wait_s = self._run("add")
        if wait_s > 0 and count == self._settings.rejection_budget:
            log.error(
                "rejection_budget_exhausted",
                function=function,
                rejections=count,
                window_s=self._settings.rejection_window_s,
                paused_s=wait_s,
            )
        return count

    def state(self) -> dict[str, object]:
        """Rejections in the window, the budget, and how long traffic stays paused."""
        count, wait_s = self._run("check")
        return {
            "count": count,
            "budget": self._settings.rejection_budget,
            "window_s": self._settings.rejection_window_s,
            "paused_for_s": wait_s,
        }

    def clear(self) -> None:
        """Forget the window (operator reset)."""
        self._run("clear")


def _decode(reply: Any) -> tuple[int, float]:
    """The script's ``{count, µs to wait}`` as ``(count, seconds)``."""
    count, wait_us = reply
    return int(count), int(wait_us) / 1e6
