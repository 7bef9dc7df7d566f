"""A tolerant reader for the provider's pseudo-JSON (docs/provider.md §9.3).

The documentation shows nested arrays such as ``Informe`` as strings holding
single-quoted, not-quite-JSON text::

    [{'Fecha':'2021-09-04 19:37:21','Tiempo':3,'Resultado':14,'Estado':'Entregado a l'usuario'}]

Swapping quotes breaks on apostrophes inside values, so this is a small
recursive-descent reader instead. A single quote closes a string only when what
follows looks like the continuation of the structure (``:``, ``}``, ``]``, the end,
or a comma followed by another key or value); any other single quote is part of
the value. Double-quoted strings follow JSON rules. Bare words are numbers,
``true``/``false``/``null`` (also Python's spellings) or text.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE_KEY_AHEAD = re.compile(r"[A-Za-z_][\w]*\s*:")
_LITERAL_AHEAD = re.compile(r"(true|false|null|True|False|None)\s*([,\]}]|$)")
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+")
_LITERALS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "none": None,
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}


def loads(text: str) -> Any:
    """Parse ``text`` (JSON or single-quoted pseudo-JSON); raise ``ValueError`` if it is neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    reader = _Reader(text)
    value = reader.value()
    reader.skip_ws()
    if reader.pos != len(text):
        raise ValueError(f"unexpected text at {reader.pos}")
    return value


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r} at {self.pos}")
        self.pos += 1

    def value(self) -> Any:
        char = self.peek()
        if char == "{":
            return self.obj()
        if char == "[":
            return self.array()
        if char in ("'", '"'):
            return self.string(char)
        if not char:
            raise ValueError("unexpected end")
        return _bare(self.bare(",]}"))

    def obj(self) -> dict[str, Any]:
        self.expect("{")
        result: dict[str, Any] = {}
        while True:
            char = self.peek()
            if char == "}":
                self.pos += 1
                return result
            key = self.string(char) if char in ("'", '"') else self.bare(":")
            self.expect(":")
            result[str(key)] = self.value()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise ValueError(f"expected ',' or '}}' at {self.pos}")

    def array(self) -> list[Any]:
        self.expect("[")
        result: list[Any] = []
        while True:
            if self.peek() == "]":
                self.pos += 1
                return result
            result.append(self.value())
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                raise ValueError(f"expected ',' or ']' at {self.pos}")

    def bare(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        word = self.text[start : self.pos].strip()
        if not word:
            raise ValueError(f"empty token at {start}")
        return word

    def string(self, quote: str) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(text):
                out.append(self.escape())
            elif char == quote and (quote == '"' or self.closes_here()):
                return "".join(out)
            else:
                out.append(char)
        raise ValueError("unterminated string")

    def escape(self) -> str:
        char = self.text[self.pos]
        self.pos += 1
        if char == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", self.text[self.pos : self.pos + 4]):
            self.pos += 4
            return chr(int(self.text[self.pos - 4 : self.pos], 16))
        return _ESCAPES.get(char, char)

    def closes_here(self) -> bool:
        """Whether a single quote just read ends the string (see the module docstring)."""
        rest = self.text[self.pos :].lstrip()
        if not rest or rest[0] in ":}]":
            return True
        if rest[0] != ",":
            return False
        after = rest[1:].lstrip()
        return (
            not after
            or after[0] in "'\"{[]}-+0123456789"
            or bool(_BARE_KEY_AHEAD.match(after) or _LITERAL_AHEAD.match(after))
        )


def _bare(word: str) -> Any:
    lowered = word.lower()
    if lowered in _LITERALS:
        return _LITERALS[lowered]
    if _INT.fullmatch(word):
        return int(word)
    if _FLOAT.fullmatch(word):
        return float(word)
    return word
