"""``POST /callbacks/mensatek``: authenticate, bound, read, queue durably, answer.

The answer is 200 only once the callback sits in Redis twice: as a dramatiq message
for the ``process_callback`` actor (queue ``certsms.callbacks``) and as a
``callback_received`` entry in the events stream (with the raw body). An
authenticated notification is never refused for its content: an unknown
``Servicio``, an unknown field, an empty or oddly typed field is kept with a
warning (log line ``callback_odd``; :func:`mensatek.callbacks.read_callback`) and
answered 200. Only what we cannot take answers 4xx with a JSON reason and a log
line (401 credentials, 413 too large, 415 content type, 400 unreadable body); a
Redis failure answers 503 so that the provider tries again. Processing is
idempotent, so a duplicate is harmless.

Served by :mod:`worker.web.serving`, credentials and the body cap are checked on the
headers, before the body is read; the checks here hold under any WSGI server.
Refused credentials are logged at a bounded rate (``web_unauthorized``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import structlog
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from certsms.mensatek.callbacks import SERVICE_EVENT, SERVICE_REPLY, SERVICE_STATUS, read_callback
from certsms.worker import metrics
from certsms.worker.web.auth import BASIC_CHALLENGE, callback_credentials_ok, refusal_log
from certsms.worker.web.context import web_context

log = structlog.get_logger(__name__)

bp = Blueprint("callbacks", __name__)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class _Unreadable(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _problem(status: int, reason: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": reason, **extra}), status


#: The ``servicio`` label of ``certsms_callbacks_total``: a fixed set, whatever a body says.
SERVICIO_LABELS = frozenset({SERVICE_STATUS, SERVICE_EVENT, SERVICE_REPLY, "unrecognised", "?"})


def servicio_label(kind: str) -> str:
    """``kind`` when it is one of :data:`SERVICIO_LABELS`, else ``other`` (bounded labels)."""
    return kind if kind in SERVICIO_LABELS else "other"


def _authorized() -> bool:
    settings = web_context().settings
    return callback_credentials_ok(settings, request.headers.get("Authorization"))


def _read_fields() -> dict[str, Any]:
    """The body as a flat mapping (JSON object, urlencoded or multipart form)."""
    mimetype = request.mimetype
    if mimetype in _FORM_TYPES:
        return {key: request.form.getlist(key) for key in request.form}
    raw = request.get_data(cache=False)
    if mimetype == "application/json" or (not mimetype and raw.lstrip()[:1] in (b"{", b"[")):
        try:
            document = json.loads(raw)
        except RecursionError:  # e.g. "[" * 60000: nested too deeply to decode
            raise _Unreadable(400, "body is not valid JSON: nested too deeply") from None
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            raise _Unreadable(400, "body is not valid JSON") from None
        if isinstance(document, list) and len(document) == 1:
            document = document[0]  # tolerate the provider's list-wrapping habit
        if not isinstance(document, dict):
            raise _Unreadable(400, "JSON body must be an object")
        return document
    if not mimetype or mimetype == "text/plain":
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            raise _Unreadable(400, "body is not a form") from None
    raise _Unreadable(415, f"unsupported content type {mimetype[:60]!r}")


def _servicio(fields: dict[str, Any]) -> object:
    for key, value in fields.items():
        if str(key).lower() == "servicio":
            return value[0] if isinstance(value, list) and value else value
    return ""


def _flatten(fields: dict[str, Any]) -> dict[str, str]:
    """The values as strings (what the actor message carries)."""
    flat: dict[str, str] = {}
    for key, value in fields.items():
        if isinstance(value, list):
            value = value[0] if value else ""
        if value is None:
            continue
        if isinstance(value, dict | list):  # kept as it came (read_callback warned)
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        flat[str(key)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return flat


@bp.post("/callbacks/mensatek")
def receive_callback() -> tuple[Response, int]:
    """Take one provider callback (see the module docstring for the answers)."""
    context = web_context()
    remote = request.remote_addr
    if not _authorized():
        refusal_log(context.settings).refused("callbacks", remote_addr=remote, stage="app")
        metrics.CALLBACKS.labels(servicio="?", outcome="unauthorized").inc()
        response, status = _problem(401, "authentication required")
        response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
        return response, status
    request.max_content_length = context.settings.callback_max_body_bytes
    request.max_form_memory_size = context.settings.callback_max_body_bytes
    try:
        fields = _read_fields()
    except RequestEntityTooLarge:
        log.warning("callback_too_large", remote_addr=remote, content_length=request.content_length)
        return _problem(413, "body too large", max_bytes=context.settings.callback_max_body_bytes)
    except _Unreadable as exc:
        log.warning("callback_unreadable", remote_addr=remote, reason=exc.reason)
        return _problem(exc.status, exc.reason)
    callback, warnings = read_callback(fields)
    flat = _flatten(fields)
    if warnings:
        log.warning(
            "callback_odd",
            remote_addr=remote,
            service=callback.kind,
            servicio=str(_servicio(fields))[:40],
            warnings=warnings[:10],
        )
    received_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        queued_id = context.queue_callback(flat, received_at)
        context.store.append_event(
            None,
            "callback_received",
            service=callback.kind,
            message_id=getattr(callback, "message_id", None),
            queued_message_id=queued_id,
            received_at=received_at,
            body=json.dumps(flat, sort_keys=True, ensure_ascii=False),
            warnings=json.dumps(warnings, ensure_ascii=False) if warnings else None,
        )
    except Exception as exc:  # Redis down: the provider must retry
        log.error("callback_queue_failed", error=type(exc).__name__, detail=str(exc)[:200])
        return _problem(503, "could not queue the callback; try again")
    outcome = "unrecognised" if callback.kind == "unrecognised" else "queued"
    metrics.CALLBACKS.labels(servicio=servicio_label(callback.kind), outcome=outcome).inc()
    log.info(
        "callback_queued",
        service=callback.kind,
        idmensaje=getattr(callback, "message_id", None),
        queued_message_id=queued_id,
    )
    return jsonify({"status": "queued", "id": queued_id}), 200
