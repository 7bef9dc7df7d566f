"""The hardened edge: the web app served by waitress with checks that run before the app.

waitress reads a request's line and headers, then buffers its whole body (to memory,
then to a temporary file) before the WSGI app sees it, so a view's 401 or body cap
comes too late against an unauthenticated flood. :func:`create_edge_server` serves
the app with a waitress server whose request parser asks a :class:`Gate` as soon as
the headers are in, before one byte of body is taken:

- **credentials first**: a request with a body to ``/callbacks/…`` (Basic), ``/v1/…``
  (Bearer intake token) or ``/metrics`` (Bearer metrics token, when set) without them
  is answered ``401`` and the connection closed; the body is never read;
- **per-route body caps**: callbacks ``callback_max_body_bytes`` (64 KiB), the intake
  :data:`~worker.web.intake.INTAKE_MAX_BODY_BYTES` (16 MiB), everything else
  :data:`OTHER_MAX_BODY_BYTES`; a declared length above the cap is answered ``413`` at
  once, a chunked body the moment it passes the cap;
- **deadlines**: a request's line and headers must arrive within
  ``web_header_timeout_s`` and its body within ``web_body_timeout_s`` after them, a
  connection with nothing in progress is closed after ``web_idle_timeout_s``, and up
  to ``web_connection_limit`` connections are held (``poll``, not ``select``), so slow
  or silent clients cannot starve the callbacks. Only complete requests reach the
  worker threads.

Refusals are logged at a bounded rate (:class:`~worker.web.auth.RefusalLog`) and
counted (``certsms_web_refused_total{reason}``). ``certsms web``, ``certsms up`` /
``demo`` (through :mod:`worker.commands.stack`) and the test fixtures serve with it;
under another server (gunicorn behind a proxy), the views check the same credentials
and caps and the proxy must provide the deadlines (docs/operating.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import structlog
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.utilities import Error, RequestEntityTooLarge

from certsms.config.settings import Settings
from certsms.worker import metrics
from certsms.worker.web.auth import (
    BASIC_CHALLENGE,
    BEARER_CHALLENGE,
    RefusalLog,
    callback_credentials_ok,
    intake_credentials_ok,
    metrics_credentials_ok,
    refusal_log,
)
from certsms.worker.web.intake import INTAKE_MAX_BODY_BYTES

log = structlog.get_logger(__name__)

OTHER_MAX_BODY_BYTES = 64 * 1024
"""The body cap of every route but the callbacks and the intake (console forms, probes)."""


def max_request_body_bytes(settings: Settings) -> int:
    """The largest body any route accepts: the callback cap or the intake cap."""
    return max(settings.callback_max_body_bytes, INTAKE_MAX_BODY_BYTES, OTHER_MAX_BODY_BYTES)


def waitress_options(settings: Settings) -> dict[str, Any]:
    """waitress adjustments of the edge (also usable with plain ``waitress.serve``).

    waitress refuses a body whose length is ``>= max_request_body_size`` with 413, so
    the limit is one past the largest body any route accepts; per-route caps are the
    :class:`Gate`'s.
    """
    return {
        "max_request_body_size": max_request_body_bytes(settings) + 1,
        "connection_limit": settings.web_connection_limit,
        "channel_timeout": settings.web_idle_timeout_s,
        "cleanup_interval": 1,
        "asyncore_use_poll": True,
    }


class Refused(Error):
    """A request the gate answered itself: a JSON body, extra headers, connection closed."""

    def __init__(self, code: int, reason: str, document: Mapping[str, Any], **headers: str):
        super().__init__(document.get("error", reason))
        self.code = code
        self.reason = reason
        self.document = dict(document)
        self.headers = headers

    def to_response(  # type: ignore[override]  # waitress writes the body as bytes
        self, ident: str | None = None
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Status line, headers, body (what waitress's error task writes)."""
        body = json.dumps(self.document, sort_keys=True).encode()
        headers = [("Content-Type", "application/json"), *self.headers.items()]
        return f"{self.code} {self.reason}", headers, body


class Gate:
    """Decides on a request from its method, path and headers, before its body."""

    def __init__(self, settings: Settings, *, refusals: RefusalLog | None = None) -> None:
        self.settings = settings
        self.refusals = refusals if refusals is not None else refusal_log(settings)

    def door(self, path: str) -> str:
        """Which door a path goes through: ``callbacks``, ``intake``, ``metrics``, ``other``."""
        if path.startswith("/callbacks/"):
            return "callbacks"
        if path == "/v1" or path.startswith("/v1/"):
            return "intake"
        return "metrics" if path.rstrip("/") == "/metrics" else "other"

    def max_body_bytes(self, door: str) -> int:
        """The body cap of a door."""
        if door == "callbacks":
            return self.settings.callback_max_body_bytes
        return INTAKE_MAX_BODY_BYTES if door == "intake" else OTHER_MAX_BODY_BYTES

    def authorized(self, door: str, authorization: str | None) -> bool:
        """Whether the credentials let a body through this door (no token configured for
        the intake: let the app answer its 503 to a small body)."""
        if door == "callbacks":
            return callback_credentials_ok(self.settings, authorization)
        if door == "intake":
            return intake_credentials_ok(self.settings, authorization) is not False
        if door == "metrics":
            return metrics_credentials_ok(self.settings, authorization)
        return True

    def check(
        self,
        path: str,
        headers: Mapping[str, str],
        *,
        content_length: int,
        chunked: bool,
        remote_addr: str | None = None,
    ) -> Refused | None:
        """The refusal of a request that carries a body, or None to read it."""
        if content_length <= 0 and not chunked:
            return None  # nothing to read: the app answers (and checks credentials)
        door = self.door(path)
        if self.settings.web_routes not in ("all", door) and door in ("callbacks", "intake"):
            return Refused(404, "Not Found", {"error": "not served here"})  # the other port
        if not self.authorized(door, headers.get("AUTHORIZATION")):
            self.refusals.refused(door, remote_addr=remote_addr, stage="headers")
            metrics.WEB_REFUSED.labels(reason="unauthorized").inc()
            if door == "callbacks":  # the same count as when the view refuses
                metrics.CALLBACKS.labels(servicio="?", outcome="unauthorized").inc()
            challenge = BASIC_CHALLENGE if door == "callbacks" else BEARER_CHALLENGE
            return Refused(
                401,
                "Unauthorized",
                {"error": "authentication required"},
                **{"WWW-Authenticate": challenge},
            )
        cap = self.max_body_bytes(door)
        if content_length > cap:
            return self.too_large(cap)
        return None

    def too_large(self, cap: int) -> Refused:
        """The 413 of a body above ``cap``."""
        metrics.WEB_REFUSED.labels(reason="too_large").inc()
        return Refused(
            413, "Request Entity Too Large", {"error": "body too large", "max_bytes": cap}
        )


class EdgeParser(HTTPRequestParser):
    """waitress's parser, asking the gate once the headers are in and capping the body."""

    gate: Gate  # set per server (see EdgeServer)

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()
        self.headers_at: float | None = None
        self.remote_addr: str | None = None
        self.cap: int | None = None

    def received(self, data: bytes) -> int:
        """Parse ``data``; refuse at the end of the headers or past the route's cap."""
        if self.completed:
            return 0
        in_headers = not self.headers_finished
        consumed = int(super().received(data))
        if in_headers and self.headers_finished:
            self.headers_at = time.monotonic()
            path = str(getattr(self, "path", "") or "")
            # waitress's own 413 (past the largest cap) yields to the gate: credentials first
            past_all_caps = isinstance(self.error, RequestEntityTooLarge)
            if (not self.error or past_all_caps) and not self.empty:
                refusal = self.gate.check(
                    path,
                    self.headers,
                    content_length=self.content_length,
                    chunked=self.chunked,
                    remote_addr=self.remote_addr,
                )
                self.cap = self.gate.max_body_bytes(self.gate.door(path))
                if refusal is None and past_all_caps:
                    refusal = self.gate.too_large(self.cap)
                if refusal is not None:
                    self._refuse(refusal)
        elif self.cap is not None and self.body_bytes_received > self.cap and not self.error:
            self._refuse(self.gate.too_large(self.cap))  # a chunked body past the cap
        return consumed

    def _refuse(self, refusal: Refused) -> None:
        self.error = refusal
        self.completed = True
        self.expect_continue = False  # no "100 Continue": the body is not wanted


class EdgeChannel(HTTPChannel):
    """waitress's channel, counting what it reads and handing the peer to the parser."""

    server: EdgeServer

    def received(self, data: bytes) -> bool:
        """Count ``data`` (for tests and diagnostics), then parse it."""
        self.server.bytes_received += len(data)
        if self.request is None and data:
            parser: Any = self.parser_class(self.adj)
            parser.remote_addr = self.addr[0] if self.addr else None
            self.request = parser
        return bool(super().received(data))


class EdgeServer(TcpWSGIServer):
    """waitress's TCP server with the gate and the header/body deadlines."""

    channel_class = EdgeChannel
    effective_host: str  # set by waitress once bound
    effective_port: int

    def __init__(
        self,
        application: Any,
        settings: Settings,
        *,
        adj: Adjustments,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.bytes_received = 0  # every byte read from every client, since start
        self.gate = Gate(settings)
        gate = self.gate
        self.parser_class = type("EdgeParserOfServer", (EdgeParser,), {"gate": gate})
        parser_class = self.parser_class
        self.channel_class = cast(Any, type)(
            "EdgeChannelOfServer", (EdgeChannel,), {"parser_class": parser_class}
        )
        super().__init__(application, adj=adj)

    def maintenance(self, now: Any) -> None:
        """waitress's idle sweep, then close connections past their header/body deadline."""
        super().maintenance(now)
        at = self.clock()
        header_s = self.settings.web_header_timeout_s
        body_s = self.settings.web_body_timeout_s
        channels = cast(dict[Any, Any], self.active_channels)
        for channel in list(channels.values()):
            request = getattr(channel, "request", None)
            if not isinstance(request, EdgeParser) or channel.will_close:
                continue
            if request.headers_at is None and at - request.started > header_s:
                reason = "header_timeout"
            elif request.headers_at is not None and at - request.headers_at > body_s:
                reason = "body_timeout"
            else:
                continue
            channel.will_close = True
            metrics.WEB_REFUSED.labels(reason=reason).inc()


def create_edge_server(
    app: Any,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 8,
    ident: str = "certsms",
    clock: Callable[[], float] = time.monotonic,
) -> EdgeServer:
    """The edge server for ``app`` on ``host:port`` (``port=0``: a free one, see
    ``effective_port``); ``run()`` serves until ``close()``."""
    adj = Adjustments(
        host=host, port=port, threads=threads, ident=ident, **waitress_options(settings)
    )
    return EdgeServer(app, settings, adj=adj, clock=clock)
