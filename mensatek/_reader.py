"""The field reader of :mod:`mensatek.payloads`: names, loose scalar types, every problem kept.

A payload comes from JSON (CLI, HTTP, a job record), so numbers may be strings
(``"3"``), booleans may be ``"1"``/``"true"``/``"si"`` (:mod:`mensatek.values`),
dates may be ISO-8601 with an offset or the provider's ``YYYY-MM-DD HH:MM`` (Madrid
time). Keys match case-insensitively against the provider's names, their known
aliases and the Python field names. :class:`PayloadReader` never raises: it records
a :class:`~mensatek.errors.FieldProblem` per bad field and returns ``None``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from certsms.mensatek.dates import is_provider_format, parse_provider_datetime
from certsms.mensatek.errors import FieldProblem
from certsms.mensatek.values import parse_bool

_INT_RE = re.compile(r"^[+-]?\d+$")
_WS_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class FieldSpec:
    """One request field: its Python name, provider name, and other accepted spellings."""

    python: str
    provider: str
    aliases: tuple[str, ...] = ()


class PayloadReader:
    """Map a payload's keys to fields and convert values, collecting every problem."""

    def __init__(self, payload: object, specs: Sequence[FieldSpec], *, kind: str) -> None:
        self.problems: list[FieldProblem] = []
        self._specs = {spec.python: spec for spec in specs}
        self._values: dict[str, object] = {}
        if not isinstance(payload, Mapping):
            self.problems.append(
                FieldProblem("payload", "payload", f"a {kind} payload must be an object")
            )
            return
        names: dict[str, FieldSpec] = {}
        for spec in specs:
            for name in (spec.python, spec.provider, *spec.aliases):
                names[name.lower()] = spec
        seen: dict[str, str] = {}
        for key, value in payload.items():
            found = names.get(str(key).lower())
            if found is None:
                self.problems.append(
                    FieldProblem(str(key), str(key), f"unknown parameter for {kind}")
                )
            elif found.python in seen:
                self.problem(found.python, f"given twice (as {seen[found.python]!r} and {key!r})")
            else:
                seen[found.python] = str(key)
                self._values[found.python] = value

    def problem(self, python: str, message: str) -> None:
        """Record a problem for the field named ``python``."""
        spec = self._specs[python]
        self.problems.append(FieldProblem(spec.provider, spec.python, message))

    def failed(self, python: str) -> bool:
        """Whether a problem was recorded for ``python``."""
        return any(p.python_name == python for p in self.problems)

    def raw(self, python: str) -> object:
        """The value as given, or None when absent. Empty strings count as absent."""
        value = self._values.get(python)
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def _missing(self, python: str, required: bool) -> None:
        if required:
            self.problem(python, "is required")

    def string(self, python: str, *, required: bool = False, strip: bool = True) -> str | None:
        """A text field; integers are accepted and written in decimal."""
        value = self.raw(python)
        if value is None:
            self._missing(python, required)
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            self.problem(python, f"must be text, not {type(value).__name__}")
            return None
        return value.strip() if strip else value

    def integer(self, python: str, *, required: bool = False) -> int | None:
        """An integer field; ``"3"`` and ``3.0`` are accepted, booleans are not."""
        value = self.raw(python)
        if value is None:
            self._missing(python, required)
            return None
        if isinstance(value, bool):
            self.problem(python, "must be an integer, not a boolean")
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value.strip())
        self.problem(python, f"must be an integer, got {_show(value)}")
        return None

    def boolean(self, python: str) -> bool:
        """A 0/1 flag: booleans, 0/1, and "true"/"false"/"si"/"no"… (absent → False)."""
        value = self.raw(python)
        if value is None:
            return False
        flag = parse_bool(value)
        if flag is not None:
            return flag
        self.problem(python, f"must be 0/1 or true/false, got {_show(value)}")
        return False

    def when(self, python: str, *, required: bool = False) -> datetime | None:
        """An aware datetime: ISO-8601 with an offset, or ``YYYY-MM-DD HH:MM`` in Madrid."""
        value = self.raw(python)
        if value is None:
            self._missing(python, required)
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                self.problem(python, "must be timezone-aware (a naive datetime was given)")
                return None
            return value
        if not isinstance(value, str):
            self.problem(python, f"must be a date text, not {type(value).__name__}")
            return None
        text = value.strip()
        if is_provider_format(text):
            try:
                return parse_provider_datetime(text)
            except ValueError:
                self.problem(python, f"is not a real date: {text!r}")
                return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.problem(
                python,
                f"must be ISO-8601 with an offset or 'YYYY-MM-DD HH:MM' (Madrid), got {text!r}",
            )
            return None
        if parsed.tzinfo is None:
            self.problem(
                python,
                f"{text!r} has no UTC offset; add one (e.g. +02:00) or use 'YYYY-MM-DD HH:MM' "
                "(Madrid time)",
            )
            return None
        # kept in its own fixed offset: converting could give a fold=1 Madrid datetime, and
        # Python never finds a fold=1 ambiguous time equal to a datetime of another zone
        return parsed

    def content(self, python: str, *, required: bool = False) -> bytes | None:
        """File content: bytes as they are, or a base64 text."""
        value = self.raw(python)
        if value is None:
            self._missing(python, required)
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        if not isinstance(value, str):
            self.problem(python, f"must be base64 text, not {type(value).__name__}")
            return None
        try:
            return base64.b64decode(_WS_RE.sub("", value), validate=True)
        except (binascii.Error, ValueError):
            self.problem(python, "is not valid base64")
            return None


def _show(value: object) -> str:
    """A short representation of a bad value for a problem message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
