"""The provider-health breaker, shared by every process through one Redis hash.

closed → (``breaker_failure_threshold`` consecutive unhealthy answers) → open for
``breaker_cooldown_s · 2^step`` (capped at ``breaker_max_cooldown_s``) → half-open:
exactly one probe (a ``SET NX PX`` lock) → success closes and resets the step; a
failed probe reopens with the next step. An authentication failure opens at once
for ``breaker_auth_cooldown_s``. Transitions are logged, counted in Redis
(``<ns>:guard:breaker:transitions``) and in Prometheus.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from redis import Redis
from redis.client import Pipeline

from certsms.config.settings import Settings
from certsms.worker import metrics
from certsms.worker.guard._common import Clock, load_script, now_arg, request_budget_s, text
from certsms.worker.guard.errors import GuardDelay

_STATE_VALUE = {"opened": 2, "half_opened": 1, "closed": 0}

log = structlog.get_logger(__name__)


class Breaker:
    """One shared breaker; methods take the probe token :meth:`admit` handed out."""

    def __init__(self, redis: Redis, settings: Settings, *, clock: Clock | None = None) -> None:
        self._redis = redis
        self._settings = settings
        self._clock = clock
        self._script = redis.register_script(load_script("breaker.lua"))
        self.state_key = settings.key("guard", "breaker")
        self.probe_key = settings.key("guard", "breaker", "probe")
        self.transitions_key = settings.key("guard", "breaker", "transitions")
        self.probe_ttl_s = request_budget_s(settings)

    def _run(self, op: str, token: str | None = None, **log_fields: object) -> tuple[str, float]:
        keys, args = self._call(op, token)
        return self.finish(op, self._script(keys=keys, args=args), **log_fields)

    def _call(self, op: str, token: str | None) -> tuple[list[str], list[str | int]]:
        s = self._settings
        return (
            [self.state_key, self.probe_key, self.transitions_key],
            [
                op,
                now_arg(self._clock),
                token or "",
                s.breaker_failure_threshold,
                int(s.breaker_cooldown_s * 1e6),
                int(s.breaker_max_cooldown_s * 1e6),
                int(s.breaker_auth_cooldown_s * 1e6),
                int(self.probe_ttl_s * 1000),
            ],
        )

    def queue(self, op: str, token: str | None, pipe: Pipeline) -> None:
        """Add ``op`` to a pipeline; interpret its reply with :meth:`finish`."""
        keys, args = self._call(op, token)
        self._script(keys=keys, args=args, client=pipe)

    def finish(self, op: str, reply: Any, **log_fields: object) -> tuple[str, float]:
        """Interpret a reply of the breaker script: log and count a transition."""
        decision, wait_us, transition, step = reply
        decision, transition = text(decision), text(transition)
        wait_s = int(wait_us) / 1e6
        if transition:
            metrics.BREAKER_TRANSITIONS.labels(to_state=transition).inc()
            metrics.BREAKER_STATE.set(_STATE_VALUE.get(transition, 0))
            event = f"breaker_{transition}"
            fields = {"op": op, "step": int(step), "cooldown_s": wait_s, **log_fields}
            if op == "auth":
                log.critical(
                    event,
                    reason="authentication_failed",
                    hint="check MENSATEK_API_USER / MENSATEK_API_TOKEN; "
                    "all provider traffic is stopped for breaker_auth_cooldown_s",
                    **fields,
                )
            elif transition == "opened":
                log.error(event, **fields)
            else:
                log.warning(event, **fields)
        return decision, wait_s

    def admit(self, *, function: str | None = None) -> str | None:
        """Let a call through: ``None`` when closed, a probe token when half-open.

        Raises :class:`GuardDelay` (``breaker_open``) while open or while another
        process holds the probe.
        """
        token = uuid.uuid4().hex
        return self.admitted(token, self._run("check", token), function=function)

    def admitted(
        self, token: str, checked: tuple[str, float], *, function: str | None = None
    ) -> str | None:
        """The verdict of a ``check`` for ``token`` (see :meth:`admit`)."""
        decision, wait_s = checked
        if decision == "closed":
            return None
        if decision == "probe":
            log.info("breaker_probe_started", function=function)
            return token
        if decision == "busy":  # the probe's verdict comes soon; do not wait its lock out
            wait_s = min(wait_s, self._settings.breaker_cooldown_s)
        raise GuardDelay(delay_s=wait_s, reason="breaker_open", function=function)

    def gate(self, token: str | None, *, function: str | None = None) -> None:
        """Read-only re-check just before the request (the breaker may have opened meanwhile)."""
        self.gated(self._run("gate", token), function=function)

    def gated(self, checked: tuple[str, float], *, function: str | None = None) -> None:
        """Raise :class:`GuardDelay` unless a ``gate`` verdict lets the request go."""
        decision, wait_s = checked
        if decision != "closed":
            raise GuardDelay(
                delay_s=max(wait_s, min(1.0, self._settings.breaker_cooldown_s)),
                reason="breaker_open",
                function=function,
            )

    def record_success(self, token: str | None) -> None:
        """A healthy answer (including a provider rejection): resets the count; a probe closes."""
        self._run("success", token)

    def record_failure(self, token: str | None, *, error: BaseException | None = None) -> None:
        """An unhealthy answer: counts; opens at the threshold; a failed probe reopens."""
        self._run("failure", token, error=type(error).__name__ if error else None)

    def record_auth_failure(self, token: str | None, *, function: str | None = None) -> None:
        """Wrong credentials: open at once for ``breaker_auth_cooldown_s`` (logged critical)."""
        self._run("auth", token, function=function)

    def release(self, token: str | None) -> None:
        """Give the probe back without a verdict (the call never reached the provider)."""
        if token:
            self._run("release", token)

    def reset(self) -> None:
        """Close the breaker on operator request and reset the step."""
        self._run("reset")

    def state(self, now_s: float) -> dict[str, object]:
        """State, consecutive failures, open_until, step, probe in flight and transition counts."""
        raw = {text(k): text(v) for k, v in self._redis.hgetall(self.state_key).items()}
        counts = {text(k): int(v) for k, v in self._redis.hgetall(self.transitions_key).items()}
        open_until_s = int(raw.get("open_until") or 0) / 1e6
        state = raw.get("state", "closed")
        return {
            "state": state,
            "failures": int(raw.get("failures") or 0),
            "step": int(raw.get("step") or 0),
            "reason": raw.get("reason") or None,
            "open_until": open_until_s or None,
            "remaining_s": max(0.0, open_until_s - now_s) if state == "open" else 0.0,
            "probe_in_flight": bool(self._redis.exists(self.probe_key)),
            "transitions": counts,
        }
