"""The WSGI application: routing, auth, spam blocking, faults, rendering, logging.

``POST /v7/<Function>`` (names case-insensitive, ``GetCertificadoSMSCERTIFICADO``
is an alias of ``GetSMSCERTIFICADO``); any other method → 405, or with
``strict`` a logged ``Res -3`` (see :mod:`sandbox.strict`, whose request-level
checks run here, before authentication). ``/_admin/…`` is the sandbox's own API
(see :mod:`sandbox.admin`). Plain WSGI on werkzeug's request object keeps a
trivial call well under a millisecond.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request

from certsms.sandbox import faults, library, messages, queries, sending, strict
from certsms.sandbox.admin import handle_admin
from certsms.sandbox.arrival import arrival_s
from certsms.sandbox.core import SandboxCore
from certsms.sandbox.parsing import ParsedRequest, parse_request
from certsms.sandbox.rendering import Answer, render
from certsms.sandbox.requestlog import redact_params

Handler = Callable[[SandboxCore, ParsedRequest, str], Answer]
StartResponse = Callable[..., Any]

FUNCTIONS: dict[str, tuple[str, Handler]] = {
    "enviarsmscertificado": ("EnviarSMSCERTIFICADO", sending.send),
    "cancelarsmscertificado": ("CancelarSMSCERTIFICADO", messages.cancel),
    "reprogramarsmscertificado": ("ReprogramarSMSCERTIFICADO", messages.reschedule),
    "getsmscertificado": ("GetSMSCERTIFICADO", queries.certificate),
    "getcertificadosmscertificado": ("GetSMSCERTIFICADO", queries.certificate),
    "getreportsmscertificado": ("GetReportSMSCERTIFICADO", queries.report),
    "cargarfichero": ("CargarFichero", library.upload),
    "listarficheros": ("ListarFicheros", library.list_files),
    "borrarfichero": ("BorrarFichero", library.delete_file),
    "getcreditos": ("GetCreditos", queries.credits),
}
# "Empty" queries that count as spam when repeated with the same params (docs/provider.md §7).
REPEAT_CHECKED = frozenset({"GetCreditos", "GetReportSMSCERTIFICADO"})


def _plain(start_response: StartResponse, status: int, body: bytes, ctype: str) -> list[bytes]:
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", ctype), ("Content-Length", str(len(body)))],
    )
    return [body]


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class SandboxApp:
    """The WSGI callable around one :class:`SandboxCore`."""

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO") or "/"
        if path.startswith("/_admin"):
            request = Request(environ)
            status, document = handle_admin(self.core, request)
            body = json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
            return _plain(start_response, status, body, "application/json")
        if not path.lower().startswith("/v7/"):
            return _plain(start_response, 404, b"Not Found", "text/plain")
        key = path[4:].strip("/").lower()
        if key not in FUNCTIONS:
            return _plain(start_response, 404, b"Not Found", "text/plain")
        function, handler = FUNCTIONS[key]
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method != "POST" and not self.core.config.strict:
            start_response(
                "405 Method Not Allowed",
                [("Allow", "POST"), ("Content-Type", "text/plain"), ("Content-Length", "18")],
            )
            return [b"Method Not Allowed"]
        return self._api(environ, start_response, function, handler)

    def _api(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        function: str,
        handler: Handler,
    ) -> Iterable[bytes]:
        core = self.core
        config = core.config
        request = Request(environ)
        parsed = parse_request(request)
        now = core.clock.now()
        arrived = arrival_s(environ, now)
        parsed.arrived_s = arrived
        safe_params = redact_params(parsed.raw_params, config.token)
        for name, part in parsed.files.items():
            safe_params[name] = {"filename": part.filename, "size_bytes": len(part.content)}

        wire = {
            "method": parsed.method,
            "body_format": parsed.body_format,
            "query_params": parsed.query_params,
            "destinatarios_format": parsed.destinatarios_format,
        }

        def log(status: int, res: int | None, outcome: str, answer: Answer | None = None) -> None:
            core.log.add(
                time_s=arrived,
                handled_after_s=now - arrived,
                function=function,
                params=safe_params,
                http_status=status,
                res=res,
                user=parsed.user,
                outcome=outcome,
                answer=redact_params(answer.fields) if answer is not None else None,
                wire=wire,
                reason=answer.reason if answer is not None else None,
            )

        if core.guard.blocked_for_s(parsed.user) > 0:
            log(config.block_status, None, "blocked")
            return _plain(
                start_response, config.block_status, config.block_body.encode(), "text/plain"
            )
        if config.latency_ms > 0:
            core.stopping.wait(config.latency_ms / 1000)
        fault = faults.roll(core)
        if fault == faults.RESET:
            log(0, None, "fault:reset")
            faults.reset_connection(environ)
            return _plain(start_response, 500, b"", "text/plain")
        if fault == faults.ERROR_5XX:
            status = faults.pick_5xx(core)
            log(status, None, "fault:5xx")
            return _plain(start_response, status, b"Service temporarily unavailable", "text/plain")
        if fault == faults.HTML:
            status = config.html_status
            page = faults.HTML_PAGE.format(status=status).encode()
            log(status, None, "fault:html")
            return _plain(start_response, status, page, "text/html; charset=utf-8")
        answer = self._answer(parsed, function, handler)
        resp = parsed.text("Resp")
        if answer.res == -1 and config.auth_failure_mode == "http401":
            answer.http_status = 401
        body, content_type = render(answer, resp, config)
        outcome = answer.outcome
        if fault == faults.TIMEOUT:
            outcome = "fault:timeout"
        log(answer.http_status, answer.res, outcome, answer)
        if fault == faults.TIMEOUT:
            core.stopping.wait(config.timeout_hold_s)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if answer.http_status == 401:
            headers.append(("WWW-Authenticate", 'Basic realm="Mensatek API"'))
        start_response(f"{answer.http_status} {_REASONS.get(answer.http_status, 'OK')}", headers)
        return [body]

    def _answer(self, parsed: ParsedRequest, function: str, handler: Handler) -> Answer:
        core = self.core
        accounts = core.config.accounts()
        user = parsed.user
        refused = strict.request_refusal(parsed) if core.config.strict else None
        if refused is not None:
            core.guard.record_error(user, f"strict:{refused.reason}")
            return refused
        if not user or accounts.get(user) != parsed.password:
            core.guard.record_error(user, "auth")
            return Answer({"Res": -1, "Error": "Authentication error"}, outcome="auth_failed")
        if parsed.body_error:
            answer = Answer({"Res": -3, "Error": parsed.body_error}, outcome="error")
        else:
            with core.state.lock:
                answer = handler(core, parsed, user)
        res = answer.res
        if res is not None and res < 0:
            core.guard.record_error(user, f"res_{res}")
        elif function in REPEAT_CHECKED:  # one count per request at most
            signature = function + json.dumps(parsed.params, sort_keys=True, default=str)
            if core.guard.is_repeat(user, signature):
                answer.outcome = "repeated_query"
                core.guard.record_error(user, "repeated_query")
        return answer
