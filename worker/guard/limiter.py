"""A smooth global rate limiter: GCRA with reservations, one Lua script, Redis clock.

Every request reserves a slot in the total budget (``rate_limit_per_s``) *and* in
its sub-budget (sends, other queries, or the date-range certificate download) in
one atomic script. The caller then sleeps until its slot — no polling — or, when
the slot is further away than ``limiter_max_sleep_s``, nothing is reserved and
:class:`GuardDelay` tells the job to come back after the wait.

Accuracy. Zero-burst GCRA spaces grants exactly ``1/rate`` apart, so a closed
1-second window holds ``rate + 1`` of them, and the requests reach the provider a
little after their slot (thread wake-up, HTTP). The emission interval is therefore
``(1 + jitter_allowance_s) / rate``: any ``rate + 1`` consecutive grants span at
least ``1 + jitter_allowance_s`` seconds, so lateness up to the allowance cannot
squeeze ``rate + 1`` requests into one second. The achieved rate is
``1 / (1 + jitter_allowance_s)`` of the limit (≈ 96 % at the default 0.04 s).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from redis import Redis

from config.settings import Settings
from worker import metrics
from worker.guard._common import Clock, load_script, now_arg
from worker.guard.errors import GuardDelay

RANGE_SLACK_S = 1.0
"""Extra spacing of date-range downloads beyond their interval (arrival jitter)."""


class Budget(StrEnum):
    """The sub-budget a provider function draws from (all also draw from the total)."""

    SEND = "send"
    QUERY = "query"
    RANGE_DOWNLOAD = "range_download"


@dataclass(frozen=True)
class Grant:
    """A reserved slot: sleep ``wait_s`` then call; ``slot_us`` is the Redis-clock time."""

    wait_s: float
    slot_us: int


class RateLimiter:
    """The shared GCRA limiter for every budget (one instance per process is enough).

    ``jitter_allowance_s`` (setting ``limiter_jitter_allowance_s``) widens the
    emission interval as explained in the module docstring; ``burst`` (setting
    ``limiter_burst``) lets that many extra requests through at once — keep it 0
    when no sliding second may exceed the limit.
    """

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        *,
        clock: Clock | None = None,
        jitter_allowance_s: float | None = None,
        burst: float | None = None,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._clock = clock
        self._script = redis.register_script(load_script("limiter.lua"))
        if jitter_allowance_s is None:
            jitter_allowance_s = settings.limiter_jitter_allowance_s
        if burst is None:
            burst = settings.limiter_burst
        self.jitter_allowance_s = jitter_allowance_s
        self.burst = burst

    def key(self, name: str) -> str:
        """The Redis key of one budget's theoretical arrival time (TAT, µs)."""
        return self._settings.key("guard", "limiter", name)

    def intervals_us(self, budget: Budget) -> tuple[int, int]:
        """The emission intervals (total, sub-budget) in µs; sub 0 means unlimited."""
        s = self._settings
        stretch = 1.0 + self.jitter_allowance_s
        total = stretch / s.rate_limit_per_s
        if budget is Budget.SEND:
            sub = stretch / s.rate_limit_send_per_s
        elif budget is Budget.QUERY:
            sub = stretch / s.rate_limit_query_per_s
        else:
            # a whole second of slack: the provider sees arrival times, and the first
            # request of a cold worker can leave well after its slot
            sub = s.range_download_interval_s + max(RANGE_SLACK_S, self.jitter_allowance_s)
            if s.range_download_interval_s <= 0:
                sub = 0.0
        return math.ceil(total * 1e6), math.ceil(sub * 1e6)

    def reserve(self, budget: Budget, *, max_wait_s: float | None = None) -> Grant:
        """Reserve the next free slot of ``budget``; raise :class:`GuardDelay` if too far.

        The delay's reason is ``range_interval`` when the date-range budget binds,
        else ``rate_limited``. Nothing is reserved when it raises.
        """
        budget = Budget(budget)
        total_us, sub_us = self.intervals_us(budget)
        max_wait = self._settings.limiter_max_sleep_s if max_wait_s is None else max_wait_s
        burst_us = int(self.burst * total_us)
        reserved, wait_us, binding, slot_us, _now = self._script(
            keys=[self.key("total"), self.key(budget.value)],
            args=[now_arg(self._clock), total_us, sub_us, burst_us, int(max_wait * 1e6)],
        )
        if not reserved:
            if binding == 2 and budget is Budget.RANGE_DOWNLOAD:
                raise GuardDelay(delay_s=int(wait_us) / 1e6, reason="range_interval")
            raise GuardDelay(delay_s=int(wait_us) / 1e6, reason="rate_limited")
        return Grant(wait_s=max(0, int(wait_us)) / 1e6, slot_us=int(slot_us))

    def acquire(
        self,
        budget: Budget,
        *,
        max_wait_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Grant:
        """Reserve a slot and sleep until it (bounded by ``limiter_max_sleep_s``)."""
        grant = self.reserve(budget, max_wait_s=max_wait_s)
        metrics.LIMITER_WAIT.labels(budget=Budget(budget).value).observe(grant.wait_s)
        if grant.wait_s > 0:
            sleep(grant.wait_s)
        return grant

    def state(self, now_us: int) -> dict[str, object]:
        """Per budget: its rate, interval and how far ahead its next free slot is."""
        out: dict[str, object] = {}
        names = ["total", *(b.value for b in Budget)]
        raw = self._redis.mget([self.key(n) for n in names])
        for name, value in zip(names, raw, strict=True):
            tat = int(float(value)) if value is not None else None
            if name == "total":
                interval_us = self.intervals_us(Budget.SEND)[0]
            else:
                interval_us = self.intervals_us(Budget(name))[1]
            out[name] = {
                "interval_s": interval_us / 1e6,
                "next_free_in_s": max(0.0, (tat - now_us) / 1e6) if tat is not None else 0.0,
                "tat_us": tat,
            }
        return out

    def reset(self) -> None:
        """Forget every reservation (operator reset; the next request goes at once)."""
        self._redis.delete(*[self.key(n) for n in ["total", *(b.value for b in Budget)]])
