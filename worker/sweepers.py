"""Sweepers: nothing stays stuck in a non-final state.

Run by the elected maintenance runner (:mod:`worker.maintenance`) every cycle:

- :meth:`Sweepers.in_flight` — an ``in_flight`` send older than ``in_flight_timeout_s``
  whose worker process is gone (no heartbeat in ``<ns>:workers:alive`` for
  ``heartbeat_timeout_s``) becomes ``uncertain`` with the reason; it is never
  re-posted automatically (a later callback with its reference resolves it, or an
  operator with ``certsms resolve``).
- :meth:`Sweepers.evidence` — a ``certified`` job whose certified recipients'
  certificates are not all in the evidence store ``evidence_retry_s`` after it was
  certified gets the missing downloads re-enqueued (at most once per
  ``evidence_retry_s`` per recipient, and not while a download is still queued or
  running); after ``evidence_give_up_s`` it stops retrying, logs ``evidence_overdue``
  at error level once per job and counts ``certsms_evidence_overdue_total``.
- :meth:`Sweepers.stalled` — a ``queued`` or ``running`` job older than
  ``stalled_after_s`` (and past its ``held_until``) with no dramatiq message in its
  queue, its delay queue or being worked on (e.g. Redis restored from an old
  snapshot) is re-queued ONCE (marker field ``requeued_by_sweeper``, event
  ``job_requeued`` with the reason); a second stall is logged (``job_stalled``) and
  left for an operator.

Worker presence: each worker process's runner thread beats
``<ns>:workers:alive`` (member ``host:pid``), matching the ``worker_id``
(``host:pid:thread``) a send records when it goes ``in_flight``. Beats and sweeps
read Redis' clock (:class:`~worker.redis_client.RedisClock`, ``TIME``), never the
host's: a host whose clock is off does not take a live worker for dead.

Keys that would hold a phone number hold its hash instead
(:func:`worker.jobs.store.phone_digest`): the evidence retry marker is
``<ns>:evidence-retry:<idMensaje>:<sha256(phone)[:24]>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import dramatiq
import redis
import structlog

from certsms.config.settings import Settings
from certsms.worker import metrics
from certsms.worker.dramatiq_keys import broker_namespace, delayed_queue, messages_key
from certsms.worker.evidence import EvidenceStore
from certsms.worker.jobs.contract import QUEUE_OF, QUEUES
from certsms.worker.jobs.producer import Producer
from certsms.worker.jobs.store import JobStatus, JobStore, phone_digest
from certsms.worker.redis_client import RedisClock
from certsms.worker.status_updates import (
    Enqueue,
    certificate_trigger_key,
    complete_evidence,
    replay_kept,
)

log = structlog.get_logger(__name__)

_SCAN_LIMIT = 500


def workers_key(settings: Settings) -> str:
    """The sorted set of live worker processes (``host:pid`` → last beat, epoch s)."""
    return settings.key("workers", "alive")


def beat(
    client: redis.Redis,
    settings: Settings,
    process_id: str,
    *,
    now: float | None = None,
    clock: Callable[[], float] | None = None,
) -> None:
    """Record that worker process ``process_id`` (``host:pid``) is alive, at ``now``
    (default: Redis' clock, or ``clock`` when given)."""
    if now is None:
        now = clock() if clock is not None else RedisClock(client)()
    client.zadd(workers_key(settings), {process_id: now})


def _process_of(worker_id: str) -> str:
    parts = worker_id.split(":")
    return ":".join(parts[:2]) if len(parts) >= 2 else worker_id


@dataclass
class SweepRun:
    """What one :meth:`Sweepers.run_once` did (job ids per action)."""

    uncertain: list[str]
    evidence_requeued: list[str]
    evidence_overdue: list[str]
    requeued: list[str]
    events_trimmed: int = 0


class Sweepers:
    """See the module docstring. ``clock`` gives epoch seconds (default: Redis' clock;
    tests pass their own)."""

    def __init__(
        self,
        redis_client: redis.Redis,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        enqueue: Enqueue | None = None,
        requeue: Callable[[str], str] | None = None,
    ) -> None:
        self.redis = redis_client
        self.settings = settings
        self.clock = clock if clock is not None else RedisClock(redis_client)
        self.store = JobStore(redis_client, settings)
        self._enqueue = enqueue
        self._requeue = requeue

    def _producer(self) -> Producer:
        """The default for ``enqueue``/``requeue``: a producer on dramatiq's broker."""
        return Producer(self.redis, self.settings, broker=dramatiq.get_broker(), store=self.store)

    @property
    def enqueue(self) -> Enqueue:
        """How follow-up jobs (certificate downloads) are queued."""
        if self._enqueue is None:
            self._enqueue = self._producer().enqueue_follow_up
        return self._enqueue

    @property
    def requeue(self) -> Callable[[str], str]:
        """How a stalled job gets a fresh message."""
        if self._requeue is None:
            self._requeue = self._producer().requeue
        return self._requeue

    def run_once(self, *, now: float | None = None) -> SweepRun:
        """Every sweeper once."""
        now = self.clock() if now is None else now
        overdue: list[str] = []
        requeued_evidence = self.evidence(now=now, overdue=overdue)
        return SweepRun(
            uncertain=self.in_flight(now=now),
            evidence_requeued=requeued_evidence,
            evidence_overdue=overdue,
            requeued=self.stalled(now=now),
            events_trimmed=self.store.trim_events(now=now),
        )

    def _older(self, status: JobStatus, before: float) -> list[str]:
        rows = self.store.entered_status(status, until=before, limit=_SCAN_LIMIT)
        return [job_id for job_id, _ in rows]

    # --- in_flight → uncertain -------------------------------------------------------------
    def worker_alive(self, worker_id: str, *, now: float) -> bool:
        """Whether the process that owns ``worker_id`` beat within ``heartbeat_timeout_s``."""
        score = self.redis.zscore(workers_key(self.settings), _process_of(worker_id))
        return score is not None and now - float(score) <= self.settings.heartbeat_timeout_s

    def in_flight(self, *, now: float) -> list[str]:
        """Old ``in_flight`` sends whose worker is gone → ``uncertain``; their ids."""
        moved: list[str] = []
        timeout = self.settings.in_flight_timeout_s
        for job_id in self._older(JobStatus.IN_FLIGHT, now - timeout):
            record = self.store.get(job_id)
            if record is None:
                continue
            worker, token = record.worker_id or "", record.in_flight_token or ""
            age_s = now - (record.in_flight_ts or 0.0)
            if age_s < timeout or (worker and self.worker_alive(worker, now=now)):
                continue
            reason = (
                f"in_flight for {int(age_s)} s and its worker {worker or '?'} is gone: "
                "the send may or may not have reached the provider"
            )
            if self.store.transition(
                job_id,
                JobStatus.UNCERTAIN,
                expect=[JobStatus.IN_FLIGHT],
                guard=("in_flight_token", token) if token else None,
                reason=reason,
                source="sweeper",
            ):
                moved.append(job_id)
                log.warning(
                    "in_flight_send_uncertain", job_id=job_id, worker_id=worker, age_s=int(age_s)
                )
                # callbacks kept while it was in_flight reconcile it now
                replay_kept(self.store, job_id, enqueue=self.enqueue)
        return moved

    # --- certified without evidence --------------------------------------------------------
    def evidence(self, *, now: float, overdue: list[str] | None = None) -> list[str]:
        """Re-enqueue missing certificate downloads; ids of jobs that got one."""
        evidence = EvidenceStore(self.settings)
        requeued: list[str] = []
        rows = self.store.entered_status(
            JobStatus.CERTIFIED, until=now - self.settings.evidence_retry_s, limit=_SCAN_LIMIT
        )
        for job_id, certified_at in rows:
            record = self.store.get(job_id)
            if record is None or record.status != JobStatus.CERTIFIED:
                continue
            if record.evidence_overdue_at:
                continue
            message_id = record.idmensaje
            if not message_id:
                continue
            if complete_evidence(self.store, job_id, evidence=evidence, enqueue=self.enqueue):
                continue  # everything was there after all
            missing = [
                phone
                for phone, entry in record.recipients.items()
                if entry.status_class == "certified" and not evidence.has(message_id, phone)
            ]
            if not missing:
                continue
            age_s = now - certified_at
            if age_s >= self.settings.evidence_give_up_s:
                self._overdue(job_id, message_id, missing, age_s)
                if overdue is not None:
                    overdue.append(job_id)
                continue
            if any(self._retry_download(job_id, message_id, phone, now) for phone in missing):
                requeued.append(job_id)
        return requeued

    def _retry_download(self, job_id: str, message_id: Any, phone: str, now: float) -> bool:
        trigger = certificate_trigger_key(self.store, message_id, phone)
        current = self.redis.get(trigger)
        cert_job = cast(bytes, current).decode() if current else None
        status = self.store.status(cert_job) if cert_job and cert_job != "-" else None
        if status in (JobStatus.QUEUED, JobStatus.RUNNING):
            return False  # a download is on its way
        marker = self.settings.key("evidence-retry", str(message_id), phone_digest(phone))
        if not self.redis.set(marker, repr(now), nx=True, ex=self.settings.evidence_retry_s):
            return False
        attempt = self.store.increment(job_id, "evidence_retries")
        new_job = self.enqueue(
            "certificate",
            {"Idmensaje": int(message_id), "Telefono": phone},
            f"certificate:{message_id}:{phone}:retry-{attempt}",
        )
        self.redis.set(
            trigger,
            new_job,
            ex=max(self.settings.job_retention_s, self.settings.evidence_give_up_s),
        )
        self.store.append_event(
            job_id,
            "certificate_download_requeued",
            idmensaje=message_id,
            phone=phone,
            certificate_job_id=new_job,
            previous_job_id=cert_job,
            previous_status=status,
        )
        log.warning(
            "certificate_download_requeued",
            job_id=job_id,
            idmensaje=message_id,
            phone=phone,
            certificate_job_id=new_job,
            previous_status=str(status) if status else None,
        )
        return True

    def _overdue(self, job_id: str, message_id: Any, missing: list[str], age_s: float) -> None:
        if not self.store.set_field_once(job_id, "evidence_overdue_at", repr(self.clock())):
            return
        metrics.EVIDENCE_OVERDUE.inc()
        self.store.append_event(
            job_id,
            "evidence_overdue",
            idmensaje=message_id,
            phone=",".join(missing),
            reason=f"no certificate after {int(age_s)} s",
        )
        log.error(
            "evidence_overdue",
            job_id=job_id,
            idmensaje=message_id,
            phone=missing,
            certified_for_s=int(age_s),
            give_up_s=self.settings.evidence_give_up_s,
            action="download it by hand: certsms enqueue certificate, or the provider panel",
        )

    # --- queued/running with no message ----------------------------------------------------
    def queued_job_ids(self) -> set[str]:
        """Job ids of every certsms message in a queue, delay queue or being worked on."""
        namespace = broker_namespace(self.settings)
        found: set[str] = set()
        for queue in QUEUES:
            for name in (queue, delayed_queue(queue)):
                for _, data in self.redis.hscan_iter(messages_key(namespace, name), count=1000):
                    try:
                        kwargs = json.loads(data).get("kwargs") or {}
                    except (ValueError, AttributeError):
                        continue
                    if isinstance(kwargs, dict) and isinstance(kwargs.get("job_id"), str):
                        found.add(kwargs["job_id"])
        return found

    def stalled(self, *, now: float) -> list[str]:
        """Re-queue (once) old queued/running jobs that have no message; their ids."""
        before = now - self.settings.stalled_after_s
        candidates = [
            (job_id, status)
            for status in (JobStatus.QUEUED, JobStatus.RUNNING)
            for job_id in self._older(status, before)
        ]
        if not candidates:
            return []
        present = self.queued_job_ids()
        requeued: list[str] = []
        for job_id, status in candidates:
            if job_id in present:
                continue
            record = self.store.get(job_id)
            if record is None or record.kind not in QUEUE_OF:
                continue
            held = record.held_until_ts
            if held and held + self.settings.stalled_after_s > now:
                continue
            if record.other.get("requeued_by_sweeper"):
                if self.store.set_field_once(job_id, "stalled_logged", 1):
                    log.error(
                        "job_stalled",
                        job_id=job_id,
                        status=str(status),
                        reason="stalled again after one automatic re-queue; left for an operator",
                    )
                continue
            reason = (
                f"stalled: {status} for over {self.settings.stalled_after_s} s with no message "
                "in its queue (lost, e.g. Redis restored from an old snapshot): re-queued once"
            )
            if not self.store.transition(
                job_id,
                JobStatus.QUEUED,
                expect=[status],
                event="job_requeued",
                reason=reason,
                requeued_by_sweeper=repr(now),
                source="sweeper",
                now=now,
            ):
                continue
            self._send(job_id)
            requeued.append(job_id)
            log.warning("job_requeued", job_id=job_id, previous_status=str(status), reason=reason)
        return requeued

    def _send(self, job_id: str) -> str:
        return self.requeue(job_id)
