"""Errors raised by the provider guard without a provider request.

::

    LocalRejection                 (mensatek.errors)
    ├── GuardDelay                 come back later (breaker open, rate limit, paused);
    │                              not a failure: the job is re-enqueued with ``delay_s``
    └── RepeatedRejection          the identical request was rejected before (permanent)
"""

from __future__ import annotations

from typing import Literal

from certsms.mensatek.errors import LocalRejection

DelayReason = Literal[
    "breaker_open", "rate_limited", "rejection_budget", "range_interval", "single_flight"
]


class GuardDelay(LocalRejection):
    """Raised when the provider must not be called now; retry after ``delay_s`` seconds.

    Not a failure and no retry should be burned: the actor re-enqueues the message
    with this delay. ``reason`` is one of :data:`DelayReason`.
    """

    def __init__(self, *, delay_s: float, reason: DelayReason, function: str | None = None) -> None:
        self.delay_s = max(0.0, float(delay_s))
        self.reason: DelayReason = reason
        text = f"provider guard: {reason}, retry in {self.delay_s:.3f} s"
        super().__init__(text, function=function)

    def as_dict(self) -> dict[str, object]:
        """The delay as plain JSON."""
        data = super().as_dict()
        data.update(delay_s=self.delay_s, reason=self.reason)
        return data


class RepeatedRejection(LocalRejection):
    """Raised when an identical request was already rejected by the provider (permanent).

    ``first_rejection`` holds the first rejection's class, ``res``, provider text,
    time and request id, so the operator can find it.
    """

    def __init__(self, first_rejection: dict[str, object], *, function: str | None = None) -> None:
        self.first_rejection = dict(first_rejection)
        first = self.first_rejection
        text = (
            f"identical request already rejected by the provider at {first.get('at')}: "
            f"{first.get('class')} Res {first.get('res')} {first.get('provider_text') or ''}"
        ).rstrip()
        super().__init__(
            text,
            function=function,
            res=first.get("res") if isinstance(first.get("res"), int) else None,  # type: ignore[arg-type]
            provider_text=str(first.get("provider_text") or "") or None,
            request_id=str(first.get("request_id") or "") or None,
        )

    def as_dict(self) -> dict[str, object]:
        """The error with the first rejection."""
        data = super().as_dict()
        data["first_rejection"] = self.first_rejection
        return data
