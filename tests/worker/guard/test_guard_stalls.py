"""The guard under stalls: a frozen worker process and a stalled lock holder.

A process can freeze between reserving a slot and sending (SIGSTOP here; a GC pause,
a throttled container, a suspended VM in production). The limit must hold where the
provider measures it — the sandbox's request log — and identical rejected requests
must still cost one request (issue 13, "Done when").
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
import redis

from certsms import tasks
from certsms.config.settings import Settings
from certsms.mensatek.errors import BadRequestData
from certsms.worker.guard import Budget, GuardDelay, ProviderGuard, RepeatedRejection, fingerprint
from certsms.worker.jobs.store import JobStore
from tests.fixtures.guard import ManualClock
from tests.fixtures.guard_integration import WorkerGroup, count_by, statuses, worst_window
from tests.fixtures.jobs import wait_for
from tests.fixtures.sandbox import SandboxHandle, send_params

SEND = "EnviarSMSCERTIFICADO"


def test_guard_frozen_worker_process_never_breaks_the_limit(
    jobs_settings: Settings,
    job_store: JobStore,
    guard_workers: WorkerGroup,
    sandbox: SandboxHandle,
) -> None:
    """Limit 4/s, two worker processes × 4 threads, 60 queued sends; one process frozen
    (SIGSTOP) three times for 3 s: no sliding second of the sandbox log holds more than 4
    sends, and every job is sent exactly once."""
    ids = [
        tasks.enqueue_send(send_params(Mensaje=f"Aviso {i}"), settings=jobs_settings)
        for i in range(60)
    ]
    limits = {"rate_limit_per_s": 4, "rate_limit_send_per_s": 4, "heartbeat_timeout_s": 30}
    frozen = guard_workers.start(processes=1, threads=4, **limits)
    guard_workers.start(processes=1, threads=4, **limits)
    for round_ in range(3):
        # freeze while the backlog runs, so the frozen process holds reserved slots
        wait_for(lambda r=round_: len(sandbox.requests(SEND)) >= 4 + 12 * r, timeout_s=120)
        os.killpg(frozen.pid, signal.SIGSTOP)
        try:
            time.sleep(3.0)  # the stall itself, not a wait for an outcome
        finally:
            os.killpg(frozen.pid, signal.SIGCONT)

    def settled() -> dict[str, str]:
        now = statuses(job_store, ids)
        return now if all(s in ("sent", "failed", "dead") for s in now.values()) else {}

    final = wait_for(settled, timeout_s=180, interval_s=0.2)
    assert count_by(final.values()) == {"sent": 60}, guard_workers.log_text()[-2000:]
    sends = [entry for entry in sandbox.requests(SEND) if entry["http_status"] == 200]
    assert sorted(entry["params"]["Referenciausuario"] for entry in sends) == sorted(ids)
    times = [entry["epoch_s"] for entry in sandbox.requests(SEND)]
    assert worst_window(times, 1.0) <= 4


# --- a stalled holder of a request's in-flight lock (in process, manual clock) ----------
PARAMS: dict[str, object] = {
    "Remitente": "ACME",
    "Destinatarios": [{"Movil": "34600000000"}],
    "Mensaje": "hola",
}


def _stalling_guard(
    settings: Settings, client: redis.Redis, clock: ManualClock, stall: Callable[[], None]
) -> ProviderGuard:
    """A guard whose first sleep on a slot runs ``stall`` (the holder freezes there)."""

    stalls = [stall]

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if stalls:
            stalls.pop()()

    return ProviderGuard(client, settings, clock=clock, sleep=sleep)


def _lock_key(guard: ProviderGuard) -> str:
    digest = fingerprint("send", PARAMS)
    return guard.cache.lock_key("request:" + digest)


def _expire(client: redis.Redis, key: str) -> None:
    """Let ``key`` expire (as a lock does when its holder outlives its TTL)."""
    client.pexpire(key, 1)
    wait_for(lambda: not client.exists(key), timeout_s=10, interval_s=0.01)


def test_guard_stalled_lock_holder_and_successor_make_one_rejected_request(
    settings: Settings, redis_client: redis.Redis, manual_clock: ManualClock
) -> None:
    """The holder of a request's lock stalls until the lock expires; its successor sends the
    identical request and is rejected: the holder, waking, does not send (one request)."""
    s = settings.model_copy(update={"rate_limit_per_s": 1.0, "rate_limit_send_per_s": 1.0})
    calls: list[str] = []
    error = BadRequestData("bad", function="send", res=-3, provider_text="Remitente")

    def fn(who: str) -> Callable[[], object]:
        def call() -> object:
            calls.append(who)
            raise error

        return call

    successor = ProviderGuard(redis_client, s, clock=manual_clock, sleep=manual_clock.sleep)

    def stall() -> None:
        _expire(redis_client, _lock_key(successor))
        with pytest.raises(BadRequestData):
            successor.call(function="send", budget=Budget.SEND, fingerprint=PARAMS, fn=fn("b"))

    holder = _stalling_guard(s, redis_client, manual_clock, stall)
    holder.limiter.reserve(Budget.SEND)  # the holder's slot is in the future: it sleeps
    with pytest.raises(RepeatedRejection) as info:
        holder.call(function="send", budget=Budget.SEND, fingerprint=PARAMS, fn=fn("a"))
    assert calls == ["b"]
    assert info.value.first_rejection["res"] == -3


def test_guard_stalled_lock_holder_does_not_send_while_successor_holds_it(
    settings: Settings, redis_client: redis.Redis, manual_clock: ManualClock
) -> None:
    """The holder's lock expires during its stall and another caller takes it: the holder,
    waking, is told to come back (single_flight) instead of sending alongside."""
    s = settings.model_copy(update={"rate_limit_per_s": 1.0, "rate_limit_send_per_s": 1.0})
    calls: list[str] = []
    other = ProviderGuard(redis_client, s, clock=manual_clock, sleep=manual_clock.sleep)
    taken: list[str | None] = []

    def stall() -> None:
        _expire(redis_client, _lock_key(other))
        name = "request:" + fingerprint("send", PARAMS)
        taken.append(other.cache.claim(name, other.memo.key("x"), ttl_s=60)[1])

    holder = _stalling_guard(s, redis_client, manual_clock, stall)
    holder.limiter.reserve(Budget.SEND)
    with pytest.raises(GuardDelay) as info:
        holder.call(
            function="send", budget=Budget.SEND, fingerprint=PARAMS, fn=lambda: calls.append("a")
        )
    assert info.value.reason == "single_flight"
    assert calls == [] and taken[0] is not None
    assert redis_client.get(_lock_key(other)) == taken[0].encode()  # the successor's lock kept
