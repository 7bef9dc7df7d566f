"""``GET /openapi.json``: the OpenAPI 3.1 document, generated from the pydantic models
the intake validates with (:mod:`worker.web.schemas`).

Each job kind has its own path (``POST /v1/jobs/send``, ``/v1/jobs/cancel``, ...) and
body schema, so a body matches exactly one schema; the job itself is ``GET
/v1/jobs/{id}``. Tests validate the document (openapi-spec-validator), every file in
``examples/`` against it, and fuzz the live intake with it (schemathesis).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from certsms.mensatek.requests import KINDS
from certsms.worker.web.schemas import (
    PAYLOAD_MODELS,
    Error,
    Job,
    JobCreated,
    JobList,
    ListQuery,
    ValidationErrors,
)

bp = Blueprint("openapi", __name__)

_REF = "#/components/schemas/{model}"
_CALLBACK_FIELDS = {
    "type": "object",
    "properties": {
        "Servicio": {
            "type": "string",
            "enum": ["SMSCERTIFICADO", "EVENTOSSMSCERTIFICADO", "SMSRECIBIDO"],
        },
        "idMensaje": {"type": ["string", "integer"]},
        "Referencia": {"type": "string"},
        "Movil": {"type": "string"},
        "Resultado": {"type": ["string", "integer"]},
        "Fecha": {"type": "string"},
    },
    "required": ["Servicio"],
    "additionalProperties": True,
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, _ref(Error))


def _operation_id(kind: str) -> str:
    return "enqueue" + "".join(part.title() for part in kind.split("_"))


def _enqueue_path(kind: str) -> dict[str, Any]:
    model = PAYLOAD_MODELS[kind]
    return {
        "post": {
            "operationId": _operation_id(kind),
            "summary": f"Validate and enqueue a {kind} job",
            "tags": ["jobs"],
            "security": [{"intakeToken": []}],
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "The same key returns the same job instead of a new one "
                    "(1-200 printable ASCII characters).",
                    "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,200}$"},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(model)}},
            },
            "responses": {
                "202": _json("Enqueued (or enqueued before with this key)", _ref(JobCreated)),
                "400": _error("Body is not a JSON object, or the Idempotency-Key is unusable"),
                "401": _error("Missing or wrong bearer token"),
                "409": _error("Idempotency-Key already used with another payload"),
                "413": _error("Body too large"),
                "422": _json("Invalid payload: every invalid field named", _ref(ValidationErrors)),
                "503": _error("Intake not configured, or Redis unavailable"),
            },
        }
    }


def _query_parameters() -> list[dict[str, Any]]:
    schema = ListQuery.model_json_schema(by_alias=True, ref_template=_REF)
    parameters = []
    for name, prop in schema["properties"].items():
        description = prop.pop("description", "")
        prop.pop("title", None)
        if prop.get("default", 0) is None:
            del prop["default"]
        options = [p for p in prop.pop("anyOf", []) if p != {"type": "null"}]
        if options:  # an optional query parameter is absent, never null
            prop.update(options[0])
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": prop,
            }
        )
    return parameters


def _schemas() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [
        (model, "validation") for model in PAYLOAD_MODELS.values()
    ]
    models += [
        (model, "serialization") for model in (Error, ValidationErrors, JobCreated, Job, JobList)
    ]
    _, definitions = models_json_schema(models, by_alias=True, ref_template=_REF)
    return dict(definitions.get("$defs", {}))


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    paths: dict[str, Any] = {f"/v1/jobs/{kind}": _enqueue_path(kind) for kind in KINDS}
    paths["/v1/jobs"] = {
        "get": {
            "operationId": "listJobs",
            "summary": "List jobs, newest first, with filters and cursor paging",
            "tags": ["jobs"],
            "security": [{"intakeToken": []}],
            "parameters": _query_parameters(),
            "responses": {
                "200": _json("A page of jobs", _ref(JobList)),
                "401": _error("Missing or wrong bearer token"),
                "422": _json("A filter is invalid: each one named", _ref(ValidationErrors)),
                "503": _error("Intake not configured, or Redis unavailable"),
            },
        }
    }
    paths["/v1/jobs/{id}"] = {
        "get": {
            "operationId": "getJob",
            "summary": "Read one job",
            "tags": ["jobs"],
            "security": [{"intakeToken": []}],
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": _json("The job", _ref(Job)),
                "401": _error("Missing or wrong bearer token"),
                "404": _error("No such job"),
                "503": _error("Intake not configured, or Redis unavailable"),
            },
        }
    }
    paths["/callbacks/mensatek"] = {
        "post": {
            "operationId": "receiveMensatekCallback",
            "summary": "Receive a Mensatek callback (configure this URL in the provider panel)",
            "description": "Servicio SMSCERTIFICADO (status change), EVENTOSSMSCERTIFICADO "
            "(attachment event) or SMSRECIBIDO (inbound reply). JSON or form; all values may "
            "be strings. Answered 200 once durably queued.",
            "tags": ["callbacks"],
            "security": [{"callbackBasic": []}],
            "requestBody": {
                "required": True,
                "content": {
                    media: {"schema": _CALLBACK_FIELDS}
                    for media in (
                        "application/json",
                        "application/x-www-form-urlencoded",
                        "multipart/form-data",
                    )
                },
            },
            "responses": {
                "200": _json(
                    "Queued",
                    {
                        "type": "object",
                        "properties": {"status": {"const": "queued"}, "id": {"type": "string"}},
                    },
                ),
                "400": _error("Unreadable body"),
                "401": _error("Missing or wrong Basic credentials"),
                "413": _error("Body above CERTSMS_CALLBACK_MAX_BODY_BYTES"),
                "415": _error("Unsupported content type"),
                "422": _error("Unknown Servicio, missing or malformed field"),
                "503": _error("Could not queue; the provider should retry"),
            },
        }
    }
    paths["/healthz"] = {
        "get": {
            "operationId": "health",
            "summary": "Liveness: Redis reachable, provider breaker state",
            "tags": ["operations"],
            "responses": {
                "200": _json("Healthy", {"type": "object"}),
                "503": _json("Redis unreachable", {"type": "object"}),
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics (text exposition format)",
            "tags": ["operations"],
            "responses": {
                "200": {
                    "description": "Metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["operations"],
            "responses": {"200": _json("OpenAPI 3.1", {"type": "object"})},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "certsms HTTP API",
            "version": "1",
            "description": "Enqueue Certified SMS and Contract SMS jobs from any language, "
            "list and read them, and receive the provider's callbacks. Body keys are the "
            "provider's names (matched case-insensitively) or the Python names.",
        },
        "components": {
            "securitySchemes": {
                "intakeToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "CERTSMS_INTAKE_TOKEN",
                },
                "callbackBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "CERTSMS_CALLBACK_USER / CERTSMS_CALLBACK_PASSWORD",
                },
            },
            "schemas": _schemas(),
        },
        "paths": paths,
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI document."""
    return jsonify(openapi_document())
