"""The HTTP intake: ``POST /v1/jobs/<kind>``, ``GET /v1/jobs`` and ``GET /v1/jobs/<id>``.

Same payloads and validation as the Python producer API (``tasks.enqueue``), behind
``Authorization: Bearer <CERTSMS_INTAKE_TOKEN>``. A body is checked against its kind's
pydantic model first (:mod:`worker.web.schemas`, the models ``/openapi.json`` is made
from), then by the producer's rules. Answers: 202 ``{"id", "status"}``;
422 ``{"errors": [{"field", "python_name", "error"}, ...]}`` naming every invalid field
(of the body, or of the list's query); 400 ``{"error", "field"}`` when the body is not a
JSON object or the ``Idempotency-Key`` is unusable; 409 when the key was used with a
different payload; 401 without the token; 404 for an unknown kind or job; 413 above
:data:`INTAKE_MAX_BODY_BYTES`; 503 when the intake token is not configured.
"""

from __future__ import annotations

import json
import re
from typing import Any

import structlog
from flask import Blueprint, Response, request
from pydantic import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from certsms.mensatek.errors import InvalidRequest
from certsms.mensatek.validation import recipient_count_problem
from certsms.worker.errors import IdempotencyConflict
from certsms.worker.web.auth import BEARER_CHALLENGE, intake_credentials_ok, refusal_log
from certsms.worker.web.console.data import SearchError, find_jobs
from certsms.worker.web.context import web_context
from certsms.worker.web.schemas import FieldProblem, ListQuery, check_payload, problems_of

log = structlog.get_logger(__name__)

bp = Blueprint("intake", __name__)

INTAKE_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Uploads carry base64 file content; 16 MiB leaves room for a 12 MiB PDF."""

_IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")


def intake_kinds() -> tuple[str, ...]:
    """The job kinds the intake accepts (the request side's ``KINDS``)."""
    try:
        from certsms.mensatek.requests import KINDS
    except ImportError:  # the request models have not landed: the documented list
        return (
            "send",
            "cancel",
            "reschedule",
            "certificate",
            "report",
            "upload",
            "delete_file",
            "credits",
            "list_files",
        )
    return tuple(KINDS)


def _json(document: Any, status: int) -> tuple[Response, int]:
    return Response(
        json.dumps(document, default=str, sort_keys=True), mimetype="application/json"
    ), status


def _unauthorized() -> tuple[Response, int] | None:
    settings = web_context().settings
    allowed = intake_credentials_ok(settings, request.headers.get("Authorization"))
    if allowed is None:
        return _json({"error": "intake disabled: CERTSMS_INTAKE_TOKEN is not set"}, 503)
    if allowed:
        return None
    refusal_log(settings).refused("intake", remote_addr=request.remote_addr, stage="app")
    response, status = _json({"error": "authentication required"}, 401)
    response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
    return response, status


@bp.post("/v1/jobs/<kind>")
def create_job(kind: str) -> tuple[Response, int]:
    """Validate and enqueue one job of ``kind``."""
    denied = _unauthorized()
    if denied is not None:
        return denied
    if kind not in intake_kinds():
        return _json(
            {"error": f"unknown job kind {kind[:40]!r}", "field": "kind", "kinds": intake_kinds()},
            404,
        )
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY_RE.match(key):
        return _json(
            {
                "error": "Idempotency-Key must be 1-200 printable ASCII characters",
                "field": "Idempotency-Key",
            },
            400,
        )
    request.max_content_length = INTAKE_MAX_BODY_BYTES
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _json(
            {"error": "body too large", "field": "body", "max_bytes": INTAKE_MAX_BODY_BYTES}, 413
        )
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except RecursionError:  # e.g. "[" * 60000: nested too deeply to decode
        return _json({"error": "body is not valid JSON: nested too deeply", "field": "body"}, 400)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return _json({"error": "body is not valid JSON", "field": "body"}, 400)
    if not isinstance(payload, dict):
        return _json({"error": "body must be a JSON object", "field": "body"}, 400)
    too_many = (
        recipient_count_problem(
            payload, max_recipients=web_context().settings.max_recipients_per_send
        )
        if kind == "send"
        else None
    )
    if too_many is not None:  # before any recipient is read
        return _json({"errors": [too_many.as_dict()]}, 422)
    shape = check_payload(kind, payload)
    if shape:
        log.info("intake_rejected", kind=kind, problems=len(shape))
        return _json({"errors": [p.model_dump() for p in shape]}, 422)
    context = web_context()
    try:
        job_id = context.enqueue_job(kind, payload, key)
    except InvalidRequest as exc:
        log.info("intake_rejected", kind=kind, problems=len(exc.problems))
        return _json({"errors": [p.as_dict() for p in exc.problems]}, 422)
    except IdempotencyConflict as exc:
        log.info("intake_idempotency_conflict", kind=kind, job_id=exc.job_id)
        return _json(
            {"error": "Idempotency-Key already used with another payload", "job_id": exc.job_id},
            409,
        )
    record = context.store.get(job_id)
    log.info("intake_enqueued", kind=kind, job_id=job_id, idempotency_key_given=key is not None)
    return _json({"id": job_id, "status": str(record.status if record else "queued")}, 202)


@bp.get("/v1/jobs")
def list_jobs() -> tuple[Response, int]:
    """Jobs newest first, filtered (status, kind, reference, idMensaje, time), by pages."""
    denied = _unauthorized()
    if denied is not None:
        return denied
    try:
        query = ListQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        return _json({"errors": [p.model_dump() for p in problems_of(exc, ListQuery)]}, 422)
    try:
        page = find_jobs(
            web_context(),
            status=query.status,
            kind=query.kind,
            reference=query.reference,
            idmensaje=query.idmensaje,
            since=query.since,
            until=query.until,
            cursor=query.cursor,
            limit=query.limit,
        )
    except SearchError as exc:
        problem = FieldProblem(field=exc.field, python_name=exc.field, error=exc.message)
        return _json({"errors": [problem.model_dump()]}, 422)
    jobs = [record.to_dict() for record in page.jobs]
    return _json({"jobs": jobs, "next_cursor": page.next_cursor}, 200)


@bp.get("/v1/jobs/<job_id>")
def get_job(job_id: str) -> tuple[Response, int]:
    """The job record as JSON (``JobRecord.to_dict()``, what ``certsms status --json`` prints)."""
    denied = _unauthorized()
    if denied is not None:
        return denied
    record = web_context().store.get(job_id)
    if record is None:
        return _json({"error": "no such job", "field": "id"}, 404)
    return _json(record.to_dict(), 200)
