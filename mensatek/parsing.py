"""The one parser of provider answers, for every quirk in docs/provider.md §9.

:func:`parse_answer` turns a body (bytes or text) into an :class:`Answer`: a
read-only mapping with case-insensitive keys (``IDMENSAJE``/``idMensaje``,
``CRED``/``Cred``) where ``Resp`` is an alias of ``Res``. It accepts list-wrapped
or bare JSON objects, single-quoted pseudo-JSON, ``<code>`` wrappers, a BOM and
junk around the JSON, the TXT (``Key:Value;``) and XML (``<result>``) formats and
a bare number (``-1``). Nested arrays arrive as real arrays, JSON strings or
single-quoted strings; all become tuples of :class:`Answer`. Scalars are kept as
sent (strings or numbers); read them with :func:`to_int` and :func:`to_float`, which
accept both and Spanish decimals (``12.345,67``), and yes/no values with
:func:`mensatek.values.parse_bool`.

A body that is none of these (HTML error pages, empty bodies, garbage) raises
:class:`~mensatek.errors.ProviderUnavailable`: the provider is not answering
in its own language, which counts as unhealthy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from xml.etree import ElementTree

from certsms.mensatek._formats import parse_txt, parse_xml
from certsms.mensatek._pseudojson import loads as loads_pseudojson
from certsms.mensatek.errors import ProviderUnavailable

_CODE_WRAPPER = re.compile(r"^\s*<code>(.*)</code>\s*$", re.DOTALL | re.IGNORECASE)
_TXT_LINE = re.compile(r"^[A-Za-z_]\w*\s*:")


class Answer(Mapping[str, Any]):
    """A provider answer: a read-only mapping, case-insensitive keys; ``Resp`` aliases ``Res``."""

    __slots__ = ("_items",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        items: dict[str, tuple[str, Any]] = {}
        for key, value in (data or {}).items():
            name = str(key).strip()
            items[name.lower()] = (name, _normalise(value))
        self._items = items

    def _lookup(self, key: str) -> tuple[str, Any]:
        lowered = key.lower()
        if lowered == "res" and "res" not in self._items and "resp" in self._items:
            return self._items["resp"]
        return self._items[lowered]

    def __getitem__(self, key: str) -> Any:
        return self._lookup(key)[1]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self._lookup(key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Answer({self.to_dict()!r})"

    def first(self, *names: str) -> Any:
        """The value of the first of ``names`` present (e.g. ``"idMensaje", "Msgid"``), or None."""
        for name in names:
            if name in self:
                return self[name]
        return None

    def get_int(self, *names: str) -> int | None:
        """The first present value of ``names`` as an int (None if absent or not a number)."""
        return to_int(self.first(*names))

    def get_float(self, *names: str) -> float | None:
        """The first present value of ``names`` as a float (Spanish decimals accepted)."""
        return to_float(self.first(*names))

    def get_text(self, *names: str) -> str | None:
        """The first present value of ``names`` as a stripped string, or None."""
        value = self.first(*names)
        if value is None or isinstance(value, (tuple, Answer)):
            return None
        return str(value).strip()

    def records(self, *names: str) -> tuple[Answer, ...]:
        """The first present of ``names`` as a tuple of records (empty if absent or a count)."""
        value = self.first(*names)
        if isinstance(value, Answer):
            return (value,)
        if isinstance(value, tuple):
            return tuple(item for item in value if isinstance(item, Answer))
        return ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data with the provider's key spelling (for ``raw`` fields and logs)."""
        return {name: _plain(value) for name, value in self._items.values()}


def parse_answer(body: bytes | str) -> Answer:
    """Parse one provider answer; raise ``ProviderUnavailable`` when it is not one.

    The body is sniffed, never judged by its Content-Type (PHP servers often label
    JSON ``text/html``).
    """
    text = _decode(body)
    if _looks_like_html(text):
        raise ProviderUnavailable("the provider answered an HTML page", provider_text=text[:200])
    try:
        value = _parse_text(text)
    except (ValueError, ElementTree.ParseError):
        value = None
    if isinstance(value, list):
        value = value[0] if value and isinstance(value[0], Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"Res": value}  # a bare "-1" (seen handled by third-party clients)
    if not isinstance(value, Mapping) or not value:
        raise ProviderUnavailable("unparseable provider answer", provider_text=text[:200] or None)
    return Answer(value)


def to_int(value: Any) -> int | None:
    """``value`` (int, integral float, or numeric string) as an int; None if it is not one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = to_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def to_float(value: Any) -> float | None:
    """``value`` as a float (``12345.67``, ``12.345,67``, ``67,17``); None if not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(" ", "").replace("\u00a0", "")
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    elif text.count(".") > 1:
        text = text.replace(".", "")
    try:
        return float(text)
    except ValueError:
        return None


def _decode(body: bytes | str) -> str:
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = body.decode("latin-1")
    else:
        text = body
    return text.lstrip("\ufeff").strip()


def _looks_like_html(text: str) -> bool:
    head = text[:200].lower()
    return head.startswith(("<!doctype html", "<html")) or "<html" in head or "<body" in head


def _unwrap(text: str) -> str:
    match = _CODE_WRAPPER.match(text)
    return match.group(1).strip() if match else text


def _parse_text(text: str) -> Any:
    text = _unwrap(text)
    if text[:1] in ("[", "{"):
        return _parse_structured(text)
    if text[:1] == "<":
        return parse_xml(text)
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if _TXT_LINE.match(text):
        return parse_txt(text)
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    return _parse_structured(text[start:]) if start >= 0 else None


def _parse_structured(text: str) -> Any:
    try:
        return loads_pseudojson(text)
    except ValueError:
        # junk around the JSON (docs/provider.md §9.9): keep from the first bracket to the last
        end = max(text.rfind("]"), text.rfind("}"))
        return loads_pseudojson(text[: end + 1])


def _normalise(value: Any) -> Any:
    if isinstance(value, Answer):
        return value
    if isinstance(value, Mapping):
        return Answer(value)
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(item) for item in value)
    if isinstance(value, str):
        inner = _unwrap(value)
        if inner[:1] in ("[", "{") and inner[-1:] in ("]", "}"):
            try:
                parsed = loads_pseudojson(inner)
            except ValueError:
                return value
            if isinstance(parsed, (list, dict)):
                return _normalise(parsed)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Answer):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
