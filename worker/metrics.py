"""Prometheus metrics of certsms (prometheus-client), one definition each.

Worker processes run in prometheus-client's multiprocess mode: ``certsms worker``
sets ``PROMETHEUS_MULTIPROC_DIR`` before the processes start, and dramatiq's
Prometheus middleware serves every process's samples (its own ``dramatiq_*``
metrics and these) on ``dramatiq_prom_port`` (default 9191). The web process
serves its own and, when the directory is shared on the same host, the workers'
on ``/metrics``.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

_LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

JOBS = Counter("certsms_jobs_total", "Job outcomes.", ["kind", "outcome"])
JOBS_ENQUEUED = Counter("certsms_jobs_enqueued_total", "Jobs accepted at enqueue.", ["kind"])
PROVIDER_REQUESTS = Counter(
    "certsms_provider_requests_total", "Requests to the provider.", ["function", "outcome"]
)
PROVIDER_LATENCY = Histogram(
    "certsms_provider_request_duration_seconds",
    "Provider request latency.",
    ["function"],
    buckets=_LATENCY_BUCKETS_S,
)
LIMITER_WAIT = Histogram(
    "certsms_limiter_wait_seconds",
    "Time spent waiting for a rate-limit slot.",
    ["budget"],
    buckets=(0, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60, 300),
)
GUARD_DELAYS = Counter(
    "certsms_guard_delays_total",
    "Provider calls deferred by the guard (no request made; job re-enqueued later).",
    ["function", "reason"],
)
BREAKER_STATE = Gauge(
    "certsms_breaker_state",
    "Provider breaker: 0 closed, 1 half-open, 2 open.",
    multiprocess_mode="mostrecent",
)
BREAKER_TRANSITIONS = Counter(
    "certsms_breaker_transitions_total", "Breaker transitions.", ["to_state"]
)
MEMO_HITS = Counter(
    "certsms_memo_hits_total", "Requests refused locally as repeats of a rejection.", ["function"]
)
CACHE_HITS = Counter("certsms_cache_hits_total", "Queries answered from cache.", ["kind"])
CALLBACKS = Counter(
    "certsms_callbacks_total", "Provider callbacks received.", ["servicio", "outcome"]
)
CERTIFICATES_STORED = Counter(
    "certsms_certificates_stored_total", "Certificate ZIPs stored.", ["outcome"]
)
EVIDENCE_OVERDUE = Counter(
    "certsms_evidence_overdue_total", "Certified recipients whose evidence could not be had."
)
REPORT_POLLS = Counter("certsms_report_polls_total", "Report polls by outcome.", ["outcome"])

BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def render_latest() -> tuple[bytes, str]:
    """The exposition text of this process, plus the worker processes' when shared."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
