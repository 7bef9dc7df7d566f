"""The HTTP API's request and response schemas: pydantic models the intake validates with,
and from which ``/openapi.json`` is generated (:mod:`worker.web.openapi`).

A request body is checked in two steps. First its shape, here: every key must be a
field of its kind (the provider's name, case-insensitive, or the Python name) and every
value of an accepted JSON type; a problem is a 422 naming the field. Then the rules
(phones, lengths, dates in the future, ...) by the same code as the Python producer API
(:func:`mensatek.payloads.request_from_payload`), also a 422 naming each field. The
payload models are built from the reader's own field tables
(:func:`mensatek.payloads.field_specs`), so the document cannot list a field the reader
does not know, or miss one it does.

Field names: a job's own identifier is ``id`` everywhere in this API (the create
answer, the job document, the list); ``job_id`` appears only where another thing (an
event, a dead letter, a log line) refers to a job.
"""

from __future__ import annotations

from dataclasses import MISSING
from dataclasses import fields as dataclass_fields
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from certsms.mensatek.payloads import IGNORED_KEYS, field_specs
from certsms.mensatek.requests import KINDS
from certsms.worker.jobs.record import JobRecord
from certsms.worker.jobs.status import JobStatus

Scalar = str | int | float
Flag = bool | int | str
Number = int | str


class RecipientObject(BaseModel):
    """One recipient: ``Movil`` plus the message's variables (``Nombre``...)."""

    model_config = ConfigDict(extra="allow", title="Recipient")
    Movil: str | int = Field(description="The phone, with its country code (34600000000).")


Recipients = list[RecipientObject | str | int] | RecipientObject | str

FIELD_TYPES: dict[str, Any] = {
    "recipients": Recipients,
    "contract_type": Number,
    "scheduled_at": str,
    "start": str,
    "end": str,
    "report": Flag,
    "unicode": Flag,
    "fix_utf8": Flag,
    "foreign_tax_id": Flag,
    "transliterate": Flag,
    "delete_files_after_certificate": Flag,
    "links": Flag,
    "auto_delete": Flag,
    "message_group_id": Number,
    "message_id": Number,
    "validity_days": Number,
    "validity_hours": Number,
    "validity_minutes": Number,
    "acceptance_days": Number,
    "phone": Number,
    "sender": str,
    "message": str,
    "contact": str,
    "contact_phone": Number,
    "contact_tax_id": str,
    "reference": str,
    "identify": str,
    "email_report": str,
    "name": str,
    "content": str,
    "mode": Literal["BASE64", "FILES", "base64", "files"],
}
"""The JSON types each field accepts (numbers and flags may be strings, as from a form)."""

REQUIRED: dict[str, frozenset[str]] = {
    "send": frozenset(
        {"sender", "recipients", "message", "contact", "contact_phone", "contact_tax_id"}
    ),
    "cancel": frozenset({"message_id"}),
    "report": frozenset({"message_id"}),
    "reschedule": frozenset({"message_id", "scheduled_at"}),
    "upload": frozenset({"name", "content"}),
    "delete_file": frozenset({"name"}),
}

DESCRIPTIONS: dict[str, str] = {
    "sender": "Sender name (up to 11 characters) or number.",
    "recipients": "Recipients: a list of objects with Movil, a list of phones, "
    "or '34600000000;34611111111'.",
    "message": "The text; (BASE64:p:…) macros attach a PDF.",
    "scheduled_at": "ISO-8601 with an offset, or 'YYYY-MM-DD HH:MM' (Madrid time).",
    "reference": "Your reference (Referenciausuario); searchable.",
    "message_id": "The provider's idMensaje of an earlier send.",
    "content": "The file, base64-encoded.",
}


def _kind_title(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_"))


def _payload_model(kind: str) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    required = REQUIRED.get(kind, frozenset())
    for spec in field_specs(kind):
        annotation = FIELD_TYPES[spec.python]
        description = DESCRIPTIONS.get(spec.python, "")
        also = ", ".join((spec.python, *spec.aliases)) if spec.python != spec.provider else ""
        description = (description + (f" Also accepted as: {also}." if also else "")).strip()
        if spec.python in required:
            fields[spec.python] = (annotation, Field(alias=spec.provider, description=description))
        else:
            fields[spec.python] = (
                annotation | None,
                Field(None, alias=spec.provider, description=description),
            )
    model: type[BaseModel] = create_model(
        f"{_kind_title(kind)}Payload",
        __config__=ConfigDict(extra="forbid", populate_by_name=True),
        __doc__=f"The body of POST /v1/jobs/{kind} (keys are case-insensitive).",
        **fields,
    )
    return model


PAYLOAD_MODELS: dict[str, type[BaseModel]] = {kind: _payload_model(kind) for kind in KINDS}
"""One model per job kind, by kind."""


class FieldProblem(BaseModel):
    """One invalid field."""

    field: str = Field(description="The provider's parameter name (or the query parameter).")
    python_name: str = Field(description="The Python API's name.")
    error: str = Field(description="The rule that failed.")


class ValidationErrors(BaseModel):
    """A 422: every invalid field named."""

    errors: list[FieldProblem]


class Error(BaseModel):
    """Any other error; ``field`` names the header, parameter or body part at fault."""

    error: str
    field: str | None = None


class JobCreated(BaseModel):
    """A 202: the job, queued (or the one enqueued before with this Idempotency-Key)."""

    id: str = Field(description="The job's id.")
    status: JobStatus


class RecipientStatus(BaseModel):
    """A recipient's latest Resultado."""

    result_code: int
    status_class: str
    at: str | None = None
    source: str | None = None


_JOB_DESCRIPTIONS = {
    "id": "The job's id.",
    "idmensaje": "The provider's idMensaje (sends).",
    "res": "The provider's Res code of the last answer.",
    "message_id": "dramatiq's id of the job's latest message.",
}


def _job_model() -> type[BaseModel]:
    """The job document, made from :class:`JobRecord`'s fields (so it cannot drift)."""
    hints = get_type_hints(JobRecord)
    fields: dict[str, Any] = {}
    for item in dataclass_fields(JobRecord):
        if item.name == "other":
            continue  # fields the store does not know by name: allowed as extra keys
        annotation: Any = hints[item.name]
        if item.name == "recipients":
            annotation = dict[str, RecipientStatus]
        description = _JOB_DESCRIPTIONS.get(item.name)
        if item.name in ("id", "kind", "status", "idmensaje", "error", "recipients"):
            fields[item.name] = (annotation, Field(description=description))  # always there
        else:
            default = item.default if item.default is not MISSING else None
            fields[item.name] = (annotation, Field(default, description=description))
    model: type[BaseModel] = create_model(
        "Job",
        __config__=ConfigDict(extra="allow"),
        __doc__="A job record (what ``tasks.job_status`` returns and ``certsms status --json`` "
        "prints). Fields without a value are left out, except ``idmensaje``, ``error`` "
        "and ``recipients``.",
        **fields,
    )
    return model


Job = _job_model()


JobList: type[BaseModel] = create_model(
    "JobList",
    __doc__="A page of jobs, newest first; ``next_cursor`` fetches the next (null: the last).",
    jobs=(list[Job], ...),  # type: ignore[valid-type]
    next_cursor=(str | None, ...),
)


class ListQuery(BaseModel):
    """The filters of ``GET /v1/jobs``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    status: JobStatus | None = Field(None, description="Only jobs in this status.")
    kind: Literal[KINDS] | None = Field(None, description="Only jobs of this kind.")  # type: ignore[valid-type]
    reference: str | None = Field(None, max_length=200, description="The job with this reference.")
    idmensaje: str | None = Field(
        None, alias="idMensaje", pattern=r"^\d{1,20}$", description="The send with this idMensaje."
    )
    since: str | None = Field(
        None, description="ISO-8601; created at or after (entered the status, with status)."
    )
    until: str | None = Field(None, description="ISO-8601; created at or before.")
    cursor: str | None = Field(None, description="next_cursor of the previous page.")
    limit: int = Field(50, ge=1, le=200, description="Jobs per page.")


def problems_of(error: ValidationError, model: type[BaseModel]) -> list[FieldProblem]:
    """Pydantic's errors as field problems named by the provider's (alias) names."""
    aliases = {name: info.alias or name for name, info in model.model_fields.items()}
    grouped: dict[str, tuple[str, list[str]]] = {}
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        python_name = loc[0] if loc else "body"
        field = aliases.get(python_name, python_name)
        message = "unknown parameter" if item["type"] == "extra_forbidden" else str(item["msg"])
        messages = grouped.setdefault(python_name, (field, []))[1]
        if message not in messages:
            messages.append(message)
    return [
        FieldProblem(
            field=field,
            python_name=python_name,
            error=messages[0] if len(messages) == 1 else "wrong type: " + "; or ".join(messages),
        )
        for python_name, (field, messages) in grouped.items()
    ]


def check_payload(kind: str, payload: dict[str, Any]) -> list[FieldProblem]:
    """The shape problems of a body of ``kind`` (none: hand it on to the rules)."""
    names: dict[str, str] = {}
    for spec in field_specs(kind):
        for name in (spec.python, spec.provider, *spec.aliases):
            names[name.lower()] = spec.python
    by_python: dict[str, Any] = {}
    for key, value in payload.items():
        lowered = str(key).lower()
        if lowered in IGNORED_KEYS:
            continue
        by_python[names.get(lowered, str(key))] = value
    model = PAYLOAD_MODELS[kind]
    try:
        model.model_validate(by_python)
    except ValidationError as exc:
        return problems_of(exc, model)
    return []
