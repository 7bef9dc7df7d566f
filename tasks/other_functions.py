"""The provider functions other than send, and what their success changes elsewhere.

cancel, reschedule, upload and delete_file write at the provider (a lost answer
after the body left makes the job ``uncertain``); report, certificate, list_files
and credits only read (retried like any failure). After success: a cancel marks
the send job ``cancelled``, a provider reschedule moves its schedule, a report
applies each recipient's status, and a certificate goes to the evidence store.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from certsms.mensatek.answers import IDEMPOTENT
from certsms.mensatek.errors import (
    AuthenticationFailed,
    ProviderRejected,
    ProviderUnavailable,
    TransportError,
)
from certsms.mensatek.payloads import stored_send_request
from certsms.mensatek.results import CertificateResult
from certsms.mensatek.retrying import not_processed
from certsms.mensatek.status import StatusClass, classify
from certsms.tasks import resources
from certsms.tasks.outcomes import (
    breaker_wait_s,
    fail_rejected,
    requeue,
    result_json,
)
from certsms.worker.errors import error_record
from certsms.worker.evidence import EvidenceStore, EvidenceUnavailable
from certsms.worker.guard import Budget, GuardDelay, RepeatedRejection
from certsms.worker.jobs.contract import KINDS
from certsms.worker.jobs.held_sends import with_scheduled_at
from certsms.worker.jobs.store import JobStatus, JobStore, utc_now_iso
from certsms.worker.middleware import report_outcome
from certsms.worker.poller import ReportPoller
from certsms.worker.status_updates import apply_recipient_status, certificate_downloaded

#: Kinds that change something at the provider (send budget, send retries).
WRITE_KINDS: frozenset[str] = frozenset(KINDS) - IDEMPOTENT


def run_other(store: JobStore, job_id: str, kind: str, request: Any) -> None:
    """Run a job of any kind but send once its request is valid."""
    if not store.transition(
        job_id, JobStatus.RUNNING, expect=[JobStatus.QUEUED, JobStatus.RUNNING]
    ):
        report_outcome("succeeded", duplicate=True, status=str(store.status(job_id)))
        return
    store.transition(
        job_id,
        JobStatus.RUNNING,
        expect=[JobStatus.RUNNING],
        incr_attempts=1,
        event="job_attempt_started",
        worker_id=resources.worker_id(),
    )
    budget = Budget.SEND if kind in WRITE_KINDS else Budget.QUERY
    if kind == "certificate" and getattr(request, "mode", None) == "date_range":
        budget = Budget.RANGE_DOWNLOAD
    elif kind == "certificate":
        budget = Budget.CERTIFICATE  # its own budget, sized from the send rate (issue 13)
    fingerprint = request.fingerprint_params() if request is not None else None
    download: Path | None = None
    try:
        if kind == "credits":
            credits, age_s = resources.guard().credits(lambda: resources.client().credits())
            result: Any = {"credits": credits, "age_s": age_s}
        elif kind == "certificate" and (kept := _kept_download(request)) is not None:
            # downloaded before, when the evidence store could not take it: no new request
            result = CertificateResult.from_zip(kept)
        else:
            if kind == "certificate":
                # a full or unwritable evidence store: wait, download nothing (issue 13)
                attempts = getattr(store.get(job_id), "attempts", 1) or 1
                EvidenceStore(resources.settings()).ready(attempt=int(attempts))
                tmp_dir = Path(resources.settings().cert_dir) / ".downloads"
                tmp_dir.mkdir(parents=True, exist_ok=True)
                download = Path(
                    tempfile.mkstemp(dir=tmp_dir, prefix=f"{job_id}-", suffix=".zip")[1]
                )
            call = _call_for(kind, request, download)
            result = resources.guard().call(
                function=kind,
                budget=budget,
                fingerprint=fingerprint,
                fn=call,
                **_cache_for(kind, request),
            )
    except GuardDelay as exc:
        requeue(store, job_id, int(exc.delay_s * 1000), exc.reason, reason=exc.reason)
        return
    except EvidenceUnavailable as exc:
        delay_ms = int(exc.retry_after_s * 1000)
        requeue(store, job_id, delay_ms, "evidence_unavailable", reason=exc.reason)
        return
    except AuthenticationFailed as exc:
        requeue(
            store,
            job_id,
            resources.settings().retry_max_backoff_ms,
            "authentication_failed",
            error=error_record(exc),
        )
        return
    except (ProviderRejected, RepeatedRejection) as exc:
        fail_rejected(store, job_id, exc)
        raise
    except BaseException as exc:
        if (
            kind in WRITE_KINDS
            and not not_processed(exc)
            and isinstance(exc, TransportError | ProviderUnavailable)
        ):
            reason = f"outcome unknown: {type(exc).__name__}"
            store.transition(job_id, JobStatus.UNCERTAIN, error=error_record(exc), reason=reason)
            report_outcome(
                "uncertain", reason=reason, http_status=getattr(exc, "http_status", None)
            )
            return
        wait_s = breaker_wait_s(exc)
        if wait_s is not None:  # this failure opened the breaker: wait, burn no retry
            requeue(
                store,
                job_id,
                int(wait_s * 1000),
                "breaker_open",
                error=error_record(exc),
                reason="breaker_open",
            )
            return
        store.set_fields(job_id, error=error_record(exc))
        raise
    finally:
        if download is not None and download.exists() and kind != "certificate":
            download.unlink()
    data = result_json(result)
    if kind == "certificate":
        try:
            data = _store_certificate(job_id, request, result, download, data)
        except EvidenceUnavailable as exc:  # the download is kept: the next run stores it
            delay_ms = int(exc.retry_after_s * 1000)
            requeue(store, job_id, delay_ms, "evidence_unavailable", reason=exc.reason)
            return
    res = data.get("cancelled_count") if isinstance(data, dict) else None
    store.transition(job_id, JobStatus.SUCCEEDED, result=data, res=res)
    _after_success(store, job_id, kind, request, result)
    report_outcome("succeeded", status="succeeded")


def _kept_download(request: Any) -> Path | None:
    """A per-recipient certificate the evidence store kept when it could not store it."""
    if getattr(request, "mode", None) != "message_phone":
        return None
    return EvidenceStore(resources.settings()).kept_download(request.message_id, request.phone)


def _cache_for(kind: str, request: Any) -> dict[str, Any]:
    """Identical report queries within ``report_cache_ttl_s`` share one answer.

    The provider counts a report repeated with the same parameters within seconds as
    spam; report jobs use the same cache entry as the report poller.
    """
    if kind != "report":
        return {}
    from certsms.worker.guard.codecs import REPORT_CODEC, report_cache_key

    return {"cache_key": report_cache_key(request.message_id), "codec": REPORT_CODEC}


def _call_for(kind: str, request: Any, download: Path | None) -> Callable[[], Any]:
    client = resources.client()
    if kind == "certificate":
        assert download is not None
        return lambda: client.certificate(request, download)
    if kind == "list_files":
        return lambda: client.list_files()
    return lambda: getattr(client, kind)(request)


def _store_certificate(
    job_id: str, request: Any, result: Any, download: Path | None, data: dict[str, Any]
) -> dict[str, Any]:
    """Put a per-recipient certificate into the evidence store; keep other ZIPs by job id."""
    source = Path(getattr(result, "path", download) or "")
    if getattr(request, "mode", None) == "message_phone":
        # Stored under the *send* job, which moves to evidence_stored when complete.
        stored = certificate_downloaded(
            resources.job_store(),
            message_id=request.message_id,
            phone=request.phone,
            path=source,
            sha256=getattr(result, "sha256", None),
            enqueue=resources.producer().enqueue_follow_up,
        )
        source.unlink(missing_ok=True)
        data["stored"] = result_json(stored)
        return data
    target = Path(resources.settings().cert_dir) / "jobs" / f"{job_id}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    data["path"] = str(target)
    return data


def _after_success(store: JobStore, job_id: str, kind: str, request: Any, result: Any) -> None:
    """Side effects on the send job a cancel, reschedule or report refers to."""
    message_id = getattr(request, "message_id", None)
    if message_id is None:
        return
    send_job = store.find_by_message_id(message_id)
    if send_job is None:
        return
    if kind == "cancel" and int(getattr(result, "cancelled_count", 0) or 0) > 0:
        store.transition(send_job, JobStatus.CANCELLED, reason=f"cancelled by job {job_id}")
    if kind == "reschedule":
        after_provider_reschedule(store, message_id, request.scheduled_at)
    if kind == "report":
        for entry in getattr(result, "recipients", ()) or ():
            apply_recipient_status(
                store,
                message_id=message_id,
                reference=None,
                phone=entry.phone,
                result_code=entry.result_code,
                at=entry.reported_at,
                source="report",
                enqueue=resources.producer().enqueue_follow_up,
            )
        # after the statuses: a phone named as not sent already has its status on the job
        _mark_not_sent(store, send_job, result)


def _mark_not_sent(store: JobStore, send_job: str, result: Any) -> None:
    """A send whose answer had ``NoEnviados`` > 0: name the recipients not sent.

    The answer only counts them; the report says which: a recipient of the send in a
    failure status, or missing from the report (a duplicate the provider dropped).
    """
    record = store.get(send_job)
    if record is None or not record.not_sent:
        return
    payload = store.payload(send_job) or {}
    request = stored_send_request(payload)
    ours = [r.phone for r in request.recipients] if request is not None else []
    reported = {entry.phone: entry.result_code for entry in result.recipients}
    phones = sorted(
        phone
        for phone in set(ours)
        if phone not in reported
        or classify(reported[phone], certified_codes=store.settings.certified_codes)
        == StatusClass.FAILED
    )
    if phones and phones != (record.not_sent_phones or []):
        store.set_fields(send_job, not_sent_phones=phones)
        store.append_event(send_job, "recipients_not_sent_named", phones=phones)


def after_provider_reschedule(store: JobStore, message_id: int, scheduled_at: datetime) -> None:
    """Record a provider-side reschedule on the send job (and restart its polling)."""
    send_job = store.find_by_message_id(message_id)
    if send_job is None:
        return
    payload = store.payload(send_job)
    if payload is not None:
        store.set_fields(send_job, payload=with_scheduled_at(payload, scheduled_at))
    store.set_fields(send_job, scheduled_at=scheduled_at.isoformat(), rescheduled_at=utc_now_iso())
    store.append_event(send_job, "job_rescheduled", idmensaje=message_id, source="provider")
    poller = ReportPoller(store.redis, store.settings)
    if poller.next_poll(send_job) is not None:
        poller.forget(send_job)
        poller.track(send_job)
