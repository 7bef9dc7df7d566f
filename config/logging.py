"""structlog set-up, configured once by each entry point, and the redaction processor.

JSON lines on stdout when stdout is not a TTY (or ``CERTSMS_LOG_FORMAT=json``), the
console renderer otherwise. Standard-library loggers (dramatiq, urllib3, waitress)
go through the same chain. Before rendering, :class:`Redactor` removes what must
never reach a log:

- the API token (by value, wherever it appears) and any ``Authorization`` header;
- base64 payloads and ``(BASE64:p:…)`` macros, replaced by their length and sha256;
- phone numbers, masked to their last 3 digits unless ``CERTSMS_LOG_PII=1``.

dramatiq's own lines format whole messages into their text (``Failed to process
message certsms.send(v=1, job_id=…, payload={… the SMS text, a tax id …})``): the
:class:`DramatiqArgsFilter` on the handler replaces every message in a dramatiq
record's arguments by its actor, message id and job id, and any dict or list argument
(``Received args=%r kwargs=%r``) by its size, before the line is formatted. The
payload never reaches a log, whatever the level.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from certsms.config.settings import Settings

REDACTED = "[redacted]"
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "token",
        "api_token",
        "mensatek_api_token",
        "password",
        "passwd",
        "callback_password",
        "intake_token",
        "secret",
    }
)
_PHONE_KEYS = frozenset(
    {
        "phone",
        "phones",
        "movil",
        "telefono",
        "destinatarios",
        "recipients",
        "telcontacto",
        "contact_phone",
        "remitente_phone",
        "msisdn",
    }
)
_BASE64_KEYS = frozenset({"contenido", "content", "base64", "payload_base64"})
_MACRO_RE = re.compile(r"\((BASE64):(\d):([A-Za-z0-9+/=\s]+)\)", re.IGNORECASE)
_BASE64_RUN_RE = re.compile(r"[A-Za-z0-9+/]{120,}={0,2}")
_AUTH_HEADER_RE = re.compile(
    r"(Authorization['\"]?\s*[:=]\s*['\"]?)(Basic|Bearer)\s+[^\s'\",}]+", re.I
)
_PHONE_RE = re.compile(r"(?<![\w.])\+?(?:\d[ -]?){8,14}\d(?!\w|\.\d)")


def _digest(data: str) -> str:
    compact = "".join(data.split())
    return (
        f"[base64 {len(compact)} chars sha256={hashlib.sha256(compact.encode()).hexdigest()[:16]}]"
    )


def _is_timestamp_key(key: str) -> bool:
    return key.endswith(("_ts", "_at", "_ms", "timestamp")) or key in ("ts", "time")


def mask_phone(text: str) -> str:
    """``34600123456`` → ``********456`` (only the last 3 digits stay)."""
    digits = [c for c in text if c.isdigit()]
    if len(digits) <= 3:
        return text
    return "*" * (len(digits) - 3) + "".join(digits[-3:])


class Redactor:
    """A structlog processor that scrubs secrets, base64 payloads and phone numbers."""

    def __init__(self, *, secrets: Iterable[str] = (), mask_phones: bool = True) -> None:
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)
        self._mask_phones = mask_phones

    def __call__(
        self, logger: object, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = self._value(key, event_dict[key])
        return event_dict

    def _value(self, key: str, value: Any) -> Any:
        lowered = key.lower()
        if lowered in _SECRET_KEYS:
            return REDACTED
        if lowered in _BASE64_KEYS and isinstance(value, str | bytes):
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            return _digest(text)
        if isinstance(value, dict):
            # keys are data too (a phone number can key a mapping of recipients)
            return {self.scrub_text(str(k)): self._value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            items = [self._value(key, v) for v in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, str):
            if _is_timestamp_key(lowered):
                return self._scrub_secrets(value)  # epoch milliseconds are not phones
            if lowered.endswith("_id") or lowered.startswith("id") or lowered == "msgid":
                return self._scrub_secrets(value)  # identifiers are not phone numbers
            if self._mask_phones and lowered in _PHONE_KEYS:
                return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), value) or value
            return self.scrub_text(value)
        if self._mask_phones and lowered in _PHONE_KEYS and isinstance(value, int):
            return mask_phone(str(value))
        return value

    def _scrub_secrets(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub_text(self, text: str) -> str:
        """Scrub a free-text value: secrets, Authorization headers, base64, phones."""
        text = self._scrub_secrets(text)
        text = _AUTH_HEADER_RE.sub(lambda m: m.group(1) + REDACTED, text)
        text = _MACRO_RE.sub(lambda m: f"({m.group(1)}:{m.group(2)}:{_digest(m.group(3))})", text)
        text = _BASE64_RUN_RE.sub(lambda m: _digest(m.group(0)), text)
        if self._mask_phones:
            text = _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)
        return text


def _safe_arg(value: Any) -> Any:
    """A dramatiq log argument without the message's contents."""
    if hasattr(value, "message_id") and hasattr(value, "actor_name"):
        kwargs = getattr(value, "kwargs", None)
        job_id = kwargs.get("job_id") if isinstance(kwargs, dict) else None
        suffix = f", job_id={job_id}" if isinstance(job_id, str) else ""
        return f"{value.actor_name}(message_id={value.message_id}{suffix})"
    if isinstance(value, dict | list | tuple | set):
        return f"[{type(value).__name__} of {len(value)} redacted]"
    return value


class DramatiqArgsFilter(logging.Filter):
    """Keeps message payloads out of dramatiq's log lines (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("dramatiq") and record.args:
            if isinstance(record.args, dict):
                record.args = {k: _safe_arg(v) for k, v in record.args.items()}
            else:
                record.args = tuple(_safe_arg(a) for a in record.args)
        return True


def _secrets_of(settings: Settings) -> list[str]:
    values = [
        settings.mensatek_api_token,
        settings.callback_password,
        settings.intake_token,
        settings.console_users,
    ]
    return [v.get_secret_value() for v in values if v is not None]


def drop_none(
    logger: object, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Leave out fields whose value is None: a field on a line always has a value."""
    for key in [k for k, v in event_dict.items() if v is None]:
        del event_dict[key]
    return event_dict


class _CurrentStream(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` (or ``sys.stderr``) is at each line,
    not the object it was when logging was configured: a replaced and closed stream
    (pytest's capture, a daemon's redirect) never makes a line fail."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    @property
    def stream(self) -> Any:
        return getattr(sys, self._name)

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.__init__ sets it; the stream is looked up at each line


def build_processors(settings: Settings) -> list[Any]:
    """The shared processor chain (everything but the renderer)."""
    return [
        structlog.contextvars.merge_contextvars,
        drop_none,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        Redactor(secrets=_secrets_of(settings), mask_phones=not settings.log_pii),
    ]


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Configure structlog and the stdlib root logger once for this process."""
    stream = stream or sys.stdout
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not getattr(stream, "isatty", lambda: False)()
    )
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=getattr(stream, "isatty", lambda: False)())
    )
    shared = build_processors(settings)
    structlog.configure(
        # filter_by_level first: a debug line below the level costs one comparison,
        # not the whole chain (redaction included) — it sits on the send hot path.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler: logging.Handler
    if stream is sys.stdout or stream is sys.stderr:
        handler = _CurrentStream("stdout" if stream is sys.stdout else "stderr")
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(DramatiqArgsFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for noisy in ("urllib3", "waitress"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
