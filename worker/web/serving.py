"""How waitress serves the app: the request body limit it enforces before the app runs.

waitress buffers a whole request body (default limit 1 GiB) before the WSGI app sees
it, so the app's 401 and its own caps come too late for an unauthenticated flood.
Every place that serves the app with waitress (``certsms web``, ``certsms demo``,
the test fixtures) passes :func:`waitress_options`.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from worker.web.intake import INTAKE_MAX_BODY_BYTES


def max_request_body_bytes(settings: Settings) -> int:
    """The largest body any route accepts: the callback cap or the intake cap."""
    return max(settings.callback_max_body_bytes, INTAKE_MAX_BODY_BYTES)


def waitress_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``waitress.serve``/``create_server``.

    waitress refuses a body whose length is ``>= max_request_body_size`` with 413,
    so the limit is one past the largest body the app itself accepts.
    """
    return {"max_request_body_size": max_request_body_bytes(settings) + 1}
