"""Streaming a certificate ZIP to disk: hashed on the way, checked, then renamed into place.

The body is written chunk by chunk (:func:`mensatek.files.atomic_write`) and hashed
on the way, so a large ZIP is never held in memory. Only a body that starts with a
ZIP signature gets here (the client sniffs the first bytes); a body that fails
:meth:`zipfile.ZipFile.testzip` is deleted and reported as :class:`zipfile.BadZipFile`.
"""

from __future__ import annotations

import hashlib
import itertools
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from mensatek.files import atomic_write
from mensatek.results import CertificateResult

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
CHUNK_BYTES = 64 * 1024


def looks_like_zip(head: bytes) -> bool:
    """Whether the first bytes of a body are a ZIP signature."""
    return head[:4] in ZIP_SIGNATURES


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
