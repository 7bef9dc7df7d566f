"""Credentials for the two doors of the web app, compared in constant time.

The provider does not sign callbacks, so ``POST /callbacks/mensatek`` is protected by
HTTP Basic credentials configured in the provider's panel (``CERTSMS_CALLBACK_USER`` /
``CERTSMS_CALLBACK_PASSWORD``). The intake API takes ``Authorization: Bearer
<CERTSMS_INTAKE_TOKEN>``, a separate secret. Every comparison goes through
:func:`hmac.compare_digest` and both halves of a Basic pair are always compared, so the
answer time does not tell which half was wrong. ``/metrics`` takes ``Bearer
<CERTSMS_METRICS_TOKEN>`` when that is set.

The same checks run twice: in the server, on the headers, before any body is read
(:mod:`worker.web.serving`), and in the views (any WSGI server). Refusals are logged
at a bounded rate (:class:`RefusalLog`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Callable

import structlog

from certsms.config.settings import Settings
from certsms.worker import metrics

log = structlog.get_logger(__name__)

BASIC_CHALLENGE = 'Basic realm="certsms callbacks", charset="UTF-8"'
BEARER_CHALLENGE = 'Bearer realm="certsms intake"'


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` → ``(user, password)``; None when absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


def check_basic(header: str | None, *, user: str, password: str) -> bool:
    """Whether the Authorization header carries exactly ``user``/``password``."""
    given = parse_basic(header)
    given_user, given_password = given if given is not None else ("", "")
    user_ok = _equal(given_user, user)
    password_ok = _equal(given_password, password)
    return given is not None and user_ok and password_ok


def check_bearer(header: str | None, *, token: str) -> bool:
    """Whether the Authorization header is ``Bearer <token>``."""
    scheme, _, value = (header or "").strip().partition(" ")
    matches = _equal(value.strip(), token)
    return scheme.lower() == "bearer" and bool(token) and matches


def callback_credentials_ok(settings: Settings, header: str | None) -> bool:
    """Whether a callback request may proceed: the configured Basic pair, or no password
    with ``callback_insecure`` (the explicit opt-in)."""
    if settings.callback_insecure and not settings.callback_password:
        return True
    password = settings.callback_password.get_secret_value() if settings.callback_password else ""
    return check_basic(header, user=settings.callback_user or "", password=password)


def intake_credentials_ok(settings: Settings, header: str | None) -> bool | None:
    """Whether an intake request carries the intake token; None when no token is set
    (the intake is off and answers 503)."""
    token = settings.intake_token.get_secret_value() if settings.intake_token else ""
    if not token:
        return None
    return check_bearer(header, token=token)


def metrics_credentials_ok(settings: Settings, header: str | None) -> bool:
    """Whether ``/metrics`` may be read: always without ``metrics_token``, else with it."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    return not token or check_bearer(header, token=token)


class RefusalLog:
    """Logs refused credentials at a bounded rate: per door, at most one line every
    ``interval_s`` (:attr:`Settings.web_unauthorized_log_interval_s`), carrying how many
    refusals were not logged since the last line. An attacker cannot flood the logs;
    the counter ``certsms_web_unauthorized_total`` counts every refusal."""

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def refused(self, door: str, *, remote_addr: str | None, stage: str) -> bool:
        """Count one refusal at ``door`` (``callbacks``, ``intake``, ``metrics``); True
        when this one was logged."""
        metrics.WEB_UNAUTHORIZED.labels(door=door).inc()
        now = self.clock()
        with self._lock:
            last = self._last.get(door)
            if last is not None and now - last < self.interval_s:
                self._suppressed[door] = self._suppressed.get(door, 0) + 1
                return False
            self._last[door] = now
            suppressed = self._suppressed.pop(door, 0)
        log.warning(
            "web_unauthorized",
            door=door,
            remote_addr=remote_addr,
            stage=stage,
            suppressed=suppressed,
        )
        return True


_refusal_logs: dict[float, RefusalLog] = {}


def refusal_log(settings: Settings) -> RefusalLog:
    """The process's :class:`RefusalLog` for these settings' interval (shared by the
    server's gate and the app, so one interval holds for both)."""
    interval_s = settings.web_unauthorized_log_interval_s
    if interval_s not in _refusal_logs:
        _refusal_logs[interval_s] = RefusalLog(interval_s)
    return _refusal_logs[interval_s]
