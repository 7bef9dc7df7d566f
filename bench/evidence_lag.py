"""Figure 7 of ``make bench``: does evidence keep pace with sends at the default limits?

Sends are offered at a steady rate for a while (the rate the default limits can carry
with one certificate per send: 90 % of ``total ÷ 2``) through
``certsms worker`` with **no limit overrides**. As soon as a send has left, the
sandbox is moved on to "certified" and its certificate download is enqueued (what the
callback would do). Sampled every 0.25 s: the evidence lag — the age of the oldest
certified send whose ZIP is not stored yet, the figure ``certsms_evidence_lag_seconds``
reports — and, at the end, how long the backlog took to drain.

A second run (full runs only) with ``rate_limit_certificate_per_s=1`` (certificates
behind a 1/s budget, as when they shared the query budget) shows what not keeping pace
looks like: the lag grows for as long as the load lasts (sampled until the load ends;
its drain is not waited for).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.harness import certsms_env, start_certsms
from certsms.config.settings import Settings


def _sent(store: Any, seen: set[str]) -> list[tuple[str, int, str]]:
    """(job, idMensaje, phone) of sends that became ``sent`` since the last call."""
    from certsms.worker.jobs.store import JobStatus

    found = []
    for job_id, _at in store.entered_status(JobStatus.SENT, limit=100_000):
        if job_id in seen:
            continue
        record = store.get(job_id)
        if record is None or not record.idmensaje:
            continue
        seen.add(job_id)
        phone = next(iter(record.recipients), None) or _phone_of(store, job_id)
        found.append((job_id, int(record.idmensaje), phone))
    return found


def _phone_of(store: Any, job_id: str) -> str:
    from certsms.mensatek.payloads import stored_send_request

    request = stored_send_request(store.payload(job_id))
    assert request is not None, f"job {job_id} has no send payload"
    return request.recipients[0].phone


def run(
    bench: Any,
    *,
    offered_per_s: float | None,
    duration_s: float,
    cert_rate: float | None,
    drain: bool = True,
) -> dict[str, Any]:
    """One run: offer sends for ``duration_s``; sample the evidence lag until drained
    (or, without ``drain``, until the load ends)."""
    from certsms.tasks import enqueue_certificate, enqueue_send
    from certsms.worker.evidence import EvidenceStore
    from certsms.worker.jobs.store import JobStore

    defaults = Settings(mensatek_api_user="x", mensatek_api_token="x")  # type: ignore[arg-type]
    offered = offered_per_s or defaults.rate_limit_per_s / 2 * 0.9
    cert_dir = Path(bench.log_dir) / f"certs-{cert_rate or 'default'}"
    overrides: dict[str, Any] = {"cert_dir": cert_dir}
    if cert_rate is not None:
        overrides["rate_limit_certificate_per_s"] = cert_rate
    bench.fresh()
    env = certsms_env(bench.redis_server.url, bench.sandbox, **overrides)
    workers = start_certsms(
        env,
        processes=bench.processes,
        threads=bench.threads,
        log_dir=bench.log_dir,
        name=f"evidence-{cert_rate or 'default'}",
    )
    settings = bench.settings.model_copy(update={"cert_dir": cert_dir})
    store = JobStore(bench.client, settings)
    evidence = EvidenceStore(settings)
    seen: set[str] = set()
    certified_at: dict[tuple[int, str], float] = {}
    stored_at: dict[tuple[int, str], float] = {}
    samples: list[tuple[float, float]] = []
    sent = 0
    try:
        start = time.monotonic()
        next_send = start
        deadline = start + duration_s + 600
        while time.monotonic() < deadline:
            now = time.monotonic()
            while now - start < duration_s and next_send <= now:
                data = {**bench.payload, "Destinatarios": [{"Movil": bench.phone()}]}
                enqueue_send(data, settings=bench.settings)
                sent += 1
                next_send += 1.0 / offered
            fresh = _sent(store, seen)
            if fresh:
                bench.sandbox.http.post(
                    bench.sandbox.admin_url + "tick", json={"steps": 3}, timeout=30
                ).raise_for_status()
                for _job, message_id, phone in fresh:
                    certified_at[(message_id, phone)] = time.monotonic()
                    enqueue_certificate(
                        {"Idmensaje": message_id, "Telefono": phone}, settings=bench.settings
                    )
            for key in [k for k in certified_at if k not in stored_at]:
                if evidence.has(*key):
                    stored_at[key] = time.monotonic()
            waiting = [certified_at[k] for k in certified_at if k not in stored_at]
            now = time.monotonic()
            samples.append((now - start, now - min(waiting) if waiting else 0.0))
            if now - start >= duration_s and (not drain or len(stored_at) == sent):
                break
            time.sleep(0.25)
        finished = time.monotonic() - start
    finally:
        workers.stop()
    during = [lag for t, lag in samples if t <= duration_s]
    at_end = [lag for t, lag in samples if t <= duration_s][-1] if during else 0.0
    delays = sorted(stored_at[k] - certified_at[k] for k in stored_at)
    return {
        "certificate_budget_per_s": cert_rate or defaults.rate_limit_send_per_s,
        "limits": {
            "total_per_s": defaults.rate_limit_per_s,
            "send_per_s": defaults.rate_limit_send_per_s,
            "query_per_s": defaults.rate_limit_query_per_s,
        },
        "offered_sends_per_s": round(offered, 2),
        "load_s": duration_s,
        "sends": sent,
        "certificates_stored": len(stored_at),
        "max_lag_s": round(max(during, default=0.0), 1),
        "lag_at_end_of_load_s": round(at_end, 1),
        "lag_halfway_s": round(during[len(during) // 2], 1) if during else 0.0,
        "p50_certificate_delay_s": round(delays[len(delays) // 2], 1) if delays else None,
        "all_stored_after_s": round(finished, 1) if drain else None,
        "drain_after_load_s": round(finished - duration_s, 1) if drain else None,
    }


def figure(bench: Any) -> dict[str, Any]:
    """Figure 7: the default run, and (full runs only) the 1/s certificate budget."""
    duration_s = bench.n(60, 20)
    result: dict[str, Any] = {
        "default": run(bench, offered_per_s=None, duration_s=duration_s, cert_rate=None)
    }
    if not bench.quick:
        result["certificates_at_1_per_s"] = run(
            bench, offered_per_s=None, duration_s=duration_s, cert_rate=1.0, drain=False
        )
    result["goal"] = "lag bounded (not growing with the load) at the default limits"
    return result
