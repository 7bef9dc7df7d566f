"""The WSGI app factory: ``create_app(settings)`` → a Flask app with every blueprint.

Flask because it is well kept (Pallets), plain WSGI (waitress in ``certsms web`` and
tests, gunicorn in the Procfile) and tiny; the app holds no state of its own beyond
its :class:`~worker.web.context.WebContext`, so any number of threads or processes
can serve it.
"""

from __future__ import annotations

import structlog
from flask import Flask, Response, jsonify
from redis import Redis
from werkzeug.exceptions import HTTPException

from config.errors import ConfigError
from config.settings import Settings
from worker.web import callbacks, health, intake, metrics_route, openapi
from worker.web.context import EnqueueJob, QueueCallback, WebContext

log = structlog.get_logger(__name__)


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
) -> Flask:
    """Build the app. ``redis`` defaults to one from ``settings.redis_url``.

    Raises :class:`ConfigError` when callback credentials are missing and
    ``callback_insecure`` is not set; logs a warning when running insecure.
    """
    check_web_settings(settings)
    if settings.callback_insecure and not settings.callback_password:
        log.warning("callback_auth_disabled", reason="CERTSMS_CALLBACK_INSECURE is set")
    if settings.intake_token is None:
        log.warning("intake_disabled", reason="CERTSMS_INTAKE_TOKEN is not set")
    app = Flask("certsms")
    app.json.sort_keys = True  # type: ignore[attr-defined]
    app.extensions["certsms"] = WebContext(
        settings=settings,
        redis=redis if redis is not None else Redis.from_url(settings.redis_url),
        queue_callback=queue_callback,
        enqueue_job=enqueue_job,
    )
    for blueprint in (callbacks.bp, intake.bp, health.bp, openapi.bp, metrics_route.bp):
        app.register_blueprint(blueprint)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify({"error": exc.description or exc.name}), exc.code or 500

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("web_request_failed", error=type(exc).__name__)
        return jsonify({"error": "internal error"}), 500

    return app
