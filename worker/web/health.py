"""``GET /healthz``: Redis reachable and the provider breaker's state; 200 or 503.

The breaker is read from :mod:`worker.guard` when that package is installed; otherwise
it is reported as ``"unknown"``. An open breaker does not make the web process
unhealthy (callbacks and intake still work): only an unreachable Redis answers 503,
with ``Retry-After`` like every other route while Redis is down.
"""

from __future__ import annotations

from typing import Any

import structlog
from flask import Blueprint, Response, jsonify

from certsms.worker.web.context import web_context

log = structlog.get_logger(__name__)

bp = Blueprint("health", __name__)


def breaker_state() -> str:
    """The provider breaker's state (``closed``/``open``/``half_open``) or ``unknown``."""
    context = web_context()
    try:
        from certsms.worker.guard import ProviderGuard

        snapshot: dict[str, Any] = ProviderGuard(context.redis, context.settings).snapshot()
    except Exception as exc:  # the guard is optional here; never fail the probe on it
        log.debug("breaker_state_unavailable", error=type(exc).__name__)
        return "unknown"
    breaker = snapshot.get("breaker")
    state = breaker.get("state") if isinstance(breaker, dict) else snapshot.get("breaker_state")
    return str(state) if state else "unknown"


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """``{"status", "redis", "breaker"}``; 503 when Redis does not answer PING."""
    context = web_context()
    try:
        redis_ok = bool(context.redis.ping())
    except Exception as exc:
        log.warning("healthz_redis_unreachable", error=type(exc).__name__)
        redis_ok = False
    body = {
        "status": "ok" if redis_ok else "unavailable",
        "redis": "ok" if redis_ok else "unreachable",
        "breaker": breaker_state() if redis_ok else "unknown",
    }
    response = jsonify(body)
    if not redis_ok:
        response.headers["Retry-After"] = "5"
    return response, 200 if redis_ok else 503
