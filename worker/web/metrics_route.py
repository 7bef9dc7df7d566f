"""``GET /metrics``: Prometheus exposition of the web process (and of the workers
on the same host when ``PROMETHEUS_MULTIPROC_DIR`` is shared).

The breaker gauge is refreshed from Redis at scrape time, so the web process
reports the cluster-wide breaker state even though it never calls the provider.
"""

from __future__ import annotations

from flask import Blueprint, Response

from worker import metrics
from worker.web.health import breaker_state

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """The exposition text."""
    state = breaker_state()
    if state in metrics.BREAKER_STATE_VALUES:
        metrics.BREAKER_STATE.set(metrics.BREAKER_STATE_VALUES[state])
    body, content_type = metrics.render_latest()
    return Response(body, content_type=content_type)
