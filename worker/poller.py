"""The report poller: status without callbacks, and for the callbacks that were lost.

Run by the elected maintenance runner (:mod:`worker.maintenance`), so N worker
processes on M hosts poll as one. Redis keys (under the namespace):

- ``poller:due``     sorted set: send job id → next poll time (epoch seconds);
- ``poller:meta``    hash: job id → JSON ``{message_id, step, since, horizon}``;
- ``poller:cursor``  hash: status index → the highest score already discovered.

A send is *tracked* when it shows up in the ``sent``/``scheduled``/``delivered``
status indexes (discovered incrementally by score, so a job reconciled from
``uncertain`` or resolved by an operator is tracked too). Its polls back off:
the first ``poller_schedule_s[0]`` after it was sent (or after its ``Fecha``), then
each next step, then the last step again and again — until every recipient is
final (the job leaves the pollable states and is forgotten at its next due time),
or until its validity period (``Vpd``/``Vph``/``Vpm``, else
``poller_default_validity_s``, plus ``Aceptacion`` days) and ``poller_margin_s``
have passed: then the job becomes ``failed`` with a reason starting ``expired:``.

A poll is one ``GetReportSMSCERTIFICADO`` made through the guard (query budget,
breaker, memo, cache), directly from the runner: no job record per poll. Its
answer goes through :func:`worker.status_updates.apply_recipient_status` (source
``report``), exactly like a callback. Due entries are claimed atomically (a Lua
script moves their score forward), so even two runners that both believe they lead
never poll one message twice.

Sources (``status_source``): ``polling`` polls every tracked message on schedule;
``both`` polls only messages that had no callback for ``poller_callback_grace_s``;
``callbacks`` never polls; ``auto`` is ``both`` when callback credentials are set,
else ``polling``. ``poller_enabled=false`` turns polling off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import dramatiq
import redis
import structlog

from certsms.config.settings import Settings
from certsms.mensatek.client import MensatekClient
from certsms.mensatek.errors import MensatekError, ProviderRejected
from certsms.mensatek.payloads import stored_send_request
from certsms.mensatek.requests import ReportRequest
from certsms.worker import metrics
from certsms.worker.guard import Budget, GuardDelay, ProviderGuard, RepeatedRejection
from certsms.worker.guard.codecs import REPORT_CODEC, report_cache_key
from certsms.worker.jobs.producer import Producer
from certsms.worker.jobs.store import JobRecord, JobStatus, JobStore, utc_now_iso
from certsms.worker.status_updates import Enqueue, apply_recipient_status

log = structlog.get_logger(__name__)

#: Job statuses whose message may still change at the provider.
POLLABLE: frozenset[JobStatus] = frozenset(
    {JobStatus.SENT, JobStatus.SCHEDULED, JobStatus.DELIVERED}
)
_CLAIM_S = 300.0  # a claimed entry is pushed this far ahead until its poll is done

_CLAIM_LUA = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id) end
return ids
"""


def status_source(settings: Settings) -> str:
    """The effective source: ``callbacks``, ``polling`` or ``both`` (``auto`` resolved)."""
    if settings.status_source != "auto":
        return settings.status_source
    return "both" if settings.callback_user else "polling"


def polling_active(settings: Settings) -> bool:
    """Whether the poller polls at all."""
    return settings.poller_enabled and status_source(settings) != "callbacks"


def validity_s(payload: Mapping[str, Any] | None, settings: Settings) -> int:
    """How long the provider keeps trying a send: Vpd/Vph/Vpm (+ Aceptacion days)."""
    request = stored_send_request(payload)
    days = (request.validity_days or 0) if request else 0
    hours = (request.validity_hours or 0) if request else 0
    minutes = (request.validity_minutes or 0) if request else 0
    period = days * 86_400 + hours * 3600 + minutes * 60
    if period <= 0:
        period = settings.poller_default_validity_s
    acceptance = ((request.acceptance_days or 0) if request else 0) * 86_400
    return period + acceptance


def scheduled_ts(payload: Mapping[str, Any] | None) -> float | None:
    """The send's ``Fecha`` as epoch seconds, when it has one."""
    request = stored_send_request(payload)
    if request is None or request.scheduled_at is None:
        return None
    return request.scheduled_at.timestamp()


@dataclass
class PollRun:
    """What one :meth:`ReportPoller.run_once` did."""

    discovered: int = 0
    polled: int = 0
    skipped: int = 0
    forgotten: int = 0
    expired: int = 0
    delayed: int = 0


class ReportPoller:
    """See the module docstring. ``clock`` gives epoch seconds (tests pass their own)."""

    def __init__(
        self,
        redis_client: redis.Redis,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        guard: ProviderGuard | None = None,
        client: Any = None,
        enqueue: Enqueue | None = None,
    ) -> None:
        """``enqueue`` queues the certificate downloads the report's statuses call for
        (default: a :class:`~worker.jobs.producer.Producer` on dramatiq's broker)."""
        self.redis = redis_client
        self.settings = settings
        self.clock = clock
        self.store = JobStore(redis_client, settings)
        self._guard = guard
        self._client = client
        self._enqueue = enqueue
        self.due_key = settings.key("poller", "due")
        self.meta_key = settings.key("poller", "meta")
        self.cursor_key = settings.key("poller", "cursor")
        self._claim = redis_client.register_script(_CLAIM_LUA)

    # --- collaborators (built lazily: a runner that never polls needs no client) ----------
    @property
    def guard(self) -> ProviderGuard:
        if self._guard is None:
            self._guard = ProviderGuard(self.redis, self.settings)
        return self._guard

    @property
    def enqueue(self) -> Enqueue:
        if self._enqueue is None:
            producer = Producer(self.redis, self.settings, broker=dramatiq.get_broker())
            self._enqueue = producer.enqueue_follow_up
        return self._enqueue

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = MensatekClient(self.settings)
        return self._client

    def close(self) -> None:
        """Close the HTTP client, if one was made."""
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()

    # --- tracking ------------------------------------------------------------------------
    def next_delay_s(self, step: int) -> float:
        """The wait before poll number ``step`` (0-based): the schedule, then its last step."""
        schedule = self.settings.poller_schedule_s or (3600,)
        return float(schedule[min(step, len(schedule) - 1)])

    def track(self, job_id: str, *, now: float | None = None) -> bool:
        """Start polling a send job (no-op when already tracked); True when added."""
        now = self.clock() if now is None else now
        record = self.store.get(job_id)
        if record is None or not record.idmensaje:
            return False
        payload = self.store.payload(job_id)
        since = max(now, scheduled_ts(payload) or 0.0)
        meta = {
            "message_id": int(record.idmensaje),
            "step": 0,
            "since": since,
            "horizon": since + validity_s(payload, self.settings) + self.settings.poller_margin_s,
        }
        if not self.redis.hsetnx(self.meta_key, job_id, json.dumps(meta)):
            return False
        self.redis.zadd(self.due_key, {job_id: since + self.next_delay_s(0)}, nx=True)
        return True

    def forget(self, job_id: str) -> None:
        """Stop polling a job."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.due_key, job_id)
        pipe.hdel(self.meta_key, job_id)
        pipe.execute()

    def next_poll(self, job_id: str) -> float | None:
        """When the job will be polled next (epoch seconds), or None when not tracked."""
        score = self.redis.zscore(self.due_key, job_id)
        return None if score is None else float(score)

    def discover(self, *, now: float | None = None) -> int:
        """Track every send that entered a pollable state since the last discovery."""
        now = self.clock() if now is None else now
        added = 0
        for status in sorted(POLLABLE):
            raw = self.redis.hget(self.cursor_key, str(status))
            low = float(cast(bytes, raw)) if raw else 0.0
            rows = self.store.entered_status(status, since=low, limit=5000)
            for job_id, score in rows:
                if self.track(job_id, now=now):
                    added += 1
                low = max(low, score)
            if rows:
                self.redis.hset(self.cursor_key, str(status), repr(low))
        return added

    # --- polling -------------------------------------------------------------------------
    def run_once(self, *, now: float | None = None) -> PollRun:
        """Discover new sends, then poll the due ones (at most ``poller_batch_size``)."""
        run = PollRun()
        if not polling_active(self.settings):
            return run
        now = self.clock() if now is None else now
        run.discovered = self.discover(now=now)
        ids = [
            raw.decode()
            for raw in cast(
                list[bytes],
                self._claim(
                    keys=[self.due_key],
                    args=[repr(now), self.settings.poller_batch_size, repr(now + _CLAIM_S)],
                ),
            )
        ]
        for index, job_id in enumerate(ids):
            try:
                self._handle(job_id, now, run)
            except GuardDelay as exc:
                # the provider is off limits for now: come back to these later, no step used
                run.delayed += len(ids) - index
                for pending in ids[index:]:
                    self.redis.zadd(self.due_key, {pending: now + exc.delay_s}, xx=True)
                metrics.REPORT_POLLS.labels(outcome="delayed").inc()
                log.info("report_poll_delayed", reason=exc.reason, delay_s=round(exc.delay_s, 1))
                break
        return run

    def _meta(self, job_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.meta_key, job_id)
        return None if raw is None else cast(dict[str, Any], json.loads(cast(bytes, raw)))

    def _handle(self, job_id: str, now: float, run: PollRun) -> None:
        record = self.store.get(job_id)
        meta = self._meta(job_id)
        if record is None or meta is None or record.status not in POLLABLE:
            self.forget(job_id)
            run.forgotten += 1
            return
        if now >= float(meta["horizon"]):
            self._expire(job_id, record, meta, now)
            run.expired += 1
            return
        if status_source(self.settings) == "both":
            heard = max(record.last_callback_ts or 0.0, float(meta["since"]))
            quiet_until = heard + self.settings.poller_callback_grace_s
            if now < quiet_until:
                # callbacks are arriving: wait until this message has been silent long enough
                self.redis.zadd(self.due_key, {job_id: quiet_until}, xx=True)
                run.skipped += 1
                return
        self._poll(job_id, int(meta["message_id"]))
        run.polled += 1
        after = self.store.status(job_id)
        if after is None or after not in POLLABLE:
            self.forget(job_id)
            run.forgotten += 1
            return
        meta["step"] = int(meta["step"]) + 1
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.meta_key, job_id, json.dumps(meta))
        pipe.zadd(self.due_key, {job_id: now + self.next_delay_s(int(meta["step"]))}, xx=True)
        pipe.execute()

    def _poll(self, job_id: str, message_id: int) -> None:
        """One report request through the guard; its answer applied like callbacks."""
        request = ReportRequest(message_id=message_id)
        try:
            result = self.guard.call(
                function="report",
                budget=Budget.QUERY,
                fingerprint=request.fingerprint_params(),
                fn=lambda: self.client.report(request),
                cache_key=report_cache_key(message_id),
                codec=REPORT_CODEC,
            )
        except GuardDelay:
            raise
        except (ProviderRejected, RepeatedRejection) as exc:
            metrics.REPORT_POLLS.labels(outcome="rejected").inc()
            log.warning("report_poll_rejected", job_id=job_id, idmensaje=message_id, res=exc.res)
            return
        except (MensatekError, OSError) as exc:
            metrics.REPORT_POLLS.labels(outcome="error").inc()
            log.warning(
                "report_poll_failed",
                job_id=job_id,
                idmensaje=message_id,
                error_class=type(exc).__name__,
            )
            return
        for entry in result.recipients:
            if entry.result_code is None or not entry.phone:
                continue
            apply_recipient_status(
                self.store,
                message_id=message_id,
                reference=None,
                phone=entry.phone,
                result_code=entry.result_code,
                at=entry.reported_at,
                source="report",
                enqueue=self.enqueue,
            )
        self.store.increment(job_id, "polls")
        self.store.set_fields(job_id, last_poll_at=utc_now_iso())
        metrics.REPORT_POLLS.labels(outcome="ok").inc()
        log.info(
            "report_polled", job_id=job_id, idmensaje=message_id, recipients=len(result.recipients)
        )

    def _expire(self, job_id: str, record: JobRecord, meta: dict[str, Any], now: float) -> None:
        """Validity period and margin are over and the provider never gave a final status."""
        reason = (
            f"expired: no final status from the provider by the end of the validity period "
            f"plus margin (last status {record.status}); polling stopped"
        )
        moved = self.store.transition(
            job_id, JobStatus.FAILED, reason=reason, source="poller", status_unknown=1
        )
        self.forget(job_id)
        metrics.REPORT_POLLS.labels(outcome="expired").inc()
        log.warning(
            "status_polling_expired",
            job_id=job_id,
            idmensaje=meta.get("message_id"),
            last_status=record.status,
            moved=bool(moved),
        )
