"""Streaming a certificate ZIP to disk: hashed on the way, checked, then renamed into place.

A bare PDF answer (docs/provider.md §6: "the PDF file with the certificate" by
``Idmensaje`` + ``Telefono``) is kept as evidence the same way: wrapped, byte for
byte, as the one member of a ZIP (:func:`store_pdf_as_zip`), so the evidence store,
its manifest and ``certsms evidence`` treat both answers alike.

The body is written chunk by chunk (:func:`mensatek.files.atomic_write`) and hashed
on the way, so a large ZIP is never held in memory. Only a body that starts with a
ZIP signature gets here (the client sniffs the first bytes); a body that fails
:meth:`zipfile.ZipFile.testzip` is deleted and reported as :class:`zipfile.BadZipFile`.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from certsms.mensatek.files import atomic_write
from certsms.mensatek.results import CertificateResult

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
CHUNK_BYTES = 64 * 1024


def looks_like_zip(head: bytes) -> bool:
    """Whether the first bytes of a body are a ZIP signature."""
    return head[:4] in ZIP_SIGNATURES


PDF_SIGNATURE = b"%PDF-"
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a wrapped PDF gives the same ZIP every time


def looks_like_pdf(head: bytes) -> bool:
    """Whether the first bytes of a body are a PDF header."""
    return head[:5] == PDF_SIGNATURE


def pdf_member_name(params: Mapping[str, object]) -> str:
    """The name of a wrapped PDF inside its ZIP: ``certificado_<idMensaje>_<phone>.pdf``."""
    parts = [str(params.get(key)) for key in ("Idmensaje", "Telefono") if params.get(key)]
    safe = ["".join(c for c in part if c.isalnum()) for part in parts]
    return "_".join(["certificado", *safe]) + ".pdf"


def store_pdf_as_zip(
    head: bytes, rest: Iterable[bytes], dest: Path, params: Mapping[str, object]
) -> CertificateResult:
    """Read a bare PDF answer and store it as the one member of a ZIP at ``dest``."""
    pdf = b"".join(itertools.chain((head,), rest))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo(pdf_member_name(params), date_time=_FIXED_ZIP_TIME)
        archive.writestr(info, pdf)
    return store_zip(buffer.getvalue(), (), dest)


def store_zip(head: bytes, rest: Iterable[bytes], dest: Path) -> CertificateResult:
    """Write ``head`` + ``rest`` to ``dest`` atomically once it checks out as a valid ZIP."""
    digest = hashlib.sha256()
    members: list[str] = []

    def hashed() -> Iterator[bytes]:
        for chunk in itertools.chain((head,), rest):
            if chunk:
                digest.update(chunk)
                yield chunk

    def check(written: Path) -> None:
        with zipfile.ZipFile(written) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"member {bad!r} is corrupt")
            members.extend(archive.namelist())

    size = atomic_write(dest, hashed(), check=check)
    return CertificateResult(
        path=dest, size_bytes=size, sha256=digest.hexdigest(), members=tuple(members)
    )
