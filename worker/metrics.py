"""Prometheus metrics of certsms (prometheus-client), one definition each.

Worker processes run in prometheus-client's multiprocess mode: ``certsms worker``
sets ``PROMETHEUS_MULTIPROC_DIR`` before the processes start (every process writes its
samples there: dramatiq's ``dramatiq_*`` and these) and serves them all from its own
main process (:func:`serve_metrics`) on ``CERTSMS_WORKER_METRICS_PORT``. Several
``certsms worker`` commands on one host never lose metrics silently: when the port is
taken, the next free one of :data:`METRICS_PORT_TRIES` is used and logged
(``worker_metrics_port_taken``, then ``worker_metrics_serving`` with the port); when
none is free the command stops with an error naming the variable. The web process
serves its own on ``/metrics`` (and the workers' when the directory is shared).

:class:`QueueStateCollector` adds cluster-wide gauges read from Redis at scrape time
(queue depths, jobs by status): the same numbers from every process that serves them,
so aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from certsms.config.errors import ConfigError
from certsms.config.settings import Settings
from certsms.worker.jobs.status import JobStatus
from certsms.worker.jobs.store import JobStore
from certsms.worker.queue_state import queue_depths

log = structlog.get_logger(__name__)

METRICS_PORT_TRIES = 16
"""How many ports from ``CERTSMS_WORKER_METRICS_PORT`` up a worker tries before giving up."""

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
LIMITER_WIDENING = Gauge(
    "certsms_limiter_widening_seconds",
    "How much the dispatch windows are widened now: the workers' recent peak lateness after"
    " their slots beyond the jitter allowance (0 on a machine with CPU to spare).",
    multiprocess_mode="mostrecent",
)
LIMITER_LATE_DEPARTURES = Counter(
    "certsms_limiter_late_departures_total",
    "Requests whose worker resumed more than 10 ms after their passed dispatch check (a"
    " starved host); each widens the dispatch windows for a while.",
    ["budget"],
)
LIMITER_REDISPATCHES = Counter(
    "certsms_limiter_redispatches_total",
    "Slots given up at the dispatch check (late after a stall, or the dispatch log full).",
    ["budget", "reason"],
)
GUARD_FENCE_LOST = Counter(
    "certsms_guard_fence_lost_total",
    "Requests stopped at dispatch: their in-flight lock expired during a stall, or the"
    " identical request was rejected meanwhile.",
    ["function"],
)
GUARD_DELAYS = Counter(
    "certsms_guard_delays_total",
    "Provider calls deferred by the guard (no request made; job re-enqueued later).",
    ["function", "reason"],
)
ACCOUNT_SHORT_OF_CREDIT = Gauge(
    "certsms_account_short_of_credit",
    "1 while the provider refuses sends for lack of credit (sends wait), else 0.",
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
WEB_UNAUTHORIZED = Counter(
    "certsms_web_unauthorized_total",
    "Requests refused for their credentials, by door (callbacks, intake, metrics).",
    ["door"],
)
WEB_REFUSED = Counter(
    "certsms_web_refused_total",
    "Requests the web server closed or refused before the app ran (unauthorized, "
    "too_large, header_timeout, body_timeout).",
    ["reason"],
)
CERTIFICATE_ANOMALIES = Counter(
    "certsms_certificate_anomalies_total",
    "Certified statuses not downloaded: the phone is not a recipient of the job (a stray or"
    " forged callback), or no job owns the message.",
    ["reason"],
)
EVIDENCE_UNAVAILABLE = Counter(
    "certsms_evidence_unavailable_total",
    "Certificate downloads postponed because the evidence store could not take them"
    " (no free space, not writable).",
    ["reason"],
)
EVIDENCE_LAG = Gauge(
    "certsms_evidence_lag_seconds",
    "Age of the oldest certified send whose evidence is not stored yet (0 = none behind).",
    multiprocess_mode="mostrecent",
)
EVIDENCE_OVERDUE = Counter(
    "certsms_evidence_overdue_total", "Certified recipients whose evidence could not be had."
)
REPORT_POLLS = Counter("certsms_report_polls_total", "Report polls by outcome.", ["outcome"])

BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class QueueStateCollector(Collector):
    """Gauges read from Redis at scrape time: ``certsms_queue_messages{queue,state}``
    (ready, delayed, dead) and ``certsms_jobs{status}``; ``certsms_redis_up`` says whether
    they could be read."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings

    def collect(self) -> Iterator[Any]:
        """The gauges (only ``certsms_redis_up 0`` when Redis cannot be read)."""
        up = GaugeMetricFamily("certsms_redis_up", "Whether Redis answered this scrape.")
        try:
            depths = queue_depths(self._redis, self._settings)
            counts = self._status_counts()
        except RedisError as exc:
            log.warning("metrics_redis_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        queues = GaugeMetricFamily(
            "certsms_queue_messages",
            "Messages in each queue: ready (waiting), delayed (retries, held) or dead.",
            labels=["queue", "state"],
        )
        for depth in depths:
            queues.add_metric([depth.queue, "ready"], depth.ready)
            queues.add_metric([depth.queue, "delayed"], depth.delayed)
            queues.add_metric([depth.queue, "dead"], depth.dead)
        yield queues
        jobs = GaugeMetricFamily(
            "certsms_jobs", "Jobs by current status (kept records).", labels=["status"]
        )
        for status in JobStatus:
            jobs.add_metric([str(status)], counts.get(str(status), 0))
        yield jobs

    def _status_counts(self) -> dict[str, int]:
        return JobStore(self._redis, self._settings).counts()


def render_latest(*collectors: Collector) -> tuple[bytes, str]:
    """The exposition text of this process (plus the worker processes' when their
    directory is shared) and of ``collectors``."""
    registry: CollectorRegistry = REGISTRY
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=directory)
    if not collectors:
        return generate_latest(registry), CONTENT_TYPE_LATEST
    extra = CollectorRegistry()
    for collector in collectors:
        extra.register(collector)
    return generate_latest(registry) + generate_latest(extra), CONTENT_TYPE_LATEST


def serve_metrics(
    host: str, port: int, *collectors: Collector, tries: int = METRICS_PORT_TRIES
) -> ThreadingHTTPServer:
    """Serve :func:`render_latest` on the first free port from ``port`` up, in a thread.

    Raises :class:`ConfigError` naming ``CERTSMS_WORKER_METRICS_PORT`` when none of
    ``tries`` ports is free. The chosen port is ``server.server_address[1]``.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, content_type = render_latest(*collectors)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # scrapes are not worth a log line each

    for candidate in range(port, port + tries):
        try:
            server = ThreadingHTTPServer((host, candidate), Handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            log.warning("worker_metrics_port_taken", port=candidate, next_port=candidate + 1)
            continue
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        log.info("worker_metrics_serving", host=host, port=candidate)
        return server
    raise ConfigError(
        "CERTSMS_WORKER_METRICS_PORT",
        f"ports {port}-{port + tries - 1} are all taken on {host}; "
        "choose another or 0 to turn the worker's metrics off",
    )


def worker_prometheus_middleware() -> Any:
    """dramatiq's Prometheus middleware without its own exposition server (the
    ``certsms worker`` command serves every process's samples, :func:`serve_metrics`).

    Imported here, after ``certsms worker`` has set the multiprocess directory.
    """
    from dramatiq.middleware.prometheus import Prometheus

    class SamplesOnly(Prometheus):
        @property
        def forks(self) -> list[Any]:
            return []

    return SamplesOnly()
