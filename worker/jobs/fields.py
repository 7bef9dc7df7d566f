"""How a job record's fields are written to and read from its Redis hash.

Every value is stored as a string (:func:`encode`); :func:`decode_fields` turns a
record back into plain JSON-able values (integers, JSON documents, floats).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

_INT_FIELDS = frozenset({"attempts", "res", "http_status"})
_JSON_FIELDS = frozenset({"error", "result", "payload"})


def utc_now_iso(now: float | None = None) -> str:
    """An ISO-8601 UTC timestamp with milliseconds."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(value: object) -> str:
    """A field value as stored: "" for None, "1"/"0" for booleans, JSON for documents."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def decode_fields(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """A record's hash as plain values, without the producer's ``payload``."""
    record: dict[str, Any] = {}
    for k, v in raw.items():
        name, text = k.decode(), v.decode()
        if name == "payload":
            continue
        if name in _INT_FIELDS:
            record[name] = int(text) if text.lstrip("-").isdigit() else text
        elif name in _JSON_FIELDS:
            record[name] = json.loads(text)
        elif name == "credits_used":
            record[name] = float(text)
        else:
            record[name] = text
    return record
