"""Request parsing the way the provider accepts it (docs/provider.md §1.3).

JSON objects, urlencoded forms and multipart forms (``CargarFichero`` sends its
file in the part ``Fichero``); parameter names are case-insensitive, so every
name is folded to lower case; arrays arrive as real arrays or as JSON strings;
numbers may be strings.

``Destinatarios`` is accepted in every shape a client may send, and the shape
that arrived is kept (``destinatarios_format``, shown in the request log) so a
client test can assert its wire format:

- ``array`` / ``object``: a native JSON array (or one object) in a JSON body;
- ``json_string``: a JSON-encoded string, in a JSON body (the docs' own example)
  or a form (the docs' rule for forms);
- ``bracket_keys``: a native array in a form, PHP style
  (``Destinatarios[0][Movil]=346…``); ``repeated_keys``: the name repeated
  (``Destinatarios=346…&Destinatarios=347…``);
- ``legacy_string``: the v5 ``346…;347…`` list.

Parameters in the query string are merged with the lowest priority (the strict
mode refuses them); their names are kept in ``query_params``.
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
    method: str = "POST"
    body_format: str = "empty"  # json | form | multipart | empty
    query_params: tuple[str, ...] = ()  # names that came in the query string
    destinatarios_format: str | None = None  # see the module docstring; None when absent
    arrived_s: float | None = None  # when its bytes arrived (sandbox clock), set by the app

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
    raw: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    body_error: str | None = None
    shapes: dict[str, str] = {}
    body = request.get_data(cache=True)
    if content_type == "application/json":
        body_format = "json"
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            document = None
        if isinstance(document, dict):
            raw = {str(k): v for k, v in document.items()}
        else:
            body_error = "The body is not a JSON object"
    elif content_type == "multipart/form-data":
        body_format = "multipart"
        raw = _form_params(list(request.form.items(multi=True)), shapes)
        for key, storage in request.files.items(multi=False):
            files[key.lower()] = UploadedFile(storage.filename or "", storage.read())
    else:
        body_format = "form" if body else "empty"
        text = body.decode("utf-8", errors="replace")
        raw = _form_params(parse_qsl(text, keep_blank_values=True), shapes)
    query_shapes: dict[str, str] = {}
    query = _form_params(list(request.args.items(multi=True)), query_shapes)
    body_names = {key.lower() for key in raw}
    for key, value in query.items():  # query string, lowest priority
        if key.lower() not in body_names:
            raw[key] = value
            if key.lower() in query_shapes:
                shapes[key.lower()] = query_shapes[key.lower()]
    params = {key.lower(): value for key, value in raw.items()}
    if user is None and "correo" in params:  # legacy v5/v6 credentials
        user = str(params.get("correo"))
        password = str(params.get("passwd") or "")
    return ParsedRequest(
        params,
        files,
        raw,
        user,
        password,
        body_error,
        method=request.method.upper(),
        body_format=body_format,
        query_params=tuple(query),
        destinatarios_format=_recipients_shape(params.get("destinatarios"), shapes),
    )


_BRACKETS = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")
_LIST_NAMES = frozenset({"destinatarios"})  # the only array parameter of the v7 functions


def _form_params(pairs: list[tuple[str, str]], shapes: dict[str, str]) -> dict[str, Any]:
    """Form pairs as params: last value wins, except arrays sent as bracket or repeated keys.

    ``shapes`` receives ``bracket_keys``/``repeated_keys`` for the (lower-cased) names
    that arrived that way.
    """
    params: dict[str, Any] = {}
    repeated: dict[str, list[str]] = {}
    for key, value in pairs:
        match = _BRACKETS.match(key)
        if match:
            name = match.group(1)
            container = params.get(name)
            if not isinstance(container, dict):
                container = params[name] = {}
            _put(container, re.findall(r"\[([^\[\]]*)\]", match.group(2)), value)
            shapes[name.lower()] = "bracket_keys"
            continue
        if key.lower() in _LIST_NAMES:
            repeated.setdefault(key, []).append(value)
        params[key] = value
    for key, values in repeated.items():
        if len(values) > 1:
            params[key] = values
            shapes[key.lower()] = "repeated_keys"
    return {key: _listify(value) for key, value in params.items()}


def _put(container: dict[str, Any], path: list[str], value: str) -> None:
    """Store ``value`` at ``path`` (``[]`` appends, like PHP) inside nested dicts."""
    head, rest = path[0], path[1:]
    if head == "":
        head = str(len(container))
    if not rest:
        container[head] = value
        return
    child = container.get(head)
    if not isinstance(child, dict):
        child = container[head] = {}
    _put(child, rest, value)


def _listify(value: Any) -> Any:
    """Nested dicts whose keys are all 0..n-1 become lists (PHP arrays to JSON arrays)."""
    if not isinstance(value, dict):
        return value
    items = {key: _listify(item) for key, item in value.items()}
    if items and all(key.isdigit() for key in items):
        indexes = sorted(items, key=int)
        if [int(key) for key in indexes] == list(range(len(indexes))):
            return [items[key] for key in indexes]
    return items


def _recipients_shape(value: Any, shapes: dict[str, str]) -> str | None:
    """How ``Destinatarios`` arrived (see the module docstring), None when absent."""
    if value is None:
        return None
    if "destinatarios" in shapes:
        return shapes["destinatarios"]
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        return "json_string"
    return "legacy_string"


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
        if isinstance(item, str) and item.strip().startswith("{"):  # a repeated key's JSON
            try:
                item = json.loads(item)
            except ValueError:
                raise ParamError("Destinatarios is not valid JSON") from None
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
