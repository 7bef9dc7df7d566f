"""The WSGI app factory: ``create_app(settings)`` → a Flask app with every blueprint.

Flask because it is well kept (Pallets), plain WSGI (waitress in ``certsms web`` and
tests, gunicorn in the Procfile) and tiny; the app holds no state of its own beyond
its :class:`~worker.web.context.WebContext`, so any number of threads or processes
can serve it.

While Redis is unreachable (down, restarting, still loading its AOF, mid-failover)
every route answers ``503 Service Unavailable`` with ``Retry-After`` and a one-line
JSON error instead of a 500 (:func:`redis_unavailable`); the Redis client reconnects
by itself, so the next request after Redis is back succeeds. A string that is not a
job id where one is expected answers 404.
"""

from __future__ import annotations

import structlog
from dramatiq.errors import BrokerConnectionError
from flask import Blueprint, Flask, Response, jsonify
from redis import Redis
from werkzeug.exceptions import HTTPException

from certsms.config.errors import ConfigError
from certsms.config.settings import Settings
from certsms.worker.jobs.store import InvalidJobId
from certsms.worker.redis_client import RETRY_ON, redis_client
from certsms.worker.web import callbacks, console, health, intake, metrics_route, openapi
from certsms.worker.web.context import EnqueueJob, QueueCallback, WebContext

log = structlog.get_logger(__name__)

#: Seconds a client is told to wait before retrying while Redis is unavailable.
RETRY_AFTER_S = 5

#: What "Redis is unavailable" looks like from a request: a broken or refused
#: connection, a timeout, a server still loading its data, a primary demoted to a
#: replica during a failover, a Sentinel that names no primary (all in RETRY_ON), or
#: dramatiq's wrapper of the same.
UNAVAILABLE: tuple[type[BaseException], ...] = (*RETRY_ON, BrokerConnectionError)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means Redis is unreachable right now."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, UNAVAILABLE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def redis_unavailable() -> tuple[Response, int]:
    """The 503 answer: ``{"error": …}`` with ``Retry-After``."""
    response = jsonify(
        {
            "error": "service unavailable: the job store (Redis) cannot be reached; "
            f"retry in {RETRY_AFTER_S} s",
        }
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response, 503


#: What each ``--routes`` value serves (``certsms web --routes``, ``CERTSMS_WEB_ROUTES``).
ROUTE_GROUPS: dict[str, tuple[Blueprint, ...]] = {
    "all": (callbacks.bp, intake.bp, health.bp, openapi.bp, metrics_route.bp, console.bp),
    "callbacks": (callbacks.bp, health.bp, metrics_route.bp),
    "intake": (intake.bp, health.bp, openapi.bp, metrics_route.bp, console.bp),
}


def check_web_settings(settings: Settings) -> None:
    """Stop at boot unless callbacks are authenticated or explicitly insecure."""
    has_credentials = bool(
        settings.callback_user
        and settings.callback_password
        and settings.callback_password.get_secret_value()
    )
    if not has_credentials and not settings.callback_insecure:
        missing = "CERTSMS_CALLBACK_PASSWORD"
        if not settings.callback_user:
            missing = "CERTSMS_CALLBACK_USER"
        raise ConfigError(
            missing,
            "is required to authenticate provider callbacks "
            "(or set CERTSMS_CALLBACK_INSECURE=true to accept them without credentials)",
        )


def create_app(
    settings: Settings,
    redis: Redis | None = None,
    *,
    queue_callback: QueueCallback | None = None,
    enqueue_job: EnqueueJob | None = None,
    routes: str | None = None,
) -> Flask:
    """Build the app. ``redis`` defaults to one from ``settings.redis_url``.

    ``routes`` (default ``settings.web_routes``): ``all``, or ``callbacks`` (the provider's
    door, ``/healthz``, ``/metrics``) or ``intake`` (``/v1/jobs``, ``/openapi.json``, the
    console, ``/healthz``, ``/metrics``), so each can listen on its own port.

    Raises :class:`ConfigError` when callbacks are served, their credentials are missing
    and ``callback_insecure`` is not set; logs a warning when running insecure.
    """
    routes = routes or settings.web_routes
    if routes not in ROUTE_GROUPS:
        raise ConfigError("CERTSMS_WEB_ROUTES", f"must be one of {', '.join(ROUTE_GROUPS)}")
    if routes != "intake":
        check_web_settings(settings)
    if routes != "intake" and settings.callback_insecure and not settings.callback_password:
        log.warning("callback_auth_disabled", reason="CERTSMS_CALLBACK_INSECURE is set")
    if routes != "callbacks" and settings.intake_token is None:
        log.warning("intake_disabled", reason="CERTSMS_INTAKE_TOKEN is not set")
    app = Flask("certsms")
    app.json.sort_keys = True  # type: ignore[attr-defined]
    app.extensions["certsms"] = WebContext(
        settings=settings,
        redis=redis
        if redis is not None
        else redis_client(settings, retry_window_s=settings.redis_web_retry_window_s),
        queue_callback=queue_callback,
        enqueue_job=enqueue_job,
    )
    for blueprint in ROUTE_GROUPS[routes]:
        app.register_blueprint(blueprint)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify({"error": exc.description or exc.name}), exc.code or 500

    @app.errorhandler(InvalidJobId)
    def _no_such_job(exc: InvalidJobId) -> tuple[Response, int]:
        return jsonify({"error": "no such job"}), 404

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        if is_unavailable(exc):
            log.warning("web_redis_unavailable", error=type(exc).__name__)
            return redis_unavailable()
        log.exception("web_request_failed", error=type(exc).__name__)
        return jsonify({"error": "internal error"}), 500

    return app
