"""The WSGI entry for gunicorn (the Procfile's ``web:`` line)::

    gunicorn --workers 2 --threads 4 --bind 0.0.0.0:${PORT:-8080} 'worker.web.wsgi:app'

Reads the settings from the environment, configures logging and the broker once per
process, and builds the app. ``certsms web`` serves the same app with waitress.
"""

from __future__ import annotations

from flask import Flask

from config.logging import configure_logging
from config.settings import Settings, load_settings
from worker.runtime import setup
from worker.web.app import create_app


def build(settings: Settings | None = None) -> Flask:
    """Settings → logging → broker → app (callbacks are queued as plain messages)."""
    settings = settings or load_settings()
    configure_logging(settings)
    runtime = setup(settings)
    return create_app(settings, runtime.redis)


def __getattr__(name: str) -> Flask:
    # ``app`` is built on first access, so importing this module has no side effects
    if name == "app":
        app = build()
        globals()["app"] = app
        return app
    raise AttributeError(name)
