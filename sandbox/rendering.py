"""Answers rendered the way the provider renders them (docs/provider.md §9).

``Resp=JSON``: a list holding one object, every value a string; ``Informe`` and
``Ficheros`` as a single-quoted pseudo-JSON string (``nested_format="json"``
gives real arrays). ``Resp=TXT``: ``Key:Value;`` lines. ``Resp=XML``:
``<result>`` with ``itemN`` children for arrays. No ``Resp`` (or an unknown one):
the legacy text format, which omits the fields added in v7.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from certsms.sandbox.config import SandboxConfig

Row = dict[str, Any]

# Send-answer fields only present when Resp is given (docs/provider.md §9.12).
V7_ONLY_FIELDS = frozenset({"Mensajes", "Destinatarios", "NoEnviados", "CreditosUsados"})


@dataclass
class Answer:
    """What a function answers, before rendering: ordered fields or a binary body."""

    fields: dict[str, Any] = field(default_factory=dict)
    http_status: int = 200
    body: bytes | None = None
    content_type: str | None = None
    legacy_omit: frozenset[str] = frozenset()
    outcome: str = "ok"
    reason: str | None = None  # why it was refused (strict mode), for the request log

    @property
    def res(self) -> int | None:
        """The numeric ``Res`` (or ``Resp``) of the answer, None for a binary body."""
        value = self.fields.get("Res")
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            return None


def format_number(value: Any) -> str:
    """A number the way the provider prints it: ``12000``, ``11991.5``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _single_quoted(rows: list[Row]) -> str:
    """``[{'Fecha':'…','Tiempo':3,…}]``: strings single-quoted (``'`` escaped as ``\\'``)."""
    parts = []
    for row in rows:
        items = []
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rendered = format_number(value)
            else:
                text = str(value).replace("\\", "\\\\").replace("'", "\\'")
                rendered = f"'{text}'"
            items.append(f"'{key}':{rendered}")
        parts.append("{" + ",".join(items) + "}")
    return "[" + ",".join(parts) + "]"


def render_json(answer: Answer, config: SandboxConfig) -> bytes:
    """The v7 JSON body: ``[{...}]`` with string values."""
    out: dict[str, Any] = {}
    for key, value in answer.fields.items():
        if isinstance(value, list):
            if config.nested_format == "json":
                out[key] = value
            else:
                text = _single_quoted(value)
                if key == "Ficheros" and config.code_wrap_files:
                    text = f"<code>{text}</code>"
                out[key] = text
        else:
            out[key] = format_number(value)
    return json.dumps([out], ensure_ascii=False).encode("utf-8")


def render_txt(answer: Answer, *, omit: frozenset[str] = frozenset()) -> bytes:
    """``Key:Value;`` per line; arrays as ``Key:`` / ``[`` / ``0: [`` … ``]`` / ``]``."""
    lines: list[str] = []
    for key, value in answer.fields.items():
        if key in omit:
            continue
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.append("[")
            for index, row in enumerate(value):
                lines.append(f"{index}: [")
                lines.extend(f"{k}:{format_number(v)};" for k, v in row.items())
                lines.append("]")
            lines.append("]")
        else:
            lines.append(f"{key}:{format_number(value)};")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_xml(answer: Answer) -> bytes:
    """``<?xml?><result><Res>1</Res>…<Informe><item0>…</item0></Informe></result>``."""
    parts = ['<?xml version="1.0"?>', "<result>"]
    for key, value in answer.fields.items():
        if isinstance(value, list):
            parts.append(f"<{key}>")
            for index, row in enumerate(value):
                inner = "".join(f"<{k}>{escape(format_number(v))}</{k}>" for k, v in row.items())
                parts.append(f"<item{index}>{inner}</item{index}>")
            parts.append(f"</{key}>")
        else:
            parts.append(f"<{key}>{escape(format_number(value))}</{key}>")
    parts.append("</result>")
    return "".join(parts).encode("utf-8")


def render(answer: Answer, resp: str | None, config: SandboxConfig) -> tuple[bytes, str]:
    """The body and Content-Type for ``answer`` in the format ``resp`` asks for."""
    if answer.body is not None:
        return answer.body, answer.content_type or "application/octet-stream"
    mode = (resp or "").strip().upper()
    if mode == "JSON":
        return render_json(answer, config), "application/json; charset=utf-8"
    if mode == "TXT":
        return render_txt(answer), "text/plain; charset=utf-8"
    if mode == "XML":
        return render_xml(answer), "text/xml; charset=utf-8"
    return render_txt(answer, omit=answer.legacy_omit), "text/plain; charset=utf-8"
