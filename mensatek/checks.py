"""Local validation of the non-send requests, and one entry point for any request model.

The send rules live in :mod:`mensatek.validation`; this module adds message ids,
reschedule dates, the certificate modes and library files.
"""

from __future__ import annotations

from datetime import datetime

from mensatek.errors import FieldProblem
from mensatek.macros import FILE_NAME_RE
from mensatek.requests import (
    CancelRequest,
    CertificateRequest,
    DeleteFileRequest,
    Request,
    RescheduleRequest,
    SendRequest,
    UploadRequest,
)
from mensatek.validation import future_problem, normalize_phone, validate_send

# v5 "-11": PDF, Excel, Word and VCF are accepted (the v5 library allowed pdf/doc/docx/xls/xlsx).
UPLOAD_EXTENSIONS = frozenset({"pdf", "doc", "docx", "xls", "xlsx", "vcf"})


def file_name_problem(name: str) -> str | None:
    """Why a library file name is unacceptable, or None."""
    if not FILE_NAME_RE.match(name):
        return "must be up to 15 letters or digits plus an extension (e.g. contrato.pdf)"
    return None


def validate_request(req: Request, *, now: datetime) -> list[FieldProblem]:
    """Return every local problem of any request model (empty when it may be sent)."""
    if isinstance(req, SendRequest):
        return validate_send(req, now=now)
    problems: list[FieldProblem] = []

    def add(provider: str, python: str, message: str | None) -> None:
        if message:
            problems.append(FieldProblem(provider, python, message))

    if isinstance(req, CancelRequest | RescheduleRequest) and req.message_id <= 0:
        add("Idmensaje", "message_id", "must be a positive message id")
    if isinstance(req, RescheduleRequest):
        add("Fecha", "scheduled_at", future_problem(req.scheduled_at, now=now))
    if isinstance(req, CertificateRequest):
        problems.extend(certificate_problems(req))
    if isinstance(req, UploadRequest | DeleteFileRequest):
        add("Nombre", "name", file_name_problem(req.name))
    if isinstance(req, UploadRequest):
        problems.extend(upload_problems(req))
    return problems


def certificate_problems(req: CertificateRequest) -> list[FieldProblem]:
    """Problems of a certificate download: exactly one consistent mode, valid phone and range."""
    problems: list[FieldProblem] = []

    def add(provider: str, python: str, message: str) -> None:
        problems.append(FieldProblem(provider, python, message))

    if req.message_id is not None:
        if req.message_id <= 0:
            add("Idmensaje", "message_id", "must be a positive message id")
        if req.start is not None or req.end is not None:
            add("Fechainicio", "start", "a date range is only used without Idmensaje")
    elif req.phone is not None:
        add("Telefono", "phone", "needs Idmensaje (message_id)")
    elif req.start is None and req.end is None:
        add("Idmensaje", "message_id", "give Idmensaje (optionally Telefono) or a date range")
    if req.phone is not None:
        try:
            normalize_phone(req.phone)
        except ValueError as exc:
            add("Telefono", "phone", str(exc))
    if req.message_id is None and (req.start is None) != (req.end is None):
        if req.start is None:
            add("Fechainicio", "start", "a date range needs both Fechainicio and Fechafin")
        else:
            add("Fechafin", "end", "a date range needs both Fechainicio and Fechafin")
    if req.start is not None and req.end is not None:
        if req.start.utcoffset() is None or req.end.utcoffset() is None:
            add("Fechainicio", "start", "dates must be timezone-aware")
        elif req.start >= req.end:
            add("Fechafin", "end", "must be after Fechainicio")
    return problems


def upload_problems(req: UploadRequest) -> list[FieldProblem]:
    """Problems of an upload: mode, empty content, extension, PDF header."""
    problems: list[FieldProblem] = []
    if req.mode not in ("BASE64", "FILES"):
        problems.append(FieldProblem("Tipo", "mode", "must be BASE64 or FILES"))
    if not req.content:
        problems.append(FieldProblem("Contenido", "content", "is empty"))
    extension = req.name.rsplit(".", 1)[-1].lower() if "." in req.name else ""
    if extension and extension not in UPLOAD_EXTENSIONS:
        allowed = ", ".join(sorted(UPLOAD_EXTENSIONS))
        problems.append(FieldProblem("Nombre", "name", f"the extension must be one of {allowed}"))
    if extension == "pdf" and req.content and not req.content.startswith(b"%PDF-"):
        problems.append(FieldProblem("Contenido", "content", "is not a PDF (no %PDF- header)"))
    return problems
