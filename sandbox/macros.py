"""Macros in ``Mensaje`` (docs, Appendix 1) and the attachments they register.

``(TYPE:PROTOCOL:CONTENT)`` with TYPE ``FILE`` (a library file), ``BASE64`` (an
inline PDF), ``IMG`` (an image of the account's image library) or ``LINK`` (a
shortened external link), PROTOCOL 0/1/2; the v5 two-part form
``(TYPE:CONTENT)`` and the v5 types (``QRCODE``, ``SMSLAND``, …) are recognised
too. Each macro becomes a short link in the SMS (:data:`SHORT_LINK`).

"Links are sent following the guidelines below and specifying the Links=1
parameter": with ``links_need_flag`` a send without ``Links=1`` keeps its macros
as plain text (``macros_as_text``): they are counted as the characters they
are, nothing is attached, no library file is looked up, a ``BASE64`` PDF is not
stored, and the message gets no attachment events. With the flag off (the
default for now) macros are interpreted whatever ``Links`` says.

Attachments (the documents a recipient can open): ``FILE`` and ``BASE64``
macros. A ``FILE`` is copied at send time (the provider keeps "secure storage"
of it, so deleting the library file later changes nothing); a ``BASE64`` PDF is
put in the library as ``base64_<idMensaje>_<n>.pdf``, outside the quota, and
removed once every sent recipient of its message is final (the docs: "the
system automatically deletes them from the library once the certified PDF is
generated").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from certsms.sandbox.requestlog import digest

SHORT_LINK = "https://mtk.es/c/XXXXXXX"  # what a macro becomes in the SMS text
MACRO_TYPES = ("FILE", "BASE64", "IMG", "LINK", "QRCODE", "SMSLAND", "DATAMATRIX", "PDF417")
_MACRO = re.compile(
    r"\((" + "|".join(MACRO_TYPES) + r")(?::(?:([012]):)?([^()]*))?\)", re.IGNORECASE
)
DOCUMENT_TYPES = frozenset({"FILE", "BASE64"})


@dataclass(frozen=True)
class Macro:
    """One macro found in a message text."""

    kind: str  # upper case: FILE, BASE64, IMG, LINK, ...
    protocol: int | None
    content: str

    def public(self) -> dict[str, Any]:
        """JSON-ready, a BASE64 payload as its length and sha256 (never the payload)."""
        content = digest(self.content) if self.kind == "BASE64" else self.content
        return {"type": self.kind, "protocol": self.protocol, "content": content}


@dataclass(frozen=True)
class Attachment:
    """A document attached to a message: its name, where it came from, its bytes."""

    kind: str  # FILE or BASE64
    name: str
    content: bytes

    @property
    def sha256(self) -> str:
        """The hex sha256 of the document."""
        return hashlib.sha256(self.content).hexdigest()

    def public(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "type": self.kind,
            "name": self.name,
            "size_bytes": len(self.content),
            "sha256": self.sha256,
        }


def find_macros(text: str) -> list[Macro]:
    """Every macro of ``text``, in order."""
    return [
        Macro(match.group(1).upper(), _protocol(match.group(2)), (match.group(3) or "").strip())
        for match in _MACRO.finditer(text)
    ]


def _protocol(raw: str | None) -> int | None:
    return int(raw) if raw is not None else None


def as_sms_text(text: str, *, interpreted: bool) -> str:
    """The text the SMS carries: macros replaced by a short link when interpreted."""
    return _MACRO.sub(SHORT_LINK, text) if interpreted else text


def inline_pdf(content: str) -> bytes:
    """The bytes of a ``BASE64`` macro (leniently: whitespace, padding; raw text if not base64)."""
    cleaned = re.sub(r"\s+", "", content)
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return content.encode("utf-8")


def inline_name(message_id: int, index: int) -> str:
    """The library name of the ``index``-th (1-based) inline PDF of a message."""
    return f"base64_{message_id}_{index}.pdf"
