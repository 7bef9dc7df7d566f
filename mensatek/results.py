"""Typed results of the nine provider functions (docs/provider.md §2).

Frozen dataclasses with English names; the provider's field names are in the
docstrings. Each is built from a parsed :class:`~mensatek.parsing.Answer` with
``from_response`` (the certificate, a ZIP, with :meth:`CertificateResult.from_zip`)
and keeps ``credits`` (``Cred``/``CRED``, the balance after the call) when the
answer had it. ``raw`` keeps the answer as plain data; it takes no part in
equality. Dates (``Fecha``) are Europe/Madrid, returned timezone-aware.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from certsms.mensatek.dates import parse_provider_datetime
from certsms.mensatek.macros import library_name_problem
from certsms.mensatek.parsing import Answer
from certsms.mensatek.phones import canonical_phone
from certsms.mensatek.values import parse_bool

_CREDITS = ("Cred", "Creditos")
_MESSAGE_ID = ("idMensaje", "Msgid", "Idmensaje")


def _answer(mapping: Mapping[str, Any]) -> Answer:
    return mapping if isinstance(mapping, Answer) else Answer(mapping)


def _raw() -> Any:
    return field(default_factory=dict, compare=False, repr=False)


def _provider_datetime(text: str | None) -> datetime | None:
    """``YYYY-MM-DD HH:MM[:SS]`` Madrid wall time, aware (see mensatek.dates); None if odd."""
    if not text:
        return None
    try:
        return parse_provider_datetime(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class SendResult:
    """``EnviarSMSCERTIFICADO``: ``idMensaje``/``Msgid``, ``Res`` (messages sent),
    ``Destinatarios``, ``Mensajes``, ``NoEnviados``, ``CreditosUsados``, ``Cred``."""

    message_id: int | None
    sent_count: int
    recipients: int | None = None
    messages: int | None = None
    not_sent: int | None = None
    credits_used: float | None = None
    credits: float | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> SendResult:
        """Build from a parsed send answer (``Destinatarios`` may be a count or an array)."""
        answer = _answer(mapping)
        records = answer.records("Destinatarios")
        return cls(
            message_id=answer.get_int(*_MESSAGE_ID),
            sent_count=answer.get_int("Res") or 0,
            recipients=len(records) if records else answer.get_int("Destinatarios"),
            messages=answer.get_int("Mensajes"),
            not_sent=answer.get_int("NoEnviados"),
            credits_used=answer.get_float("CreditosUsados"),
            credits=answer.get_float(*_CREDITS),
            raw=answer.to_dict(),
        )


@dataclass(frozen=True)
class CancelResult:
    """``CancelarSMSCERTIFICADO``: ``Res`` (recipients cancelled), ``IDMENSAJE``, ``CRED``,
    ``CREDR``."""

    cancelled_count: int
    message_id: int | None = None
    credits: float | None = None
    credits_recovered: float | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> CancelResult:
        """Build from a parsed cancel answer (v5 spellings ``Resp``/``Msgid``/``CredR`` too)."""
        answer = _answer(mapping)
        return cls(
            cancelled_count=answer.get_int("Res") or 0,
            message_id=answer.get_int(*_MESSAGE_ID),
            credits=answer.get_float(*_CREDITS),
            credits_recovered=answer.get_float("CredR"),
            raw=answer.to_dict(),
        )


@dataclass(frozen=True)
class _ResultCode:
    """An answer that carries only ``Res`` and ``Cred``."""

    res: int
    credits: float | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> Self:
        """Build from a parsed answer."""
        answer = _answer(mapping)
        return cls(
            res=answer.get_int("Res") or 0,
            credits=answer.get_float(*_CREDITS),
            raw=answer.to_dict(),
        )


@dataclass(frozen=True)
class RescheduleResult(_ResultCode):
    """``ReprogramarSMSCERTIFICADO``: ``Res`` (1 = rescheduled), ``Cred``."""


@dataclass(frozen=True)
class CertificateResult:
    """``GetSMSCERTIFICADO``: the ZIP (certificate PDFs + a CSV) stored at ``path``."""

    path: Path
    size_bytes: int
    sha256: str
    members: tuple[str, ...]
    credits: float | None = None

    @classmethod
    def from_zip(cls, path: Path, *, sha256: str | None = None) -> CertificateResult:
        """Describe a stored ZIP; ``sha256`` is computed from the file when not given."""
        if sha256 is None:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(chunk)
            sha256 = digest.hexdigest()
        with zipfile.ZipFile(path) as archive:
            members = tuple(archive.namelist())
        return cls(path=path, size_bytes=path.stat().st_size, sha256=sha256, members=members)


@dataclass(frozen=True)
class ReportEntry:
    """One ``Informe`` element: ``Telefono``, ``Resultado``, ``Estado``, ``Fecha``, ``Tiempo``."""

    phone: str
    result_code: int | None
    status_text: str | None = None
    reported_at: datetime | None = None
    delivery_s: int | None = None

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> ReportEntry:
        """Build from one parsed ``Informe`` element (``Telefono`` may be a number)."""
        answer = _answer(mapping)
        return cls(
            phone=canonical_phone(answer.get_text("Telefono", "Movil") or ""),
            result_code=answer.get_int("Resultado"),
            status_text=answer.get_text("Estado"),
            reported_at=_provider_datetime(answer.get_text("Fecha")),
            delivery_s=answer.get_int("Tiempo", "Segundos"),
        )


@dataclass(frozen=True)
class ReportResult:
    """``GetReportSMSCERTIFICADO``: ``Destinatarios`` (count), ``Informe`` (entries), ``Cred``."""

    recipient_count: int | None
    recipients: tuple[ReportEntry, ...]
    credits: float | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> ReportResult:
        """Build from a parsed report answer (``Informe`` in any of the array encodings)."""
        answer = _answer(mapping)
        entries = tuple(ReportEntry.from_response(item) for item in answer.records("Informe"))
        return cls(
            recipient_count=answer.get_int("Destinatarios"),
            recipients=entries,
            credits=answer.get_float(*_CREDITS),
            raw=answer.to_dict(),
        )


@dataclass(frozen=True)
class UploadResult:
    """``CargarFichero``: ``Nombre`` (the name given by the provider), ``Sobrescrito``, ``Cred``."""

    name: str | None
    overwritten: bool | None = None
    credits: float | None = None
    raw: Mapping[str, Any] = _raw()

    @property
    def name_problem(self) -> str | None:
        """Why the name the provider gave cannot be used in a ``(FILE:…)`` macro, or None."""
        return library_name_problem(self.name) if self.name else None

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> UploadResult:
        """Build from a parsed upload answer."""
        answer = _answer(mapping)
        return cls(
            name=answer.get_text("Nombre"),
            overwritten=parse_bool(answer.first("Sobrescrito")),
            credits=answer.get_float(*_CREDITS),
            raw=answer.to_dict(),
        )


@dataclass(frozen=True)
class FileEntry:
    """One ``Ficheros`` element: ``Nombre``, ``Ext`` (upper case), ``Fecha`` (uploaded)."""

    name: str
    ext: str | None = None
    uploaded_at: datetime | None = None

    @property
    def name_problem(self) -> str | None:
        """Why this name breaks the v7 rule (a ``(FILE:…)`` macro would be refused), or None."""
        return library_name_problem(self.name)

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> FileEntry:
        """Build from one parsed ``Ficheros`` element."""
        answer = _answer(mapping)
        ext = answer.get_text("Ext")
        return cls(
            name=answer.get_text("Nombre") or "",
            ext=ext.upper() if ext else None,
            uploaded_at=_provider_datetime(answer.get_text("Fecha")),
        )


@dataclass(frozen=True)
class ListFilesResult:
    """``ListarFicheros``: ``Ficheros`` (entries), ``Cred``."""

    files: tuple[FileEntry, ...]
    credits: float | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> ListFilesResult:
        """Build from a parsed list answer (``Ficheros`` in any of the array encodings)."""
        answer = _answer(mapping)
        files = tuple(FileEntry.from_response(item) for item in answer.records("Ficheros"))
        return cls(files=files, credits=answer.get_float(*_CREDITS), raw=answer.to_dict())


@dataclass(frozen=True)
class DeleteFileResult(_ResultCode):
    """``BorrarFichero``: ``Res`` (1 = deleted), ``Cred``."""


@dataclass(frozen=True)
class CreditsResult:
    """``GetCreditos``: ``Cred`` (the account's balance)."""

    credits: float | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_response(cls, mapping: Mapping[str, Any]) -> CreditsResult:
        """Build from a parsed credits answer."""
        answer = _answer(mapping)
        return cls(credits=answer.get_float(*_CREDITS), raw=answer.to_dict())
