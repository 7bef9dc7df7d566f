"""The job middleware: contract and poison checks, log context, one line per outcome.

For every message it:

- counts how often this exact enqueued copy (``redis_message_id``) started; a copy
  that started before and was never acknowledged is a redelivery (its worker died).
  More than ``max_redeliveries`` → dead-lettered as poison;
- checks certsms messages against the contract (:mod:`worker.jobs.contract`); a broken
  one is dead-lettered with the reason, never retried;
- binds ``job_id``, ``message_id``, ``actor``, ``kind``, ``attempt`` to structlog's
  contextvars for every log line of the job, and clears them after;
- writes ONE canonical line per outcome: ``job_succeeded``, ``job_failed``,
  ``job_retrying``, ``job_uncertain`` or ``job_dead``, with ``duration_ms``,
  the provider ``function``, ``res`` and ``http_status``;
- before a message is dead-lettered (nack), records why (:mod:`worker.deadletter`)
  and moves its job to ``dead`` (a ``failed`` job stays ``failed``).

Actors report what happened through :func:`report_outcome`.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

import structlog
from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from certsms.config.settings import Settings
from certsms.worker import metrics
from certsms.worker.deadletter import dead_letter_message
from certsms.worker.errors import MalformedMessage
from certsms.worker.jobs.contract import KIND_OF_ACTOR, parse_kwargs

log = structlog.get_logger(__name__)

_CONTEXT_KEYS = ("job_id", "message_id", "actor", "kind", "attempt", "redelivery")
_DELIVERIES_TTL_S = 8 * 86_400
_OUTCOMES = frozenset({"succeeded", "failed", "retrying", "uncertain", "dead"})


class _State:
    def __init__(self, job_id: str | None, kind: str | None) -> None:
        self.started = time.monotonic()
        self.job_id = job_id
        self.kind = kind
        self.fields: dict[str, Any] = {}


_STATE: contextvars.ContextVar[_State | None] = contextvars.ContextVar("certsms_job", default=None)


def report_outcome(outcome: str | None = None, **fields: Any) -> None:
    """Tell the middleware what the job did (outcome, function, res, http_status, ...)."""
    state = _STATE.get()
    if state is None:
        return
    if outcome is not None:
        state.fields["outcome"] = outcome
    state.fields.update({k: v for k, v in fields.items() if v is not None})


def redelivery_count() -> int:
    """How many times the current message was delivered before (0 = first delivery)."""
    state = _STATE.get()
    return int(state.fields.get("_redelivery", 0)) if state else 0


def _error_fields(exc: BaseException | None) -> dict[str, Any]:
    if exc is None:
        return {}
    return {
        "error_class": type(exc).__name__,
        "res": getattr(exc, "res", None),
        "http_status": getattr(exc, "http_status", None),
        "function": getattr(exc, "function", None),
        "error": str(exc)[:300],
    }


class JobMiddleware(Middleware):
    """See the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _settings(self, broker: Broker) -> Settings:
        return getattr(broker, "settings", self.settings)

    # --- before ---------------------------------------------------------------------
    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        settings = self._settings(broker)
        kind = KIND_OF_ACTOR.get(message.actor_name)
        kwargs = message.kwargs if isinstance(message.kwargs, dict) else {}
        job_id = kwargs.get("job_id") if isinstance(kwargs.get("job_id"), str) else None
        state = _State(job_id, kind)
        _STATE.set(state)
        redelivery = self._count_delivery(broker, settings, message)
        state.fields["_redelivery"] = redelivery
        structlog.contextvars.bind_contextvars(
            job_id=job_id,
            message_id=message.message_id,
            actor=message.actor_name,
            kind=kind,
            attempt=int(message.options.get("retries", 0)) + 1,
            redelivery=redelivery or None,
        )
        if redelivery > settings.max_redeliveries:
            self._dead(message, f"poison: redelivered {redelivery} times without finishing")
        if kind is not None:
            try:
                parse_kwargs(message.actor_name, message.args, message.kwargs)
            except MalformedMessage as exc:
                self._dead(message, f"malformed message: {exc.reason}")

    def _count_delivery(self, broker: Broker, settings: Settings, message: MessageProxy) -> int:
        rid = message.options.get("redis_message_id")
        client = getattr(broker, "client", None)
        if not rid or client is None:
            return 0
        key = settings.key("deliveries", str(rid))
        pipe = client.pipeline()
        pipe.incr(key)
        pipe.expire(key, _DELIVERIES_TTL_S)
        count = int(pipe.execute()[0])
        return count - 1

    def _dead(self, message: MessageProxy, reason: str) -> None:
        message.options["certsms_dead_reason"] = reason
        message.fail()
        raise SkipMessage(reason)

    # --- after ----------------------------------------------------------------------
    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        reason = message.options.get("certsms_dead_reason")
        if reason:
            self._line("dead", message, {"reason": reason})
        self._clear()

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        state = _STATE.get()
        fields = dict(state.fields) if state else {}
        outcome = fields.pop("outcome", None)
        if exception is None:
            outcome = outcome or "succeeded"
        else:
            fields.update({k: v for k, v in _error_fields(exception).items() if v is not None})
            actor = broker.actors.get(message.actor_name)
            throws = message.options.get("throws") or (
                actor.options.get("throws") if actor else None
            )
            if message.failed:
                outcome = "failed" if throws and isinstance(exception, throws) else "dead"
                if outcome == "dead":
                    fields.setdefault("reason", "retries exhausted")
            else:
                outcome = "retrying"
                fields["retries"] = message.options.get("retries")
        self._line(outcome, message, fields)
        self._clear()

    def _line(self, outcome: str, message: MessageProxy, fields: dict[str, Any]) -> None:
        state = _STATE.get()
        duration_ms = round((time.monotonic() - state.started) * 1000, 1) if state else None
        fields = {k: v for k, v in fields.items() if not k.startswith("_")}
        outcome = outcome if outcome in _OUTCOMES else "succeeded"
        kind = KIND_OF_ACTOR.get(message.actor_name)
        if kind is not None and "function" not in fields:
            fields["function"] = self.settings.function_path(kind)
        level = "warning" if outcome in ("failed", "dead", "uncertain") else "info"
        getattr(log, level)(f"job_{outcome}", duration_ms=duration_ms, **fields)
        metrics.JOBS.labels(kind=kind or message.actor_name, outcome=outcome).inc()

    def _clear(self) -> None:
        structlog.contextvars.unbind_contextvars(*_CONTEXT_KEYS)
        _STATE.set(None)

    # --- dead letters ---------------------------------------------------------------------
    def before_nack(self, broker: Broker, message: MessageProxy) -> None:
        exception = getattr(message, "_exception", None)
        reason = message.options.get("certsms_dead_reason")
        if reason is None and exception is not None:
            actor = broker.actors.get(message.actor_name)
            throws = actor.options.get("throws") if actor else None
            if throws and isinstance(exception, throws):
                reason = f"permanent error: {type(exception).__name__}: {exception}"
            elif type(exception).__name__ == "ActorNotFound":
                reason = f"unknown actor {message.actor_name!r}"
            else:
                reason = f"retries exhausted: {type(exception).__name__}: {exception}"
        dead_letter_message(
            broker, self._settings(broker), message, reason=reason or "failed", exception=exception
        )

    def after_ack(self, broker: Broker, message: MessageProxy) -> None:
        self._forget(broker, message)

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        self._forget(broker, message)

    def _forget(self, broker: Broker, message: MessageProxy) -> None:
        rid = message.options.get("redis_message_id")
        client = getattr(broker, "client", None)
        if rid and client is not None:
            client.delete(self._settings(broker).key("deliveries", str(rid)))
