"""The request log behind ``GET /_admin/requests``, with secrets and base64 removed.

Credentials never reach the log (the Authorization header is not read into it,
``Passwd``/token-like params are dropped), and base64 payloads (``Contenido``,
``(BASE64:…)`` macros, long base64-looking values) become their length and sha256.

Each record: ``seq``, ``time``, ``epoch_s`` (when the request arrived: its last bytes
read), ``handled_after_ms`` (how long it then waited for a thread and its parse),
``function``, ``params``,
``http_status``, ``res``, ``user``, ``outcome``, ``answer``, and for wire-format
assertions ``method``, ``body_format`` (``json``/``form``/``multipart``/``empty``),
``query_params`` (names that came in the query string), ``destinatarios_format``
(how ``Destinatarios`` arrived: ``array``, ``object``, ``json_string``,
``bracket_keys``, ``repeated_keys``, ``legacy_string``; None when absent, see
:mod:`sandbox.parsing`) and ``reason`` (why strict mode refused it, else None).
"""

from __future__ import annotations

import collections
import hashlib
import re
import threading
from typing import Any

from certsms.sandbox.clock import to_provider
from certsms.sandbox.config import SandboxConfig

SECRET_PARAMS = frozenset({"passwd", "password", "token", "apitoken", "authorization"})
BASE64_PARAMS = frozenset({"contenido", "base64"})
_MACRO = re.compile(r"\((BASE64):(\d+:)?([A-Za-z0-9+/=\s]+)\)", re.IGNORECASE)
_LONG_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]{200,}$")


def digest(text: str | bytes) -> str:
    """``<N chars sha256=…>`` stand-in for a payload."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return f"<{len(data)} bytes sha256={hashlib.sha256(data).hexdigest()[:16]}>"


def redact_value(name: str, value: Any) -> Any:
    """A param value as it may appear in the log."""
    if isinstance(value, dict):
        return {k: redact_value(str(k).lower(), v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(name, v) for v in value]
    if not isinstance(value, str):
        return value
    if name in BASE64_PARAMS or _LONG_BASE64.match(value):
        return digest(value)
    return _MACRO.sub(lambda m: f"({m.group(1)}:{m.group(2) or ''}{digest(m.group(3))})", value)


def redact_params(params: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """Params without secrets and base64; any occurrence of ``token`` is masked too."""
    clean: dict[str, Any] = {}
    for name, value in params.items():
        if name.lower() in SECRET_PARAMS:
            continue
        redacted = redact_value(name.lower(), value)
        if token and isinstance(redacted, str) and token in redacted:
            redacted = redacted.replace(token, "***")
        clean[name] = redacted
    return clean


class RequestLog:
    """A bounded, thread-safe list of request records."""

    def __init__(self, config: SandboxConfig) -> None:
        self._entries: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=config.log_max_entries
        )
        self._seq = 0
        self._lock = threading.Lock()

    def add(
        self,
        *,
        time_s: float,
        function: str,
        params: dict[str, Any],
        http_status: int,
        res: int | None,
        user: str | None,
        outcome: str,
        answer: dict[str, Any] | None = None,
        wire: dict[str, Any] | None = None,
        reason: str | None = None,
        handled_after_s: float = 0.0,
    ) -> None:
        """Append one record (``params`` must already be redacted).

        ``wire`` holds ``method``, ``body_format``, ``query_params`` and
        ``destinatarios_format``; ``reason`` is a strict-mode refusal's reason.
        """
        wire = wire or {}
        with self._lock:
            self._seq += 1
            self._entries.append(
                {
                    "seq": self._seq,
                    "time": to_provider(time_s),
                    "epoch_s": round(time_s, 3),
                    "handled_after_ms": round(handled_after_s * 1000, 1),
                    "function": function,
                    "params": params,
                    "http_status": http_status,
                    "res": res,
                    "user": user,
                    "outcome": outcome,
                    "answer": answer,
                    "method": wire.get("method", "POST"),
                    "body_format": wire.get("body_format"),
                    "query_params": list(wire.get("query_params", ())),
                    "destinatarios_format": wire.get("destinatarios_format"),
                    "reason": reason,
                }
            )

    def entries(self, function: str | None = None) -> list[dict[str, Any]]:
        """All records, or those of one function (case-insensitive)."""
        with self._lock:
            items = list(self._entries)
        if function:
            wanted = function.lower()
            items = [e for e in items if e["function"].lower() == wanted]
        return items

    def clear(self) -> None:
        """Forget every record and restart the sequence."""
        with self._lock:
            self._entries.clear()
            self._seq = 0
