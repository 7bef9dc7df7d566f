"""Request parsing the way the provider accepts it (reference §1.3).

JSON objects, urlencoded forms and multipart forms (``CargarFichero`` sends its
file in the part ``Fichero``); parameter names are case-insensitive, so every
name is folded to lower case; arrays arrive as real arrays or as JSON strings;
numbers may be strings.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request


class ParamError(ValueError):
    """Raised when a parameter is malformed; the message becomes the ``Error`` text."""


@dataclass
class UploadedFile:
    """A multipart file part."""

    filename: str
    content: bytes


@dataclass
class ParsedRequest:
    """A provider request: lower-cased params, optional uploaded files, credentials."""

    params: dict[str, Any]
    files: dict[str, UploadedFile] = field(default_factory=dict)
    raw_params: dict[str, Any] = field(default_factory=dict)  # names as sent, for the log
    user: str | None = None
    password: str | None = None
    body_error: str | None = None

    def get(self, name: str) -> Any:
        """The raw value of a parameter (any case), or None."""
        return self.params.get(name.lower())

    def text(self, name: str) -> str | None:
        """A parameter as stripped text; None when absent or blank."""
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        text = str(value).strip()
        return text or None

    def integer(self, name: str) -> int | None:
        """A parameter as an int (numbers may be strings); None when absent."""
        value = self.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ParamError(f"{_display(name)} must be an integer") from None


def _display(name: str) -> str:
    return name[:1].upper() + name[1:].lower()


def parse_request(request: Request) -> ParsedRequest:
    """Read the credentials and the body of a provider request."""
    user, password = _basic_auth(request)
    content_type = (request.mimetype or "").lower()
    params: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    body_error: str | None = None
    if content_type == "application/json":
        try:
            document = json.loads(request.get_data(cache=True) or b"{}")
        except ValueError:
            document = None
        if isinstance(document, dict):
            raw = {str(k): v for k, v in document.items()}
        else:
            body_error = "The body is not a JSON object"
    elif content_type == "multipart/form-data":
        raw = dict(request.form.items(multi=False))
        for key, storage in request.files.items(multi=False):
            files[key.lower()] = UploadedFile(storage.filename or "", storage.read())
    else:
        text = request.get_data(cache=True).decode("utf-8", errors="replace")
        raw = dict(parse_qsl(text, keep_blank_values=True))
    for key, value in request.args.items(multi=False):  # query string, lowest priority
        raw.setdefault(key, value)
    for key, value in raw.items():
        params[key.lower()] = value
    if user is None and "correo" in params:  # legacy v5/v6 credentials
        user = str(params.get("correo"))
        password = str(params.get("passwd") or "")
    return ParsedRequest(params, files, raw, user, password, body_error)


def _basic_auth(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", None
    user, _, password = decoded.partition(":")
    return user, password


def parse_recipients(value: Any) -> list[dict[str, str]]:
    """``Destinatarios`` as a list of dicts with lower-cased keys.

    Accepts a real array, a JSON string of one, a ``"346…;347…"`` legacy string,
    and plain numbers inside.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):
            try:
                value = json.loads(text)
            except ValueError:
                raise ParamError("Destinatarios is not valid JSON") from None
        else:
            value = [part for part in re.split(r"[;,]", text) if part.strip()]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ParamError("Destinatarios must be an array")
    recipients: list[dict[str, str]] = []
    for item in value:
        if isinstance(item, dict):
            recipients.append({str(k).lower(): str(v) for k, v in item.items()})
        elif isinstance(item, (str, int)) and not isinstance(item, bool):
            recipients.append({"movil": str(item).strip()})
        else:
            raise ParamError("Destinatarios entries must be objects with Movil")
    return recipients


_PHONE = re.compile(r"^\d{9,15}$")


def normalize_phone(raw: str) -> str | None:
    """Digits of an international mobile (``+``, ``00``, spaces stripped), or None if bad."""
    text = re.sub(r"[\s\-.()]", "", raw or "")
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    if not _PHONE.match(text):
        return None
    if len(text) == 9:  # a bare Spanish number
        text = "34" + text
    return text


def decode_base64(text: str) -> bytes:
    """Decode base64 leniently (whitespace, missing padding); ParamError if impossible."""
    cleaned = re.sub(r"\s+", "", text)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ParamError("Contenido is not valid base64") from None
