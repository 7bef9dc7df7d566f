"""Writing a file so that readers see either nothing or the whole, checked file.

:func:`atomic_write` writes to a temporary file in the target's directory (named
``.<name>.<random>.part``, so a crash leaves an obviously unfinished file beside
the target, never a half-written target), fsyncs it, lets the caller check it,
renames it over the target with :func:`os.replace` and fsyncs the directory so the
rename survives a power cut. On any error the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

TEMP_SUFFIX = ".part"


def atomic_write(
    path: Path,
    data: bytes | Iterable[bytes],
    *,
    check: Callable[[Path], object] | None = None,
    mode: int | None = None,
) -> int:
    """Write ``data`` (bytes, or an iterable of chunks) to ``path`` atomically.

    ``check`` is called with the temporary file once it is complete and synced; an
    exception it raises aborts the write. ``mode`` (e.g. ``0o444``) is applied
    before the rename. Creates the parent directory; returns the size in bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = [data] if isinstance(data, bytes | bytearray | memoryview) else data
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    temp = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if check is not None:
            check(temp)
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
        _fsync_dir(path.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return size


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
