"""``GET /metrics``: Prometheus exposition of the web process (and of the workers
on the same host when ``PROMETHEUS_MULTIPROC_DIR`` is shared).

The breaker gauge is refreshed from Redis at scrape time, so the web process
reports the cluster-wide breaker state even though it never calls the provider.
With ``CERTSMS_METRICS_TOKEN`` set, a scrape must carry ``Authorization: Bearer
<token>`` (Prometheus: ``authorization: {credentials: …}``); without it, anyone who
reaches the port can read the metrics, so keep the port private.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from certsms.worker import metrics
from certsms.worker.web.auth import BEARER_CHALLENGE, metrics_credentials_ok, refusal_log
from certsms.worker.web.context import web_context
from certsms.worker.web.health import breaker_state

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def prometheus_metrics() -> Response | tuple[Response, int]:
    """The exposition text (401 without the metrics token, when one is set)."""
    context = web_context()
    if not metrics_credentials_ok(context.settings, request.headers.get("Authorization")):
        refusal_log(context.settings).refused(
            "metrics", remote_addr=request.remote_addr, stage="app"
        )
        response = jsonify({"error": "authentication required"})
        response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
        return response, 401
    state = breaker_state()
    if state in metrics.BREAKER_STATE_VALUES:
        metrics.BREAKER_STATE.set(metrics.BREAKER_STATE_VALUES[state])
    body, content_type = metrics.render_latest(
        metrics.QueueStateCollector(context.redis, context.settings)
    )
    return Response(body, content_type=content_type)
