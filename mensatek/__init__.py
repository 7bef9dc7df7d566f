"""A typed client of the Mensatek Certified SMS / Contract SMS API v7 (no queue inside).

Requests are validated locally (:mod:`mensatek.requests`), sent by
:class:`MensatekClient`, and answered with typed results or typed errors
(tree in :mod:`mensatek.errors`).
"""

from mensatek.client import MensatekClient
from mensatek.errors import (
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
from mensatek.gsm import TextAnalysis, analyze_text
from mensatek.mapping import FUNCTIONS, IDEMPOTENT
from mensatek.parsing import Answer, parse_answer
from mensatek.requests import (
    KINDS,
    CancelRequest,
    CertificateRequest,
    DeleteFileRequest,
    Recipient,
    ReportRequest,
    RescheduleRequest,
    SendRequest,
    UploadRequest,
    request_from_payload,
    send_request_from_payload,
)
from mensatek.results import (
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
from mensatek.retrying import is_retryable, is_unhealthy
from mensatek.status import StatusClass, classify, is_final, status_text

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
