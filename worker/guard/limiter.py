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

Stalls. A reservation is a promise about the future; a process can break it by
freezing between the reservation and the request (SIGSTOP, a GC pause, a starved
CPU, a suspended VM). :meth:`RateLimiter.acquire` therefore ends with one atomic
check at dispatch (``dispatch.lua``, Redis' clock) that records actual dispatch
times in a per-budget log:

* a slot later than ``LATE_TOLERANCE_S`` is forfeited and a new one reserved (it
  would otherwise push the requests of punctual slots over the limit);
* a dispatch that would put more than ``k`` dispatches in a window of ``k / rate``
  seconds (``k = max(1, floor(rate))``, widened by the jitter allowance: ``k``
  reservation intervals, so punctual slots always pass) is refused and a new slot
  reserved — a hard bound on dispatch times, whatever the
  reservations say;
* with a :class:`Fence`, the request's in-flight lock must still be the caller's and
  its memo entry absent (a stalled lock holder never sends after its successor).

Widening. Lateness after the slot is the deployment's measure of CPU starvation, and a
starved worker is also slow between the check and its bytes leaving — the one window
the check cannot close. The check keeps the recent peak lateness of all workers (one
Redis hash, decaying by ``e`` every :data:`WIDEN_DECAY_S`) and widens the windows by
its excess over half the jitter allowance (the other half is a margin for what the
measure misses: the work after the check, the kernel), at most :data:`WIDEN_MAX_S`:
nothing on a machine with CPU to spare (lateness p99 3–5 ms there), tens of
milliseconds on a starved one (the gauge
``certsms_limiter_widening_seconds``). It costs throughput only while workers are late.
A caller that resumes more than :data:`DEPARTURE_REPORT_S` after its passed check (the
wake-up on the check's answer is part of the remaining window) reports that lateness
too, in one more round trip.

The one remaining window is between this check and the bytes leaving the socket: a
process frozen exactly there sends later than recorded.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog
from redis import Redis

from certsms.config.settings import Settings
from certsms.worker import metrics
from certsms.worker.guard._common import Clock, load_script, now_arg, text
from certsms.worker.guard.errors import GuardDelay
from certsms.worker.redis_client import RedisClock

log = structlog.get_logger(__name__)

RANGE_SLACK_S = 1.0
"""Extra spacing of date-range downloads beyond their interval (arrival jitter)."""
LATE_TOLERANCE_S = 0.25
"""How late after its slot a request may still be dispatched; later, the slot is forfeited."""
WIDEN_DECAY_S = 10.0
"""How fast the dispatch windows narrow again after workers woke late (the recent peak
lateness e-folds every this many seconds)."""
WIDEN_MAX_S = LATE_TOLERANCE_S
"""The most the dispatch windows widen on a starved machine."""
DEPARTURE_REPORT_S = 0.01
"""A caller that resumes this long after its passed check (on Redis' clock) reports the
departure's lateness to the peak: a healthy worker resumes within a millisecond or two,
so the extra round trip is paid only by starved ones."""
MAX_REDISPATCH = 20
"""Fresh reservations one call may take after refused dispatch checks before giving up
(``GuardDelay`` ``rate_limited``): a bound, not an expected count."""


class Budget(StrEnum):
    """The sub-budget a provider function draws from (all also draw from the total)."""

    SEND = "send"
    QUERY = "query"
    CERTIFICATE = "certificate"
    RANGE_DOWNLOAD = "range_download"


def certificate_rate_per_s(settings: Settings) -> float:
    """The per-recipient certificate download budget: ``rate_limit_certificate_per_s``,
    by default the send rate — each send of one recipient earns one certificate, so
    evidence keeps pace with sends instead of queueing behind the other queries."""
    rate = settings.rate_limit_certificate_per_s
    return settings.rate_limit_send_per_s if rate is None else rate


def budget_rate_per_s(settings: Settings, budget: Budget) -> float | None:
    """The sub-budget's limit in requests per second (None: the date-range download
    with no extra interval)."""
    if budget is Budget.SEND:
        return settings.rate_limit_send_per_s
    if budget is Budget.QUERY:
        return settings.rate_limit_query_per_s
    if budget is Budget.CERTIFICATE:
        return certificate_rate_per_s(settings)
    interval = settings.range_download_interval_s
    return 1.0 / interval if interval > 0 else None


@dataclass(frozen=True)
class Grant:
    """A reserved slot: sleep ``wait_s`` then call; ``slot_us`` is the Redis-clock time.

    From :meth:`RateLimiter.acquire`, ``wait_s`` is the total time slept and
    ``dispatched_us`` the Redis time at which the dispatch check let the request go.
    """

    wait_s: float
    slot_us: int
    dispatched_us: int | None = None
    redispatches: int = 0


class FenceLost(Exception):
    """Raised by the dispatch check when the request's lock is no longer the caller's,
    or its memo entry appeared (``memo_record`` set): the request must not be sent."""

    def __init__(self, memo_record: str | None = None) -> None:
        super().__init__("in-flight lock lost" if memo_record is None else "memoised meanwhile")
        self.memo_record = memo_record


@dataclass(frozen=True)
class Fence:
    """The in-flight lock a request holds: checked (and extended to ``ttl_ms``) atomically
    with the dispatch check, together with the request's memo key."""

    lock_key: str
    token: str
    memo_key: str
    ttl_ms: int


_VERDICTS = {
    0: "ok",
    1: "late",
    2: "total_full",
    3: "budget_full",
    4: "lock_lost",
    5: "memo",
    6: "reported",
}


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
        self._dispatch = redis.register_script(load_script("dispatch.lua"))
        self.late_tolerance_s = LATE_TOLERANCE_S
        self.widening_s = 0.0
        """How much the last dispatch check widened the windows (recent lateness)."""
        self._departure_clock: Clock = clock if clock is not None else RedisClock(redis)
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
        if budget is not Budget.RANGE_DOWNLOAD:
            sub = stretch / (budget_rate_per_s(s, budget) or s.rate_limit_per_s)
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

    def dispatch_windows_us(self, budget: Budget) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((window µs, most), (window µs, most))`` of the total and the sub-budget
        dispatch logs; ``most`` 0 means the sub-budget has no log check.

        A window is ``k = max(1, floor(rate))`` reservation intervals: ``k / rate``
        seconds widened by the jitter allowance, so punctual slots always pass.
        """
        s = self._settings
        total_us, sub_us = self.intervals_us(budget)
        total_most = max(1, math.floor(s.rate_limit_per_s))
        total = (total_most * total_us, total_most)
        if budget is not Budget.RANGE_DOWNLOAD:
            most = max(1, math.floor(budget_rate_per_s(s, budget) or s.rate_limit_per_s))
            return total, (most * sub_us, most)
        if s.range_download_interval_s <= 0:
            return total, (0, 0)
        return total, (math.ceil((s.range_download_interval_s + RANGE_SLACK_S / 2) * 1e6), 1)

    def _late_tolerance_us(self, budget: Budget) -> int:
        """How late a slot may be used: ``late_tolerance_s``; for the date-range download
        its whole interval — its log (one per interval) is the bound, and forfeiting a
        slot that is reserved once per interval would starve it on a busy machine."""
        tolerance_s = self.late_tolerance_s
        if budget is Budget.RANGE_DOWNLOAD:
            tolerance_s = max(tolerance_s, self._settings.range_download_interval_s)
        return int(tolerance_s * 1e6)

    def check_dispatch(
        self,
        budget: Budget,
        slot_us: int,
        *,
        fence: Fence | None = None,
        departed_us: int | None = None,
    ) -> tuple[str, int, float]:
        """The atomic dispatch check: ``(verdict, now µs, wait s)``; ``ok`` records it.

        Verdicts: ``ok``, ``late`` (slot forfeited), ``total_full`` / ``budget_full``
        (the dispatch log is full for ``wait`` s); with a fence, raises
        :class:`FenceLost` when the lock is gone or the memo has the request. With
        ``departed_us``, only a departure's lateness is recorded (verdict ``reported``):
        the request checked at ``slot_us`` left at ``departed_us``.
        """
        budget = Budget(budget)
        (total_w, total_n), (sub_w, sub_n) = self.dispatch_windows_us(budget)
        verdict, now_us, wait_us, record, widening_us = self._dispatch(
            keys=[
                self.key("dispatched:total"),
                self.key("dispatched:" + budget.value),
                fence.lock_key if fence else self.key("no-lock"),
                fence.memo_key if fence else self.key("no-memo"),
                self.key("lateness"),
            ],
            args=[
                now_arg(self._clock) if departed_us is None else departed_us,
                slot_us,
                self._late_tolerance_us(budget),
                total_w,
                total_n,
                sub_w,
                sub_n,
                uuid.uuid4().hex[:12],
                fence.token if fence else "",
                fence.ttl_ms if fence else 0,
                round(self.jitter_allowance_s * 1e6 / 2),
                round(WIDEN_DECAY_S * 1e6),
                round(WIDEN_MAX_S * 1e6),
                "" if departed_us is None else "1",
            ],
        )
        name = _VERDICTS[int(verdict)]
        if name == "memo":
            raise FenceLost(text(record))
        if name == "lock_lost":
            raise FenceLost()
        self.widening_s = int(widening_us) / 1e6  # (a fenced-off check does not measure it)
        metrics.LIMITER_WIDENING.set(self.widening_s)
        return name, int(now_us), int(wait_us) / 1e6

    def acquire(
        self,
        budget: Budget,
        *,
        max_wait_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        after_sleep: Callable[[], None] | None = None,
        fence: Fence | None = None,
    ) -> Grant:
        """Reserve a slot, sleep until it (bounded by ``limiter_max_sleep_s``), then pass
        the dispatch check; a late slot or a full dispatch log reserves a new slot.

        ``after_sleep`` runs after every sleep, before the check (the guard re-checks
        the breaker there). Raises :class:`GuardDelay` when the next slot is too far,
        :class:`FenceLost` when ``fence`` no longer holds.
        """
        budget = Budget(budget)
        label = budget.value
        slept = 0.0
        grant: Grant | None = None
        wait_s = 0.0
        extra_us = 0  # how far a full log has pushed this slot back
        for redispatch in range(MAX_REDISPATCH + 1):
            if grant is None:
                grant = self.reserve(budget, max_wait_s=max_wait_s)
                wait_s = max(grant.wait_s, wait_s)
                extra_us = round((wait_s - grant.wait_s) * 1e6)
                metrics.LIMITER_WAIT.labels(budget=label).observe(wait_s)
            if wait_s > 0:
                sleep(wait_s)
                slept += wait_s
                if after_sleep is not None:
                    after_sleep()
            slot_us = grant.slot_us + extra_us
            verdict, now_us, log_wait_s = self.check_dispatch(budget, slot_us, fence=fence)
            if verdict == "ok":
                self._report_if_late(budget, now_us)
                return Grant(
                    wait_s=slept, slot_us=slot_us, dispatched_us=now_us, redispatches=redispatch
                )
            metrics.LIMITER_REDISPATCHES.labels(budget=label, reason=verdict).inc()
            log.info(
                "limiter_slot_forfeited" if verdict == "late" else "limiter_dispatch_refused",
                budget=label,
                reason=verdict,
                late_s=round((now_us - slot_us) / 1e6, 3),
            )
            wait_s = log_wait_s
            if verdict != "late" and log_wait_s <= self.late_tolerance_s:
                # a few ms of arrival jitter filled the log: keep the slot, go a bit later
                extra_us += round(log_wait_s * 1e6)
            else:
                grant = None  # forfeit: reserve a new slot (no earlier than the log allows)
        raise GuardDelay(delay_s=1.0, reason="rate_limited")

    def _report_if_late(self, budget: Budget, checked_us: int) -> None:
        """Report the departure of a request checked at ``checked_us`` when this caller
        resumed late: the wake-up after the check's answer is part of the one remaining
        window, and a starved host should widen the windows for everyone."""
        departed_us = int(self._departure_clock() * 1e6)
        if departed_us - checked_us > DEPARTURE_REPORT_S * 1e6:
            self.check_dispatch(budget, checked_us, departed_us=departed_us)
            metrics.LIMITER_LATE_DEPARTURES.labels(budget=budget.value).inc()

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
        names = ["total", *(b.value for b in Budget)]
        self._redis.delete(*[self.key(n) for n in names])
