"""atomic_write: the target holds the whole, checked file or stays as it was."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from certsms.mensatek.files import atomic_write


def test_atomic_write_writes_bytes_and_chunks(tmp_path: Path) -> None:
    """Bytes or an iterable of chunks land in the target, creating its directory."""
    target = tmp_path / "new" / "a.bin"
    assert atomic_write(target, b"hello") == 5
    assert target.read_bytes() == b"hello"
    assert atomic_write(target, iter([b"ab", b"", b"cd"])) == 4
    assert target.read_bytes() == b"abcd"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.bin"]


def test_atomic_write_check_sees_the_complete_file_and_can_refuse(tmp_path: Path) -> None:
    """The check reads the finished temp file; raising keeps the old target, no temp left."""
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    seen: list[bytes] = []

    def refuse(written: Path) -> None:
        seen.append(written.read_bytes())
        raise ValueError("not good")

    with pytest.raises(ValueError, match="not good"):
        atomic_write(target, [b"ne", b"w"], check=refuse)
    assert seen == [b"new"]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_write_failing_source_leaves_nothing(tmp_path: Path) -> None:
    """An error while reading the chunks removes the temp file and creates no target."""

    def broken() -> Iterator[bytes]:
        yield b"part"
        raise OSError("connection reset")

    with pytest.raises(OSError, match="reset"):
        atomic_write(tmp_path / "a.bin", broken())
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_applies_mode(tmp_path: Path) -> None:
    """``mode`` is set on the file before it appears under its name."""
    target = tmp_path / "ro.zip"
    atomic_write(target, b"x", mode=0o444)
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
