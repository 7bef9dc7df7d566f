"""``GET /openapi.json``: a static OpenAPI 3.1 document of the intake API and the callback.

Static on purpose: the document is the contract, reviewed like code, and a test checks
that every route of the app is described in it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__)

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
    "required": ["error"],
}
_FIELD_PROBLEM = {
    "type": "object",
    "properties": {
        "field": {"type": "string", "description": "The provider's parameter name."},
        "python_name": {"type": "string", "description": "The Python API's name."},
        "error": {"type": "string", "description": "The rule that failed."},
    },
    "required": ["field", "python_name", "error"],
}
_SEND_PAYLOAD = {
    "type": "object",
    "description": (
        "EnviarSMSCERTIFICADO parameters, by the provider's names (case-insensitive) or the "
        "Python names. Numbers may be strings; Destinatarios may be a list of objects, a JSON "
        "string or '34600000000;34611111111'. Unknown keys are rejected."
    ),
    "properties": {
        "Remitente": {"type": "string", "description": "Sender (sender)."},
        "Destinatarios": {
            "description": "Recipients (recipients).",
            "oneOf": [
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"Movil": {"type": "string"}},
                        "required": ["Movil"],
                        "additionalProperties": {"type": "string"},
                    },
                },
                {"type": "string"},
            ],
        },
        "Mensaje": {"type": "string", "description": "Text (message)."},
        "Contacto": {"type": "string"},
        "Telcontacto": {"type": "string"},
        "Cifcontacto": {"type": "string"},
        "Tipocontrato": {"type": ["integer", "string"], "default": 0},
        "Fecha": {"type": "string", "description": "ISO-8601 with offset or YYYY-MM-DD HH:MM."},
        "Referenciausuario": {"type": "string", "description": "Your reference (reference)."},
        "Report": {"type": ["boolean", "integer", "string"]},
        "Unicode": {"type": ["boolean", "integer", "string"]},
    },
    "required": ["Remitente", "Destinatarios", "Mensaje"],
    "additionalProperties": True,
}
_JOB = {
    "type": "object",
    "description": "The job record (as tasks.job_status returns it).",
    "properties": {
        "job_id": {"type": "string"},
        "kind": {"type": "string"},
        "status": {
            "type": "string",
            "enum": [
                "queued",
                "running",
                "in_flight",
                "sent",
                "scheduled",
                "delivered",
                "certified",
                "evidence_stored",
                "rejected",
                "failed",
                "dead",
                "uncertain",
                "cancelled",
                "succeeded",
            ],
        },
    },
    "required": ["status"],
    "additionalProperties": True,
}
_KINDS = [
    "send",
    "cancel",
    "reschedule",
    "certificate",
    "report",
    "upload",
    "delete_file",
    "credits",
    "list_files",
]


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "certsms HTTP API",
        "version": "1",
        "description": (
            "Enqueue Certified SMS and Contract SMS jobs from any language, read their "
            "status, and receive the provider's callbacks."
        ),
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
        "schemas": {
            "Error": _ERROR,
            "FieldProblem": _FIELD_PROBLEM,
            "SendPayload": _SEND_PAYLOAD,
            "Job": _JOB,
        },
    },
    "paths": {
        "/v1/jobs/{kind}": {
            "post": {
                "summary": "Validate and enqueue a job",
                "security": [{"intakeToken": []}],
                "parameters": [
                    {
                        "name": "kind",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": _KINDS},
                    },
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "The same key returns the same job instead of a new one.",
                        "schema": {"type": "string", "maxLength": 200},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "description": (
                                    "The same payload as tasks.enqueue(kind, payload); "
                                    "for kind=send see SendPayload."
                                ),
                                "oneOf": [
                                    {"$ref": "#/components/schemas/SendPayload"},
                                    {"type": "object"},
                                ],
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json_response(
                        "Enqueued (or the job already enqueued with this Idempotency-Key)",
                        {
                            "type": "object",
                            "properties": {
                                "job_id": {"type": "string"},
                                "status": {"type": "string"},
                            },
                            "required": ["job_id", "status"],
                        },
                    ),
                    "400": _json_response("Body is not a JSON object", _ERROR),
                    "401": _json_response("Missing or wrong bearer token", _ERROR),
                    "404": _json_response("Unknown kind", _ERROR),
                    "409": _json_response("Idempotency-Key reused with another payload", _ERROR),
                    "413": _json_response("Body too large", _ERROR),
                    "422": _json_response(
                        "Invalid payload: every invalid field named",
                        {
                            "type": "object",
                            "properties": {
                                "errors": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/FieldProblem"},
                                }
                            },
                            "required": ["errors"],
                        },
                    ),
                    "503": _json_response("Intake not configured", _ERROR),
                },
            }
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "Read a job record",
                "security": [{"intakeToken": []}],
                "parameters": [
                    {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json_response("The job", {"$ref": "#/components/schemas/Job"}),
                    "401": _json_response("Missing or wrong bearer token", _ERROR),
                    "404": _json_response("No such job", _ERROR),
                },
            }
        },
        "/callbacks/mensatek": {
            "post": {
                "summary": "Receive a Mensatek callback (configure this URL in the provider panel)",
                "description": (
                    "Servicio SMSCERTIFICADO (status change), EVENTOSSMSCERTIFICADO (attachment "
                    "event) or SMSRECIBIDO (inbound reply). JSON or form (urlencoded or "
                    "multipart); all values may be strings. Answered 200 once durably queued."
                ),
                "security": [{"callbackBasic": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        media: {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "Servicio": {
                                        "type": "string",
                                        "enum": [
                                            "SMSCERTIFICADO",
                                            "EVENTOSSMSCERTIFICADO",
                                            "SMSRECIBIDO",
                                        ],
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
                        }
                        for media in (
                            "application/json",
                            "application/x-www-form-urlencoded",
                            "multipart/form-data",
                        )
                    },
                },
                "responses": {
                    "200": _json_response(
                        "Queued",
                        {
                            "type": "object",
                            "properties": {"status": {"const": "queued"}, "id": {"type": "string"}},
                        },
                    ),
                    "400": _json_response("Unreadable body", _ERROR),
                    "401": _json_response("Missing or wrong Basic credentials", _ERROR),
                    "413": _json_response("Body above CERTSMS_CALLBACK_MAX_BODY_BYTES", _ERROR),
                    "415": _json_response("Unsupported content type", _ERROR),
                    "422": _json_response("Unknown Servicio, missing or malformed field", _ERROR),
                    "503": _json_response("Could not queue; the provider should retry", _ERROR),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: Redis reachable, provider breaker state",
                "responses": {
                    "200": _json_response(
                        "Healthy",
                        {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string"},
                                "redis": {"type": "string"},
                                "breaker": {"type": "string"},
                            },
                        },
                    ),
                    "503": _json_response("Redis unreachable", {"type": "object"}),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json_response("OpenAPI 3.1", {"type": "object"})},
            }
        },
    },
}


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI document."""
    return jsonify(OPENAPI)
