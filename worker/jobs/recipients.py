"""Recipient statuses on a job: forward-only, and a final class is never replaced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Final classes share the top rank and a final status is never replaced (atomically,
# in update_recipient): a stale failure code can never overwrite a certified recipient.
_FINAL_RANK = 2
_RECIPIENT_RANK = {
    "pending": 0,
    "unknown": 0,
    "delivered": 1,
    "certified": _FINAL_RANK,
    "failed": _FINAL_RANK,
    "expired": _FINAL_RANK,
    "cancelled": _FINAL_RANK,
}


@dataclass(frozen=True)
class RecipientChange:
    """What :meth:`JobStore.update_recipient` did for one phone."""

    phone: str
    changed: bool
    previous_code: int | None
    previous_class: str | None
    result_code: int
    status_class: str


def supersedes(old: Mapping[str, Any] | None, *, status_class: str, at_iso: str, code: int) -> bool:
    """Whether a new status replaces the recorded one: a higher rank, or same rank and newer.

    Nothing replaces a final class; a duplicate (same code) or an older update at the
    same rank changes nothing.
    """
    if old is None:
        return True
    new_rank = _RECIPIENT_RANK.get(status_class, 0)
    old_rank = _RECIPIENT_RANK.get(str(old.get("status_class")), 0)
    newer = at_iso > str(old.get("at", ""))
    same = int(old.get("result_code", -999)) == int(code)
    return not (
        old_rank == _FINAL_RANK
        or new_rank < old_rank
        or (new_rank == old_rank and (same or not newer))
    )
