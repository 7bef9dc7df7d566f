"""ProviderGuard: the one door between every actor and the Mensatek client.

Order of a call, in as few Redis round trips as the rules allow:

1. admission, one pipeline: breaker (open → delay), rejection budget (spent →
   delay), failure memo (identical rejected request → :class:`RepeatedRejection`,
   before a rate-limit slot is spent on it);
2. cache (hit → answer; concurrent misses → one request);
3. limiter: reserve a slot (one script) and sleep until it, or delay; after a
   sleep, breaker and budget are checked again (one pipeline);
4. memo re-check and the request's own in-flight lock, atomically (one script):
   identical requests never run at once;
5. ``fn()``; then one pipeline records the outcome (breaker, the answer's credits,
   the lock). A client's transport retry inside ``fn`` is a new request: it passes
   :class:`_RetryGate` (the failed attempt counted, breaker and budget checked, its
   own limiter slot).

Outcomes: a provider rejection (negative ``Res``) is a *healthy* answer for the
breaker — the provider answered — and is memoised and counted in the rejection
budget; :class:`AuthenticationFailed` opens the breaker at once; unhealthy errors
(:class:`ProviderUnavailable`, :class:`TransportError`) count toward opening it;
anything else (local validation, bugs) is not the provider's fault and records
nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import structlog
from redis import Redis

from certsms.config.settings import Settings
from certsms.mensatek.errors import (
    AuthenticationFailed,
    InsufficientCredits,
    MensatekError,
    ProviderRejected,
)
from certsms.mensatek.retrying import gated_attempts, is_unhealthy
from certsms.worker import metrics
from certsms.worker.guard._common import Clock, redis_now_s, request_budget_s
from certsms.worker.guard.breaker import Breaker
from certsms.worker.guard.cache import JSON_CODEC, Codec, QueryCache
from certsms.worker.guard.errors import GuardDelay
from certsms.worker.guard.limiter import Budget, Fence, FenceLost, RateLimiter, budget_rate_per_s
from certsms.worker.guard.memo import FailureMemo
from certsms.worker.guard.memo import fingerprint as fingerprint_digest
from certsms.worker.guard.rejections import RejectionBudget

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

CREDITS_FLIGHT = "credits"


def _observe_request(function: str, outcome: str, started: float) -> None:
    """Count one provider request (a call of ``fn``) and its latency."""
    metrics.PROVIDER_REQUESTS.labels(function=function, outcome=outcome).inc()
    metrics.PROVIDER_LATENCY.labels(function=function).observe(time.monotonic() - started)


def _credits_from(result: object) -> float | None:
    value = result if isinstance(result, int | float) else getattr(result, "credits", None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class _RetryGate:
    """A client retry inside one guarded call is a new request (mensatek.retrying).

    Before each retry the failed attempt is counted like any answer (breaker,
    rejection budget), the breaker and budget are checked again and a new
    rate-limit slot is taken. A breaker that opened, a spent budget or a slot
    further away than ``limiter_max_sleep_s`` stops the retries: the call raises
    the failed attempt's error and the job decides (a later attempt, or ``uncertain``).
    """

    def __init__(
        self,
        guard: ProviderGuard,
        function: str,
        budget: Budget,
        fingerprint: Mapping[str, object] | None,
        token: str | None,
        lock: tuple[str, str] | None,
    ) -> None:
        self._guard = guard
        self._call = (function, budget, fingerprint, token, lock)
        self.started = time.monotonic()
        self.recorded: BaseException | None = None
        """The failed attempt already counted when the retries stopped."""

    def before_retry(self, function: str, failed: BaseException) -> bool:
        """Count ``failed``, then wait for a new slot (False: no retry now)."""
        guard = self._guard
        name, budget, fingerprint, token, lock = self._call
        _observe_request(name, type(failed).__name__, self.started)
        guard._quietly(guard._record_error, failed, token, name, fingerprint)
        self.recorded = failed
        try:
            guard._recheck(name, token)
            guard._acquire_slot(name, budget, fingerprint, token, lock)
        except GuardDelay as delay:
            metrics.GUARD_DELAYS.labels(function=name, reason=delay.reason).inc()
            log.info("provider_retry_stopped", function=name, reason=delay.reason)
            return False
        self.recorded = None
        self.started = time.monotonic()
        return True


class ProviderGuard:
    """Shared limiter, breaker, memo, rejection budget and cache (all state in Redis).

    ``clock`` (seconds since the epoch) replaces Redis ``TIME`` in every script —
    for tests; production leaves it ``None`` so all hosts share Redis' clock.
    ``sleep`` is what waits for a reserved slot.
    """

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self.limiter = RateLimiter(redis, settings, clock=clock)
        self.breaker = Breaker(redis, settings, clock=clock)
        self.memo = FailureMemo(redis, settings)
        self.rejections = RejectionBudget(redis, settings, clock=clock)
        self.cache = QueryCache(redis, settings)
        self.flight_ttl_s = request_budget_s(settings)
        # The per-request lock covers one HTTP attempt (a send is never re-posted after
        # its body left): a worker killed while holding it delays identical requests
        # for at most this long, not for the whole retry budget.
        self.request_lock_ttl_s = (
            settings.connect_timeout_s
            + settings.read_timeout_s
            + settings.transport_backoff_s * (2**settings.transport_retries)
            + 1.0
        )

    def now_s(self) -> float:
        """The guard's clock: the test clock, else Redis ``TIME``."""
        return redis_now_s(self._redis, self._clock)

    # --- the door ------------------------------------------------------------------------
    def call(
        self,
        *,
        function: str,
        budget: Budget,
        fingerprint: Mapping[str, object] | None,
        fn: Callable[[], T],
        cache_key: str | None = None,
        cache_ttl_s: float | None = None,
        codec: Codec[T] | None = None,
        credits_of: Callable[[T], float | None] | None = None,
    ) -> T:
        """Call ``fn`` (one provider request) if and when the guard allows it.

        ``fingerprint``: the request's canonical parameters without secrets (for the
        memo; ``None`` = not memoised). ``cache_key``: identical queries within
        ``cache_ttl_s`` (default ``report_cache_ttl_s``) share one answer, stored
        with ``codec`` (default JSON: the result must be JSON-serialisable).
        ``credits_of``: how to read the credits from the result (default: its
        ``credits`` attribute, or the result itself when it is a number).

        Raises :class:`GuardDelay` (come back later, not a failure),
        :class:`RepeatedRejection` (permanent), or whatever ``fn`` raised.
        """
        budget = Budget(budget)

        def attempt(token: str | None) -> T:
            return self._attempt(function, budget, fingerprint, fn, token, credits_of)

        if cache_key is None:
            return self._guarded(function, lambda token: (attempt(token),), None, fingerprint)[0]
        ttl_s = self._settings.report_cache_ttl_s if cache_ttl_s is None else cache_ttl_s
        if ttl_s <= 0:
            return self._guarded(function, lambda token: (attempt(token),), None, fingerprint)[0]
        use: Codec[Any] = codec or JSON_CODEC

        def lookup() -> tuple[T] | None:
            raw = self.cache.get(cache_key)
            return None if raw is None else (use.loads(raw),)

        def produce(token: str | None) -> tuple[T]:
            result = attempt(token)
            try:
                self.cache.put(cache_key, use.dumps(result), ttl_s=ttl_s)
            except Exception:
                log.exception("guard_cache_store_failed", function=function)
            return (result,)

        hit = lookup()
        if hit is not None:
            metrics.CACHE_HITS.labels(kind="answer").inc()
            return hit[0]
        return self._guarded(function, produce, (cache_key, lookup), fingerprint)[0]

    def credits(
        self, fn: Callable[[], object], *, max_age_s: float | None = None
    ) -> tuple[float, float]:
        """``(credits, age_s)``: from cache when younger than ``credits_cache_ttl_s``,
        else one ``GetCreditos`` (``fn``) shared by every concurrent asker."""
        ttl_s = self._settings.credits_cache_ttl_s if max_age_s is None else max_age_s

        def lookup() -> tuple[float, float] | None:
            cached = self.cached_credits()
            return cached if cached is not None and cached[1] <= ttl_s else None

        hit = lookup()
        if hit is not None:
            metrics.CACHE_HITS.labels(kind="credits").inc()
            return hit

        def produce(token: str | None) -> tuple[float, float]:
            result = self._attempt("credits", Budget.QUERY, None, fn, token, None)
            value = _credits_from(result)
            if value is None:
                raise TypeError("the credits function returned no credits")
            return value, 0.0

        return self._guarded("credits", produce, (CREDITS_FLIGHT, lookup))

    # --- internals -------------------------------------------------------------------------
    def _guarded(
        self,
        function: str,
        produce: Callable[[str | None], R],
        flight: tuple[str, Callable[[], R | None]] | None,
        fingerprint: Mapping[str, object] | None = None,
    ) -> R:
        """Admission (breaker, rejection budget, memo: one round trip) around ``produce``."""
        try:
            token = self._admit(function, fingerprint)
            try:
                if flight is None:
                    return produce(token)
                return self._single_flight(flight[0], flight[1], lambda: produce(token))
            finally:
                if token is not None:
                    self._quietly(self.breaker.release, token)
        except GuardDelay as delay:
            metrics.GUARD_DELAYS.labels(function=function, reason=delay.reason).inc()
            delay.function = function
            log.info(
                "provider_call_delayed",
                function=function,
                reason=delay.reason,
                delay_s=round(delay.delay_s, 3),
            )
            raise

    def _admit(self, function: str, fingerprint: Mapping[str, object] | None) -> str | None:
        """Breaker check, rejection budget and memo in one pipeline; the probe token if any.

        The memo is checked before a rate-limit slot is spent on a request that would
        be refused anyway; it is checked again, atomically with the request's lock,
        just before sending (:meth:`_claim_request`).
        """
        candidate = uuid.uuid4().hex
        pipe = self._redis.pipeline(transaction=False)
        self.breaker.queue("check", candidate, pipe)
        self.rejections.queue_check(pipe)
        digest = fingerprint_digest(function, fingerprint) if fingerprint is not None else None
        if digest is not None:
            pipe.get(self.memo.key(digest))
        replies = pipe.execute()
        checked = self.breaker.finish("check", replies[0])
        token = self.breaker.admitted(candidate, checked, function=function)
        try:
            self.rejections.checked(replies[1], function=function)
            if digest is not None:
                self.memo.refuse_if_known(function, digest, replies[2])
        except BaseException:
            if token is not None:
                self._quietly(self.breaker.release, token)
            raise
        return token

    def _single_flight(
        self, name: str, lookup: Callable[[], R | None], produce: Callable[[], R]
    ) -> R:
        """One caller produces; the others wait (lightly polling, bounded) for its answer."""
        deadline = time.monotonic() + self.flight_ttl_s
        pause_s = 0.005
        while True:
            lock = self.cache.try_lock(name, ttl_s=self.flight_ttl_s)
            if lock is not None:
                try:
                    hit = lookup()  # the previous holder may have just stored it
                    return hit if hit is not None else produce()
                finally:
                    self._quietly(self.cache.unlock, name, lock)
            while self.cache.locked(name):
                if time.monotonic() >= deadline:
                    raise GuardDelay(delay_s=1.0, reason="single_flight")
                time.sleep(pause_s)
                pause_s = min(pause_s * 1.5, 0.1)
                hit = lookup()
                if hit is not None:
                    metrics.CACHE_HITS.labels(kind="single_flight").inc()
                    return hit
            hit = lookup()
            if hit is not None:
                return hit
            # the holder failed without an answer: take the lock ourselves (the memo
            # and the breaker gate inside produce() stop a repeat of a bad request)

    def _attempt(
        self,
        function: str,
        budget: Budget,
        fingerprint: Mapping[str, object] | None,
        fn: Callable[[], T],
        token: str | None,
        credits_of: Callable[[T], float | None] | None,
    ) -> T:
        lock: tuple[str, str] | None = None
        if fingerprint is not None:
            lock = self._claim_request(function, fingerprint)
        self._acquire_slot(function, budget, fingerprint, token, lock)
        gate = _RetryGate(self, function, budget, fingerprint, token, lock)
        try:
            with gated_attempts(gate):
                result = fn()
        except BaseException as exc:
            _observe_request(function, type(exc).__name__, gate.started)
            # memo first, then the lock: an identical request waiting for the lock must
            # find the rejection when it gets it (under CPU load this gap was visible)
            if exc is not gate.recorded:
                self._quietly(self._record_error, exc, token, function, fingerprint)
            if lock is not None:
                self._quietly(self.cache.unlock, *lock)
            raise
        _observe_request(function, "ok", gate.started)
        self._quietly(self._record_success, result, token, credits_of, lock)
        return result

    def _acquire_slot(
        self,
        function: str,
        budget: Budget,
        fingerprint: Mapping[str, object] | None,
        token: str | None,
        lock: tuple[str, str] | None,
    ) -> None:
        """A rate-limit slot, then the atomic dispatch check (limiter log, and with a lock
        the fence: still ours, memo still empty); the lock is released on refusal."""
        fence: Fence | None = None
        if lock is not None and fingerprint is not None:
            digest = fingerprint_digest(function, fingerprint)
            fence = Fence(
                lock_key=self.cache.lock_key(lock[0]),
                token=lock[1],
                memo_key=self.memo.key(digest),
                ttl_ms=max(1, int(self.request_lock_ttl_s * 1000)),
            )
        try:
            self.limiter.acquire(
                budget,
                sleep=self._sleep,
                after_sleep=lambda: self._recheck(function, token),
                fence=fence,
            )
        except FenceLost as lost:
            metrics.GUARD_FENCE_LOST.labels(function=function).inc()
            memoised = lost.memo_record is not None
            log.warning("request_lock_lost", function=function, memoised=memoised)
            if lost.memo_record is not None and fingerprint is not None:
                if lock is not None:  # possibly still ours: the memo answers the waiters now
                    self._quietly(self.cache.unlock, *lock)
                digest = fingerprint_digest(function, fingerprint)
                self.memo.refuse_if_known(function, digest, lost.memo_record)
            raise GuardDelay(delay_s=0.5, reason="single_flight", function=function) from None
        except BaseException:
            if lock is not None:
                self._quietly(self.cache.unlock, *lock)
            raise

    def _recheck(self, function: str, token: str | None) -> None:
        """After sleeping on a slot: the breaker may have opened, the budget run out."""
        pipe = self._redis.pipeline(transaction=False)
        self.breaker.queue("gate", token, pipe)
        self.rejections.queue_check(pipe)
        gate, budget = pipe.execute()
        self.breaker.gated(self.breaker.finish("gate", gate), function=function)
        self.rejections.checked(budget, function=function)

    def _claim_request(self, function: str, params: Mapping[str, object]) -> tuple[str, str]:
        """Hold the in-flight lock of this exact request (its fingerprint) while it is sent.

        Identical requests never run at once, and the memo is re-checked atomically
        with taking the lock: if an identical request was rejected meanwhile, this one
        is refused (:class:`RepeatedRejection`); while one is in flight, this one waits
        (:class:`GuardDelay` ``single_flight``).
        """
        digest = fingerprint_digest(function, params)
        name = "request:" + digest
        # held from before the slot's sleep until the outcome is recorded; the dispatch
        # check re-extends it to request_lock_ttl_s as the request leaves
        verdict, token, record = self.cache.claim(
            name,
            self.memo.key(digest),
            ttl_s=self._settings.limiter_max_sleep_s + self.request_lock_ttl_s,
        )
        if verdict == "memo":
            self.memo.refuse_if_known(function, digest, record)
        if token is None:
            raise GuardDelay(delay_s=0.5, reason="single_flight", function=function)
        return name, token

    def _record_success(
        self,
        result: T,
        token: str | None,
        credits_of: Callable[[T], float | None] | None,
        lock: tuple[str, str] | None = None,
    ) -> None:
        """One round trip: breaker success, the answer's credits, the request's lock."""
        pipe = self._redis.pipeline(transaction=False)
        self.breaker.queue("success", token, pipe)
        credits = credits_of(result) if credits_of is not None else _credits_from(result)
        if credits is not None:
            now_s = self._clock() if self._clock is not None else None
            self.cache.record_credits(credits, now_s=now_s, client=pipe)
        if lock is not None:
            self.cache.unlock(*lock, client=pipe)
        replies = pipe.execute()
        self.breaker.finish("success", replies[0])

    def _record_error(
        self,
        error: BaseException,
        token: str | None,
        function: str,
        fingerprint: Mapping[str, object] | None,
    ) -> None:
        if isinstance(error, AuthenticationFailed):
            self.breaker.record_auth_failure(token, function=function)
            self.rejections.add(function=function)
        elif isinstance(error, InsufficientCredits):
            # healthy and right: never memoised nor counted as a rejection
            self.breaker.record_success(token)
            self.mark_short_of_credit(error.credits_needed, error.credits_available)
        elif isinstance(error, ProviderRejected):
            self.breaker.record_success(token)  # the provider answered: healthy
            self.rejections.add(function=function)
            if fingerprint is not None:
                self.memo.remember(function, fingerprint, error, now_s=self.now_s())
        elif is_unhealthy(error):
            self.breaker.record_failure(token, error=error)

    @staticmethod
    def _quietly(action: Callable[..., object], *args: object) -> None:
        """Run guard bookkeeping; a Redis hiccup must not turn a made request into a failure."""
        try:
            action(*args)
        except Exception:
            log.exception("guard_bookkeeping_failed", action=getattr(action, "__name__", "?"))

    # --- credits, snapshot, reset ----------------------------------------------------------
    def _credit_keys(self) -> tuple[str, str]:
        return (
            self._settings.key("guard", "credit-short"),
            self._settings.key("guard", "credit-short", "turn"),
        )

    def mark_short_of_credit(self, needed: float | None, available: float | None) -> None:
        """A send was refused for lack of credit: every send waits for its turn (one per
        ``credit_check_interval_s``) until one goes through (:meth:`credit_restored`)."""
        short_key, turn_key = self._credit_keys()
        interval_s = self._settings.credit_check_interval_s
        state = json.dumps({"needed": needed, "available": available, "at": self.now_s()})
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(short_key, state, ex=max(86_400, 10 * interval_s))
        pipe.set(turn_key, "1", ex=interval_s)  # the next send waits one interval
        if available is not None and available >= 0:
            now_s = self._clock() if self._clock is not None else None
            self.cache.record_credits(available, now_s=now_s, client=pipe)
        pipe.execute()
        metrics.ACCOUNT_SHORT_OF_CREDIT.set(1)
        log.warning(
            "account_short_of_credit",
            credits_needed=needed,
            credits_available=available,
            check_interval_s=interval_s,
        )

    def short_of_credit(self) -> dict[str, object] | None:
        """``{"needed", "available", "at"}`` while the account is known short, else None."""
        raw = self._redis.get(self._credit_keys()[0])
        return None if raw is None else dict(json.loads(raw))

    def credit_restored(self) -> None:
        """A send went through: the account is no longer short."""
        if self._redis.delete(*self._credit_keys()):
            metrics.ACCOUNT_SHORT_OF_CREDIT.set(0)
            log.info("account_credit_restored")

    def credit_turn(
        self, credits_fn: Callable[[], object], *, needed: float | None
    ) -> tuple[bool, float | None]:
        """Whether a send that needs ``needed`` credits (None: unknown) may go now, and
        the balance seen.

        While the account is short, or when ``needed`` is known: the balance comes from
        :meth:`credits` at most ``credit_check_interval_s`` old (one ``GetCreditos`` per
        interval for every waiting job together); a balance below ``needed`` waits.
        While the account is short at most one send per interval is let through (the
        turn, a ``SET NX``), so nothing more is refused in between.
        """
        short = self.short_of_credit()
        if short is None and needed is None:
            return True, None
        interval_s = self._settings.credit_check_interval_s
        try:
            balance, _age_s = self.credits(credits_fn, max_age_s=interval_s)
        except (GuardDelay, MensatekError) as exc:
            log.info("credit_check_deferred", error=type(exc).__name__)
            return False, None
        if needed is not None and balance < needed:
            return False, balance
        if short is None:
            return True, balance
        turn = self._redis.set(self._credit_keys()[1], "1", nx=True, ex=interval_s)
        return bool(turn), balance

    def record_credits(self, credits: float) -> None:
        """Remember the account's credits (from the ``Cred`` of any answer)."""
        self.cache.record_credits(credits, now_s=self._clock() if self._clock else None)

    def cached_credits(self) -> tuple[float, float] | None:
        """``(credits, age_s)`` of the last known credits, or ``None``."""
        return self.cache.cached_credits(now_s=self.now_s())

    def snapshot(self) -> dict[str, object]:
        """Everything ``certsms guard`` shows, as plain JSON."""
        s = self._settings
        now_s = self.now_s()
        credits = self.cached_credits()
        limiter = self.limiter.state(int(now_s * 1e6))
        rates: dict[str, float | None] = {"total": s.rate_limit_per_s}
        rates.update({b.value: budget_rate_per_s(s, b) for b in Budget})
        for name, rate in rates.items():
            entry = limiter[name]
            if isinstance(entry, dict):
                entry["limit_per_s"] = rate
        return {
            "at": now_s,
            "limiter": limiter,
            "breaker": self.breaker.state(now_s),
            "memo": self.memo.state(now_s),
            "rejections": self.rejections.state(),
            "credits": None
            if credits is None
            else {"credits": credits[0], "age_s": credits[1], "ttl_s": s.credits_cache_ttl_s},
            "cached_answers": self.cache.count(),
        }

    def reset(self, *, memo: bool = False) -> dict[str, object]:
        """Close the breaker and clear the rejection window; also the memo if ``memo``."""
        self.breaker.reset()
        self.rejections.clear()
        dropped = self.memo.clear() if memo else 0
        log.warning("guard_reset", memo_cleared=memo, memo_dropped=dropped)
        return {"breaker": "closed", "rejections": "cleared", "memo_dropped": dropped}
