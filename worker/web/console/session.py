"""The console's sessions, CSRF tokens and login throttle.

Sessions are Flask's signed cookies (``certsms_console``: HttpOnly, SameSite=Strict,
lifetime ``CERTSMS_CONSOLE_SESSION_TTL_S``). The signing key is
random and kept in Redis (``<namespace>:console:secret_key``, made once with SET NX),
so every web process and host accepts the same sessions with nothing to configure;
whoever can read that Redis can already change every job. Each session carries a
CSRF token that every POST form must echo (``csrf_token`` field); the login form
gets one before the session has a user. Five wrong passwords for one name within
five minutes refuse that name's logins for the rest of the five minutes.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import cast

from flask import Flask, Request, abort, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from redis import Redis

from certsms.config.settings import Settings
from certsms.worker.web.console.users import ConsoleUser

COOKIE_NAME = "certsms_console"
CONSOLE_PREFIX = "/console"
LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW_S = 300


def ensure_secret_key(app: Flask, redis: Redis, settings: Settings) -> None:
    """Give the app the shared signing key (created in Redis by the first process)."""
    if app.secret_key:
        return
    key = settings.key("console", "secret_key")
    redis.set(key, secrets.token_hex(32), nx=True)
    app.secret_key = cast(bytes, redis.get(key)).decode()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.console_session_ttl_s),
    )


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing key fetched from Redis on first use
    (so building the app needs no Redis, and every process signs with the same key)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """A session only under /console/ (the API, callbacks and probes never touch it)."""
        if not request.path.startswith(CONSOLE_PREFIX):
            return None
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """The serializer, after making sure the app has the shared key."""
        context = app.extensions["certsms"]
        ensure_secret_key(app, context.redis, context.settings)
        return super().get_signing_serializer(app)


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Abort 400 unless the form's ``csrf_token`` matches the session's."""
    given = request.form.get("csrf_token", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(given, expected):
        abort(400, description="csrf_token is missing or stale: reload the page and try again")


def log_in(user: ConsoleUser) -> None:
    """Start a fresh session for ``user`` (a new CSRF token: no fixation)."""
    session.clear()
    session.permanent = True
    session["user"] = user.name
    csrf_token()


def current_user_name() -> str | None:
    """The logged-in name, if any."""
    name = session.get("user")
    return name if isinstance(name, str) else None


def throttled(redis: Redis, settings: Settings, name: str) -> bool:
    """Whether ``name`` has used up its wrong passwords for now."""
    raw = redis.get(settings.key("console", "login_failures", name[:100]))
    return raw is not None and int(cast(bytes, raw)) >= LOGIN_FAILURES_ALLOWED


def record_failure(redis: Redis, settings: Settings, name: str) -> None:
    """Count one wrong password for ``name`` (the window starts at the first)."""
    key = settings.key("console", "login_failures", name[:100])
    pipe = redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, LOGIN_WINDOW_S, nx=True)
    pipe.execute()


def clear_failures(redis: Redis, settings: Settings, name: str) -> None:
    """Forget ``name``'s wrong passwords (after a successful login)."""
    redis.delete(settings.key("console", "login_failures", name[:100]))
