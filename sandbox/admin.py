"""The sandbox's own HTTP API under ``/_admin/`` (JSON; not part of the provider API).

- ``GET  /_admin/requests[?function=Name]``  the request log (secrets, base64 removed)
- ``POST /_admin/reset``                     start state and start config back
- ``GET|POST /_admin/config``                read / change config at run time
- ``POST /_admin/tick`` ``{"steps": n}``     advance status progression n steps
- ``POST /_admin/clock`` ``{"advance_s": x}``move the sandbox clock forward
- ``GET  /_admin/state``                     accounts, messages, files, blocks, callbacks
- ``GET  /_admin/certificate/<id>[/<phone>]`` sha256/size/members/content_type of what
  GetSMSCERTIFICADO serves (a ZIP, or the bare PDF with ``certificate_phone_format="pdf"``)
- ``POST /_admin/event``, ``POST /_admin/reply`` emit EVENTOSSMSCERTIFICADO / SMSRECIBIDO;
  an event for a message whose macros were plain text (no ``Links=1``) is refused
  with 409: it has no attachment
- ``POST /_admin/credits`` ``{"credits": x}`` sets, ``{"add": x}`` tops up (or takes
  away, negative) an account's credits; ``"user"`` defaults to the main account
- ``GET  /_admin/callbacks``, ``POST /_admin/callbacks/wait`` ``{"timeout_s": x}``

Config switches of note (``POST /_admin/config``, see :mod:`sandbox.config`):
``report_gates_callbacks``, ``links_need_flag``, ``strict``, ``no_credit_res``,
``invalid_phones``, ``certificate_phone_format``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from certsms.sandbox.certificates import certificate_document
from certsms.sandbox.clock import to_provider
from certsms.sandbox.config import ConfigUpdateError
from certsms.sandbox.parsing import normalize_phone
from certsms.sandbox.progression import tick
from certsms.sandbox.queries import certificate_items

if TYPE_CHECKING:
    from certsms.sandbox.core import SandboxCore

Result = tuple[int, Any]


def _body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    return document


def handle_admin(core: SandboxCore, request: Request) -> Result:
    """Dispatch one admin request; returns (HTTP status, JSON document)."""
    parts = [p for p in request.path.split("/") if p][1:]
    route = parts[0] if parts else ""
    method = request.method.upper()
    try:
        body = _body(request) if method == "POST" else {}
        handler = _ROUTES.get((method, route))
        if handler is None:
            return 404, {"error": f"no admin endpoint {method} /_admin/{'/'.join(parts)}"}
        return handler(core, request, body, parts[1:])
    except (ValueError, ConfigUpdateError, KeyError, TypeError) as exc:
        return 400, {"error": str(exc)}


def _index(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    return 200, {"endpoints": sorted(f"{m} /_admin/{r}" for m, r in _ROUTES), "doc": __doc__}


def _requests(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    return 200, core.log.entries(request.args.get("function"))


def _reset(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    core.reset()
    return 200, {"reset": True}


def _get_config(
    core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]
) -> Result:
    return 200, core.config.public()


def _set_config(
    core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]
) -> Result:
    with core.state.lock:
        core.config.apply(body)
        if "fault_seed" in body:
            core.reseed()
        for user in core.config.accounts():
            core.state.account(user)
    return 200, core.config.public()


def _tick(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    changed = tick(core, int(body.get("steps", 1)))
    return 200, {"changed": changed}


def _clock(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    now = core.clock.advance(float(body.get("advance_s", 0)))
    return 200, {"now": to_provider(now), "offset_s": core.clock.offset_s}


def _state(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    snapshot = core.state.snapshot()
    snapshot["blocks"] = core.guard.snapshot()
    snapshot["block_episodes"] = len(snapshot["blocks"]["episodes"])
    snapshot["callbacks"] = list(core.callbacks.deliveries)
    snapshot["config"] = core.config.public()
    return 200, snapshot


def _certificate(
    core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]
) -> Result:
    if not rest:
        raise ValueError("use /_admin/certificate/<idmensaje>[/<phone>]")
    message_id = int(rest[0])
    phone = normalize_phone(rest[1]) if len(rest) > 1 else None
    user = request.args.get("user") or core.config.user
    with core.state.lock:
        found = certificate_items(core, user, message_id, phone)
        if isinstance(found, str):
            return 404, {"error": found}
        bare_pdf = core.config.certificate_phone_format == "pdf"
        _, _, summary = certificate_document(
            found, message_id=message_id, phone=phone, bare_pdf=bare_pdf
        )
    return 200, summary


def _find(core: SandboxCore, body: dict[str, Any]) -> tuple[Any, Any]:
    message = core.state.messages.get(int(body["idmensaje"]))
    if message is None:
        raise KeyError(f"unknown idmensaje {body['idmensaje']}")
    phone = normalize_phone(str(body.get("phone") or "")) if body.get("phone") else None
    recipient = message.recipients.get(phone) if phone else next(iter(message.recipients.values()))
    if recipient is None:
        raise KeyError(f"{body.get('phone')} is not a recipient of {message.id}")
    return message, recipient


def _event(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    with core.state.lock:
        message, recipient = _find(core, body)
    if message.macros_as_text:
        return 409, {
            "error": f"message {message.id} has no attachment: its macros were sent as "
            "plain text (no Links=1 while links_need_flag is on)"
        }
    names = [a.name for a in message.attachments]
    payload = {
        "Servicio": "EVENTOSSMSCERTIFICADO",
        "Fichero": body.get("fichero", names[0] if names else "documento.pdf"),
        "TipoAdjunto": body.get("tipo_adjunto", "1"),
        "Fecha": to_provider(core.clock.now()),
        "Telefono": recipient.phone,
        "TipoEvento": body.get("tipo_evento", "1"),
        "idEnvio": message.id,
        "idMensaje": message.id,
        "Valor": body.get("valor", ""),
        "Referencia": message.reference,
        "IP": body.get("ip", "127.0.0.1"),
        "Puerto": body.get("puerto", "56678"),
    }
    core.callbacks.emit(payload)
    return 200, {"emitted": payload}


def _reply(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    with core.state.lock:
        message, recipient = _find(core, body)
    now = core.clock.now()
    payload = {
        "Servicio": "SMSRECIBIDO",
        "timestamp": int(now),
        "Fecha": to_provider(now),
        "Movil": body.get("movil", "34600000000"),
        "Remitente": recipient.phone,
        "Mensaje": body.get("mensaje", "SI"),
        "idR": recipient.id_report,
        "idM": message.id,
        "EsCert": "true" if body.get("es_cert", True) else "false",
        "Referencia": message.reference,
    }
    core.callbacks.emit(payload)
    return 200, {"emitted": payload}


def _credits(core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]) -> Result:
    if "credits" not in body and "add" not in body:
        raise ValueError('give "credits" (set) or "add" (top up)')
    with core.state.lock:
        account = core.state.account(str(body.get("user") or core.config.user))
        if "credits" in body:
            account.credits = float(body["credits"])
        account.credits += float(body.get("add", 0))
    return 200, {"user": account.user, "credits": account.credits}


def _callbacks(
    core: SandboxCore, request: Request, body: dict[str, Any], rest: list[str]
) -> Result:
    if rest == ["wait"]:
        idle = core.callbacks.wait_idle(float(body.get("timeout_s", 10)))
        return 200, {"idle": idle, "deliveries": list(core.callbacks.deliveries)}
    return 200, list(core.callbacks.deliveries)


_ROUTES = {
    ("GET", ""): _index,
    ("GET", "requests"): _requests,
    ("POST", "reset"): _reset,
    ("GET", "config"): _get_config,
    ("POST", "config"): _set_config,
    ("POST", "tick"): _tick,
    ("POST", "clock"): _clock,
    ("GET", "state"): _state,
    ("GET", "certificate"): _certificate,
    ("POST", "event"): _event,
    ("POST", "reply"): _reply,
    ("POST", "credits"): _credits,
    ("GET", "callbacks"): _callbacks,
    ("POST", "callbacks"): _callbacks,
}
