"""The WSGI entry for any WSGI server (e.g. gunicorn, behind a proxy that bounds bodies
and slow clients: docs/operating.md)::

    gunicorn --workers 2 --threads 4 --bind 0.0.0.0:${PORT:-8080} 'certsms.worker.web.wsgi:app'

Reads the settings from the environment, configures logging and the broker once per
process, and builds the app. ``certsms web`` (the Procfile's ``web:`` line) serves
the same app on the hardened edge (:mod:`worker.web.serving`).
"""

from __future__ import annotations

from flask import Flask

from certsms.config.logging import configure_logging
from certsms.config.settings import Settings, load_settings
from certsms.worker.redis_client import ensure_durable
from certsms.worker.runtime import setup
from certsms.worker.web.app import create_app


def build(settings: Settings | None = None) -> Flask:
    """Settings → logging → broker → app (callbacks are queued as plain messages)."""
    settings = settings or load_settings()
    configure_logging(settings)
    # a request waits at most the web retry window for Redis, then answers 503
    settings = settings.model_copy(
        update={"redis_retry_window_s": settings.redis_web_retry_window_s}
    )
    runtime = setup(settings)
    ensure_durable(runtime.redis, settings, process="web")
    return create_app(settings, runtime.redis)


def __getattr__(name: str) -> Flask:
    # ``app`` is built on first access, so importing this module has no side effects
    if name == "app":
        app = build()
        globals()["app"] = app
        return app
    raise AttributeError(name)
