"""Errors of the job system (producer API, job store, worker).

::

    CertsmsError                         (config.errors)
    └── JobError                         anything about jobs
        ├── IdempotencyConflict          same idempotency key, different payload
        ├── JobNotFound                  no job record with that id
        ├── InvalidTransition            an operator action the job's state does not allow
        └── MalformedMessage             a queue message that breaks the message contract
"""

from __future__ import annotations

from typing import Any

from certsms.config.errors import CertsmsError


class JobError(CertsmsError):
    """Raised for anything that went wrong in the job system (the family's root)."""


class IdempotencyConflict(JobError):
    """Raised when an idempotency key is reused with a different payload."""

    def __init__(self, key: str, job_id: str) -> None:
        self.key = key
        self.job_id = job_id
        super().__init__(
            f"idempotency key {key!r} was already used for job {job_id} with a different payload"
        )


class JobNotFound(JobError):
    """Raised when no job record exists for the given id (expired or never created)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r}")


class InvalidTransition(JobError):
    """Raised when an operator action is not allowed from the job's current status."""


class MalformedMessage(JobError):
    """Raised when a queue message breaks the message contract; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def error_record(exc: BaseException) -> dict[str, Any]:
    """The ``error`` kept on a job record and a dead letter: ``as_dict()`` or the class.

    Provider errors carry their ``Res``, HTTP status and request id in ``as_dict()``;
    the message is cut to 500 characters.
    """
    as_dict = getattr(exc, "as_dict", None)
    data: dict[str, Any] = as_dict() if callable(as_dict) else {"class": type(exc).__name__}
    data.setdefault("message", str(exc)[:500])
    return data
