"""Fault injection for API requests: latency, 5xx, resets, HTML pages, accept-then-timeout.

One roll of the dice per request picks at most one fault, in this order of
shares: ``reset_rate``, ``error_5xx_rate``, ``html_rate``,
``accept_then_timeout_rate`` (so rates of 1.0 give a deterministic fault).
``fault_seed`` makes the sequence reproducible.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from certsms.sandbox.core import SandboxCore

RESET = "reset"
ERROR_5XX = "5xx"
HTML = "html"
TIMEOUT = "timeout"

HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>{status} Error</title></head>"
    "<body><h1>{status} Error</h1><p>The server encountered a temporary error "
    "and could not complete your request.</p><hr><address>nginx</address></body></html>"
)


def roll(core: SandboxCore) -> str | None:
    """The fault for this request, or None."""
    config = core.config
    shares = (
        (RESET, config.reset_rate),
        (ERROR_5XX, config.error_5xx_rate),
        (HTML, config.html_rate),
        (TIMEOUT, config.accept_then_timeout_rate),
    )
    if not any(share > 0 for _, share in shares):
        return None
    with core.state.lock:
        dice = core.rng.random()
    edge = 0.0
    for name, share in shares:
        edge += max(0.0, share)
        if dice < edge:
            return name
    return None


def pick_5xx(core: SandboxCore) -> int:
    """``error_5xx_status`` when set, else 500 or 503, alternating at random."""
    if core.config.error_5xx_status is not None:
        return core.config.error_5xx_status
    with core.state.lock:
        return 503 if core.rng.random() < 0.5 else 500


def reset_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection without an answer (the client sees a ConnectionError).

    waitress exposes its channel only through ``waitress.client_disconnected``; we
    shut the socket down from the worker thread and mark the channel to close, so no
    byte of a response is ever written.
    """
    checker = environ.get("waitress.client_disconnected")
    channel = getattr(checker, "__self__", None)
    sock = getattr(channel, "socket", None)
    if sock is None:
        raise ConnectionAbortedError("sandbox fault: connection reset")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    channel.will_close = True  # type: ignore[union-attr]
