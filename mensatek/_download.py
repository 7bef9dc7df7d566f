"""Streaming a certificate ZIP to disk: temp file beside the target, checked, then renamed.

The body is written chunk by chunk and hashed on the way, so a large ZIP is never
held in memory. Only a body that starts with a ZIP signature gets here (the
client sniffs the first bytes); a body that fails :func:`zipfile.ZipFile.testzip`
is deleted and reported as :class:`zipfile.BadZipFile`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from mensatek.results import CertificateResult

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
CHUNK_BYTES = 64 * 1024


def looks_like_zip(head: bytes) -> bool:
    """Whether the first bytes of a body are a ZIP signature."""
    return head[:4] in ZIP_SIGNATURES


def store_zip(head: bytes, rest: Iterable[bytes], dest: Path) -> CertificateResult:
    """Write ``head`` + ``rest`` to ``dest`` atomically; check it is a valid ZIP first."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, before the rename
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
    )
    tmp = Path(handle.name)
    try:
        with handle:
            for chunk in _chain(head, rest):
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        with zipfile.ZipFile(tmp) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"member {bad!r} is corrupt")
            members = tuple(archive.namelist())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return CertificateResult(path=dest, size_bytes=size, sha256=digest.hexdigest(), members=members)


def _chain(head: bytes, rest: Iterable[bytes]) -> Iterable[bytes]:
    if head:
        yield head
    for chunk in rest:
        if chunk:
            yield chunk
