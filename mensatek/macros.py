"""Macros inside ``Mensaje``: ``(TYPE:PROTOCOL:CONTENT)`` (v7) and ``(TYPE:CONTENT)`` (v5).

v7 types: ``FILE`` (a file in the library, content = its name), ``BASE64`` (an
inline PDF), ``IMG`` (an image of the account's library), ``LINK`` (a URL to
shorten). ``PROTOCOL`` is 0 (none), 1 (``http://``) or 2 (``https://``). The v5
two-part forms (``(FILE:x.pdf)``, ``(LINK:url)``, ``(SMSLAND:id)``, ``(QRCODE:text)``,
``(DATAMATRIX:…)``, ``(PDF417:…)``, ``(TICKET:n)``) are accepted leniently with
``protocol=None``. Type names are case-insensitive. Text in parentheses whose
first word is not a macro type is plain text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

V7_TYPES = ("FILE", "BASE64", "IMG", "LINK")
V5_TYPES = ("FILE", "IMG", "LINK", "SMSLAND", "QRCODE", "DATAMATRIX", "PDF417", "TICKET")

_MACRO_RE = re.compile(
    r"\((?P<type>" + "|".join(sorted(set(V7_TYPES + V5_TYPES), key=len, reverse=True)) + r")"
    r":(?:(?P<protocol>[012]):)?(?P<content>[^()]*)\)",
    re.IGNORECASE,
)
# Library names (docs/provider.md §8.4): "a maximum of 15 characters (only letters and
# numbers)" including the extension: letters or digits, one dot, an extension, 15 in all.
FILE_NAME_MAX_CHARS = 15
FILE_NAME_RE = re.compile(r"^(?=.{3,15}$)[A-Za-z0-9]+\.[A-Za-z0-9]+$")
LINK_TYPES = frozenset(V7_TYPES)
"""Macros that need ``Links=1`` on the send (docs/provider.md §8.3)."""
_B64_WS_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Macro:
    """One macro: ``type`` upper-cased, ``protocol`` (None for v5 forms), ``span`` in the text."""

    type: str
    protocol: int | None
    content: str
    span: tuple[int, int]

    @property
    def is_pdf(self) -> bool:
        """Whether the macro attaches a PDF (BASE64, or FILE named ``*.pdf``)."""
        return self.type == "BASE64" or (
            self.type == "FILE" and self.content.strip().lower().endswith(".pdf")
        )


def parse_macros(text: str) -> list[Macro]:
    """Return every macro of ``text`` in order (a two-part BASE64 is returned, then refused)."""
    found: list[Macro] = []
    for match in _MACRO_RE.finditer(text):
        kind = match.group("type").upper()
        protocol = match.group("protocol")
        found.append(
            Macro(
                type=kind,
                protocol=int(protocol) if protocol is not None else None,
                content=match.group("content"),
                span=match.span(),
            )
        )
    return found


def library_name_problem(name: str) -> str | None:
    """Why a library file name breaks "a maximum of 15 characters (only letters and
    numbers)" with its extension (docs/provider.md §8.4), or None."""
    if FILE_NAME_RE.match(name):
        return None
    return (
        f"must be at most {FILE_NAME_MAX_CHARS} characters in all: letters or digits, "
        "one dot and the extension (e.g. contrato1.pdf)"
    )


def needs_links(text: str) -> bool:
    """Whether ``text`` holds a (FILE|BASE64|LINK|IMG) macro, which the provider only
    interprets with ``Links=1``."""
    return any(macro.type in LINK_TYPES for macro in parse_macros(text))


def strip_macros(text: str, macros: list[Macro] | None = None) -> str:
    """Return ``text`` without its macros (the part the recipient reads as text)."""
    pieces: list[str] = []
    last = 0
    for macro in macros if macros is not None else parse_macros(text):
        pieces.append(text[last : macro.span[0]])
        last = macro.span[1]
    pieces.append(text[last:])
    return "".join(pieces)


def map_outside_macros(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to the text between macros, leaving each macro untouched."""
    pieces: list[str] = []
    last = 0
    for macro in parse_macros(text):
        pieces.append(fn(text[last : macro.span[0]]))
        pieces.append(text[macro.span[0] : macro.span[1]])
        last = macro.span[1]
    pieces.append(fn(text[last:]))
    return "".join(pieces)


def decode_pdf_base64(content: str) -> bytes:
    """Decode a BASE64 macro's content; raise ``ValueError`` unless it is a PDF."""
    compact = _B64_WS_RE.sub("", content)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("content is not valid base64") from exc
    if not data.startswith(b"%PDF-"):
        raise ValueError("content is not a PDF (it does not start with %PDF-)")
    return data


def macro_problems(macro: Macro) -> list[str]:
    """Return what is wrong with one macro (empty when it is acceptable)."""
    label = f"macro ({macro.type}:…) at position {macro.span[0]}"
    content = macro.content.strip()
    if not content:
        return [f"{label} has no content"]
    if macro.type == "BASE64":
        if macro.protocol is None:
            return [f"{label} needs the form (BASE64:PROTOCOL:content)"]
        try:
            decode_pdf_base64(content)
        except ValueError as exc:
            return [f"{label}: {exc}"]
    elif macro.type == "FILE" and not FILE_NAME_RE.match(content):
        return [
            f"{label}: library file name {content[:40]!r} must be at most 15 characters, "
            "letters or digits and one dot before the extension (e.g. contrato.pdf)"
        ]
    return []
