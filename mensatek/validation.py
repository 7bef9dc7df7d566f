"""Local validation of every request kind: nothing the provider would reject is sent.

:func:`validate_request` returns every problem of any request model; each rule
yields a :class:`~mensatek.errors.FieldProblem` naming the provider's field, the
Python field and the rule. Sends have the most rules (:func:`validate_send`);
the others check message ids, reschedule dates, the certificate modes and library
files. The phone rule is :func:`mensatek.phones.phone_problem`. The rules (and
the decisions where the provider's behaviour is unknown) are listed in
``docs/readme/31-validation.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from stdnum.es import nif

from certsms.mensatek.errors import FieldProblem
from certsms.mensatek.gsm import analyze_text
from certsms.mensatek.macros import (
    LINK_TYPES,
    library_name_problem,
    macro_problems,
    parse_macros,
    strip_macros,
)
from certsms.mensatek.phones import mask_phone, phone_problem
from certsms.mensatek.requests import (
    RECIPIENT_KEYS,
    CancelRequest,
    CertificateRequest,
    DeleteFileRequest,
    Recipient,
    Request,
    RescheduleRequest,
    SendRequest,
    UploadRequest,
    compact_tax_id,
)

REFERENCE_MAX_CHARS = 100
EMAIL_MAX_CHARS = 254
FOREIGN_TAX_ID_RE = re.compile(r"^[A-Z0-9]{2,20}$")
SENDER_ALNUM_RE = re.compile(r"^[A-Za-z0-9&_]{1,11}$")
SENDER_NUMERIC_RE = re.compile(r"^\+?[0-9]{1,15}$")
CONTACT_PHONE_RE = re.compile(r"^\+?[0-9 ().-]{6,25}$")
EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
RANGES: dict[str, tuple[str, int, int]] = {
    # python name: (provider name, min, max), both inclusive
    "validity_days": ("Vpd", 1, 20),
    "validity_hours": ("Vph", 0, 23),
    "validity_minutes": ("Vpm", 0, 59),
    "acceptance_days": ("Aceptacion", 0, 15),
}
# v5 "-11": PDF, Excel, Word and VCF are accepted (the v5 library allowed pdf/doc/docx/xls/xlsx).
UPLOAD_EXTENSIONS = frozenset({"pdf", "doc", "docx", "xls", "xlsx", "vcf"})
PDF_CONTRACT_TYPES: frozenset[int] = frozenset({18})
"""Contract types known to need a PDF in ``Mensaje`` (18: the recipient reads the PDF and
accepts it); other types (a basic Contract SMS accepted by SMS reply) may go without one.
The setting ``CERTSMS_CONTRACT_TYPES_NEEDING_PDF`` replaces this list."""


def validate_request(
    req: Request,
    *,
    now: datetime | None = None,
    pdf_contract_types: Iterable[int] | None = None,
) -> list[FieldProblem]:
    """Return every local problem of any request model (empty when it may be sent).

    ``now`` (aware) is the instant scheduled dates must follow; default: the current time.
    ``pdf_contract_types``: the contract types that must carry a PDF (default
    :data:`PDF_CONTRACT_TYPES`).
    """
    now = now or datetime.now(UTC)
    if isinstance(req, SendRequest):
        return validate_send(req, now=now, pdf_contract_types=pdf_contract_types)
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


def sender_problem(sender: str) -> str | None:
    """Why ``Remitente`` is unacceptable, or None."""
    if not sender:
        return "is required (the account's default sender is not used implicitly)"
    if SENDER_ALNUM_RE.match(sender) or SENDER_NUMERIC_RE.match(sender):
        return None
    return (
        "must be up to 11 letters, digits, '&' or '_' (ASCII, no spaces), "
        "or up to 15 digits with an optional '+'"
    )


def tax_id_problem(tax_id: str, *, foreign: bool) -> str | None:
    """Why ``Cifcontacto`` is unacceptable, or None (Spanish NIF/NIE/CIF via stdnum)."""
    compact = compact_tax_id(tax_id)
    if not compact:
        return "is required"
    if nif.is_valid(compact):  # stdnum's NIF is the whole family: DNI, K/L/M, NIE, CIF
        return None
    if foreign:
        if FOREIGN_TAX_ID_RE.match(compact):
            return None
        return "a foreign tax id must be 2–20 letters or digits"
    return (
        "is not a valid Spanish NIF, NIE or CIF (check the control character); "
        "set foreign_tax_id=True for a foreign tax id"
    )


def future_problem(value: datetime, *, now: datetime) -> str | None:
    """Why a scheduled date is unacceptable (naive, or not after ``now`` at minute precision)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "must be timezone-aware"
    if value.replace(second=0, microsecond=0) <= now:
        return "must be in the future (the provider takes minutes: seconds are dropped)"
    return None


def _char_list(chars: Iterable[str]) -> str:
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars)


MAX_RECIPIENTS_PER_SEND = 10_000
"""The library's default cap on recipients per send (the provider documents none; the
setting ``CERTSMS_MAX_RECIPIENTS_PER_SEND`` replaces it): one request stays a bounded
amount of work for the web thread that validates it and the job that tracks it."""


def count_recipients(payload: Mapping[str, object]) -> int:
    """How many recipients a send payload names (``Destinatarios``/``recipients``, a
    list, a JSON text or a separated list), counted without reading any of them."""
    raw = next(
        (v for k, v in payload.items() if str(k).lower() in ("destinatarios", "recipients")),
        None,
    )
    if isinstance(raw, str):
        text = raw.strip()
        if text[:1] == "[":
            try:
                raw = json.loads(text)
            except ValueError:
                return 0
        else:
            return len([part for part in re.split(r"[;,]", text) if part.strip()])
    if isinstance(raw, list | tuple):
        return len(raw)
    return 1 if isinstance(raw, Mapping) else 0


def recipient_count_problem(
    payload: Mapping[str, object], *, max_recipients: int = MAX_RECIPIENTS_PER_SEND
) -> FieldProblem | None:
    """``Destinatarios`` naming more than ``max_recipients``, or None."""
    count = count_recipients(payload)
    if count <= max_recipients:
        return None
    return FieldProblem(
        "Destinatarios",
        "recipients",
        f"names {count} recipients; at most {max_recipients} per send "
        "(CERTSMS_MAX_RECIPIENTS_PER_SEND): split it into several sends",
    )


def recipient_problems(recipients: tuple[Recipient, ...]) -> list[FieldProblem]:
    """Problems of ``Destinatarios``: none given, bad phones, duplicates, unknown variables."""
    problems: list[str] = []
    if not recipients:
        problems.append("at least one recipient is required")
    first_seen: dict[str, int] = {}
    for index, recipient in enumerate(recipients, start=1):
        phone = recipient.phone  # canonical (see Recipient)
        problem = phone_problem(phone)
        if problem:
            problems.append(f"recipient #{index} ({mask_phone(phone)}): Movil {problem}")
            continue
        if phone in first_seen:
            problems.append(
                f"recipient #{index} ({mask_phone(phone)}) duplicates recipient "
                f"#{first_seen[phone]}"
            )
        else:
            first_seen[phone] = index
        unknown = sorted(set(recipient.variables) - set(RECIPIENT_KEYS[1:]))
        if unknown:
            problems.append(
                f"recipient #{index}: unknown variables {unknown}; allowed: "
                + ", ".join(RECIPIENT_KEYS[1:])
            )
    return [FieldProblem("Destinatarios", "recipients", text) for text in problems]


def message_problems(
    req: SendRequest, *, pdf_contract_types: Iterable[int] | None = None
) -> list[FieldProblem]:
    """Problems of ``Mensaje``: empty, bad macros, missing contract PDF, characters outside GSM."""
    needing_pdf = PDF_CONTRACT_TYPES if pdf_contract_types is None else set(pdf_contract_types)
    texts: list[str] = []
    if not req.message.strip():
        return [FieldProblem("Mensaje", "message", "is required")]
    macros = parse_macros(req.message)
    for macro in macros:
        texts.extend(macro_problems(macro))
    if req.contract_type in needing_pdf and not any(macro.is_pdf for macro in macros):
        texts.append(
            f"a Contract SMS of Tipocontrato {req.contract_type} must carry its PDF: "
            "(FILE:2:name.pdf) or (BASE64:2:<base64 of the PDF>)"
        )
    if req.links is False and any(macro.type in LINK_TYPES for macro in macros):
        texts.append(
            "holds (FILE|BASE64|LINK|IMG) macros but Links=0: the provider would send them "
            "as plain text; leave Links out (certsms sends Links=1) or remove the macros"
        )
    if not req.unicode:
        analysis = analyze_text(strip_macros(req.message, macros))
        if analysis.transliterated and not req.transliterate:
            pairs = ", ".join(f"{k!r}→{v!r}" for k, v in analysis.transliterated.items())
            texts.append(
                f"characters outside GSM 03.38 that the provider would change: {pairs}; "
                "set transliterate=True to convert them, or Unicode=1"
            )
        if analysis.non_gsm:
            texts.append(
                f"characters outside GSM 03.38 need Unicode=1: {_char_list(analysis.non_gsm)}"
            )
    return [FieldProblem("Mensaje", "message", text) for text in texts]


def validate_send(
    req: SendRequest, *, now: datetime, pdf_contract_types: Iterable[int] | None = None
) -> list[FieldProblem]:
    """Return every problem of a send request (empty when it may be sent)."""
    problems = recipient_problems(req.recipients) + message_problems(
        req, pdf_contract_types=pdf_contract_types
    )

    def add(provider: str, python: str, message: str | None) -> None:
        if message:
            problems.append(FieldProblem(provider, python, message))

    add("Remitente", "sender", sender_problem(req.sender))
    add("Contacto", "contact", None if req.contact.strip() else "is required")
    if not req.contact_phone.strip():
        add("Telcontacto", "contact_phone", "is required")
    elif not CONTACT_PHONE_RE.match(req.contact_phone.strip()):
        add("Telcontacto", "contact_phone", "must be a phone number (digits, spaces, '+')")
    add(
        "Cifcontacto",
        "contact_tax_id",
        tax_id_problem(req.contact_tax_id, foreign=req.foreign_tax_id),
    )
    if req.contract_type < 0:
        add("Tipocontrato", "contract_type", "must be 0 (Certified SMS) or a contract type > 0")
    for python, (provider, low, high) in RANGES.items():
        value = getattr(req, python)
        if value is not None and not low <= value <= high:
            add(provider, python, f"must be between {low} and {high}, got {value}")
    if req.contract_type != 0:
        if req.identify is not None:
            add("Identificar", "identify", "is only for Certified SMS (Tipocontrato 0)")
        if req.acceptance_days:
            add("Aceptacion", "acceptance_days", "is only for Certified SMS (Tipocontrato 0)")
    if req.identify is not None and not req.identify.strip():
        add("Identificar", "identify", "must not be empty when given")
    if req.scheduled_at is not None:
        add("Fecha", "scheduled_at", future_problem(req.scheduled_at, now=now))
    if req.reference is not None:
        if not req.reference.strip():
            add("Referenciausuario", "reference", "must not be empty when given")
        elif len(req.reference) > REFERENCE_MAX_CHARS:
            add(
                "Referenciausuario",
                "reference",
                f"must be at most {REFERENCE_MAX_CHARS} characters",
            )
    if req.message_group_id is not None and req.message_group_id <= 0:
        add("Idmensaje", "message_group_id", "must be a positive message id")
    if req.email_report is not None and (
        len(req.email_report) > EMAIL_MAX_CHARS or not EMAIL_RE.match(req.email_report)
    ):
        add("Emailreport", "email_report", "must be one valid email address")
    return problems


def file_name_problem(name: str) -> str | None:
    """Why a library file name is unacceptable, or None (docs/provider.md §8.4)."""
    return library_name_problem(name)


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
        problem = phone_problem(req.phone)
        if problem:
            add("Telefono", "phone", problem)
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
