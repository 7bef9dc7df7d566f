"""A typed client of the Mensatek Certified SMS / Contract SMS API v7 (no queue inside).

Payloads are read into typed requests (:mod:`mensatek.payloads` into
:mod:`mensatek.requests`), validated locally (:mod:`mensatek.validation`), sent by
:class:`MensatekClient`, and answered with typed results or typed errors (tree in
:mod:`mensatek.errors`). The provider's callbacks are parsed by
:mod:`mensatek.callbacks`. One helper per rule, shared by both directions: phones
(:mod:`mensatek.phones`), Madrid dates (:mod:`mensatek.dates`), yes/no values
(:mod:`mensatek.values`), atomic files (:mod:`mensatek.files`).
"""

from certsms.mensatek.answers import FUNCTIONS, IDEMPOTENT
from certsms.mensatek.callbacks import (
    AttachmentEvent,
    Callback,
    CallbackInvalid,
    InboundReply,
    StatusCallback,
    parse_callback,
)
from certsms.mensatek.client import MensatekClient
from certsms.mensatek.errors import (
    AuthenticationFailed,
    BadDate,
    BadRequestData,
    FieldProblem,
    FileLibraryError,
    InsufficientCredits,
    InvalidRequest,
    LocalRejection,
    MensatekError,
    NotCancellable,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    TransportError,
)
from certsms.mensatek.gsm import TextAnalysis, analyze_text
from certsms.mensatek.parsing import Answer, parse_answer
from certsms.mensatek.payloads import request_from_payload, send_request_from_payload
from certsms.mensatek.phones import canonical_phone
from certsms.mensatek.requests import (
    KINDS,
    CancelRequest,
    CertificateRequest,
    DeleteFileRequest,
    Recipient,
    ReportRequest,
    RescheduleRequest,
    SendRequest,
    UploadRequest,
)
from certsms.mensatek.results import (
    CancelResult,
    CertificateResult,
    CreditsResult,
    DeleteFileResult,
    FileEntry,
    ListFilesResult,
    ReportEntry,
    ReportResult,
    RescheduleResult,
    SendResult,
    UploadResult,
)
from certsms.mensatek.retrying import is_retryable, is_unhealthy
from certsms.mensatek.status import StatusClass, classify, is_final, status_text
from certsms.mensatek.validation import validate_request
from certsms.mensatek.values import parse_bool

__all__ = [  # noqa: RUF022 - grouped by topic, sorted within each group
    # client
    "FUNCTIONS",
    "IDEMPOTENT",
    "MensatekClient",
    "is_retryable",
    "is_unhealthy",
    # requests
    "KINDS",
    "CancelRequest",
    "CertificateRequest",
    "DeleteFileRequest",
    "Recipient",
    "ReportRequest",
    "RescheduleRequest",
    "SendRequest",
    "TextAnalysis",
    "UploadRequest",
    "analyze_text",
    "request_from_payload",
    "send_request_from_payload",
    "validate_request",
    # shared helpers (both directions)
    "canonical_phone",
    "parse_bool",
    # results
    "Answer",
    "CancelResult",
    "CertificateResult",
    "CreditsResult",
    "DeleteFileResult",
    "FileEntry",
    "ListFilesResult",
    "ReportEntry",
    "ReportResult",
    "RescheduleResult",
    "SendResult",
    "UploadResult",
    "parse_answer",
    # callbacks
    "AttachmentEvent",
    "Callback",
    "CallbackInvalid",
    "InboundReply",
    "StatusCallback",
    "parse_callback",
    # status
    "StatusClass",
    "classify",
    "is_final",
    "status_text",
    # errors
    "AuthenticationFailed",
    "BadDate",
    "BadRequestData",
    "FieldProblem",
    "FileLibraryError",
    "InsufficientCredits",
    "InvalidRequest",
    "LocalRejection",
    "MensatekError",
    "NotCancellable",
    "NotFound",
    "ProviderRejected",
    "ProviderUnavailable",
    "TransportError",
]
