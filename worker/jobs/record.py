"""The job record as a typed value: what :meth:`JobStore.get` returns.

A record is read from the job's Redis hash (every value a string there, see
:mod:`worker.jobs.fields`) and its recipients' hash. Code reads attributes; only
:meth:`JobRecord.to_dict` turns it back into the JSON document the CLI, the HTTP
API and the producer API's ``job_status`` show (the same field names as the hash).
Fields the store does not know by name (written by ``set_fields`` or ``transition``
with a new name) are kept, as strings, in :attr:`JobRecord.other` so nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from certsms.worker.jobs.status import JobStatus


@dataclass(frozen=True)
class RecipientState:
    """A recipient's latest ``Resultado`` as certsms recorded it."""

    result_code: int
    status_class: str
    at: str | None = None
    source: str | None = None

    @classmethod
    def from_json(cls, text: bytes | str) -> RecipientState:
        """From the recipients hash's JSON value."""
        data = json.loads(text)
        return cls(
            result_code=int(data["result_code"]),
            status_class=str(data["status_class"]),
            at=data.get("at"),
            source=data.get("source"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (``result_code``, ``status_class``, ``at``, ``source``)."""
        return {
            "result_code": self.result_code,
            "status_class": self.status_class,
            "at": self.at,
            "source": self.source,
        }


def _int(text: str) -> int | None:
    return int(text) if text.lstrip("-").isdigit() else None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class JobRecord:
    """One job (see the store's layout in :mod:`worker.jobs.store`).

    ``message_id`` is the dramatiq message id of the job's latest message;
    ``idmensaje`` is the provider's message id (sends). Times ending in ``_at`` are
    ISO-8601 UTC; those ending in ``_ts`` are epoch seconds.
    """

    id: str
    kind: str
    status: JobStatus
    created_at: str | None = None
    updated_at: str | None = None
    attempts: int = 0
    idempotency_key: str | None = None
    reference: str | None = None
    idmensaje: int | None = None
    res: int | None = None
    http_status: int | None = None
    credits_used: float | None = None
    credits_needed: float | None = None
    credits_available: float | None = None
    not_sent: int | None = None
    not_sent_phones: list[str] | None = None
    error: dict[str, Any] | None = None
    result: Any = None
    reason: str | None = None
    source: str | None = None
    message_id: str | None = None
    worker_id: str | None = None
    in_flight_at: str | None = None
    in_flight_ts: float | None = None
    in_flight_token: str | None = None
    held_until_ts: float | None = None
    scheduled_at: str | None = None
    local_reschedules: int = 0
    last_callback_ts: float | None = None
    evidence_overdue_at: str | None = None
    evidence_retries: int = 0
    polls: int = 0
    recipients_total: int | None = None  # a send's recipients in all, once indexed
    recipients: Mapping[str, RecipientState] = field(default_factory=dict)
    other: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_hash(
        cls, raw: Mapping[bytes, bytes], recipients: Mapping[bytes, bytes]
    ) -> JobRecord | None:
        """The record from its Redis hashes; None when there is none (no ``status``)."""
        text = {k.decode(): v.decode() for k, v in raw.items()}
        if "status" not in text:
            return None
        known: dict[str, Any] = {}
        other: dict[str, str] = {}
        for name, value in text.items():
            if name in _IDENTITY or name == "payload":
                continue
            kind = _FIELD_KINDS.get(name)
            if kind is None:
                other[name] = value
            elif kind == "int":
                known[name] = _int(value) if name not in _COUNTERS else (_int(value) or 0)
            elif kind == "float":
                known[name] = _float(value)
            elif kind == "json":
                known[name] = json.loads(value) if value else None
            else:
                known[name] = value or None
        known["id"] = text.get("id") or ""
        known["kind"] = text.get("kind") or ""
        known["status"] = JobStatus(text["status"])
        states = {k.decode(): RecipientState.from_json(v) for k, v in sorted(recipients.items())}
        return cls(**known, recipients=states, other=other)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (``recipients`` as dicts, unknown fields as stored, None
        values left out except ``idmensaje`` and ``error``, which are always there)."""
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("recipients", "other"):
                continue
            if value is None and item.name not in ("idmensaje", "error"):
                continue
            data[item.name] = value.value if isinstance(value, JobStatus) else value
        data.update(self.other)
        data["recipients"] = {phone: s.to_dict() for phone, s in self.recipients.items()}
        return data


_FIELD_KINDS: dict[str, str] = {
    "attempts": "int",
    "idmensaje": "int",
    "res": "int",
    "http_status": "int",
    "local_reschedules": "int",
    "evidence_retries": "int",
    "polls": "int",
    "recipients_total": "int",
    "credits_used": "float",
    "credits_needed": "float",
    "credits_available": "float",
    "not_sent": "int",
    "not_sent_phones": "json",
    "in_flight_ts": "float",
    "held_until_ts": "float",
    "last_callback_ts": "float",
    "error": "json",
    "result": "json",
    "created_at": "str",
    "updated_at": "str",
    "idempotency_key": "str",
    "reference": "str",
    "reason": "str",
    "source": "str",
    "message_id": "str",
    "worker_id": "str",
    "in_flight_token": "str",
    "in_flight_at": "str",
    "scheduled_at": "str",
    "evidence_overdue_at": "str",
}
_IDENTITY = frozenset({"id", "kind", "status"})  # set from the hash directly
_COUNTERS = frozenset({"attempts", "local_reschedules", "evidence_retries", "polls"})
