"""The provider's non-JSON answer formats (docs/provider.md §9.10–9.11): TXT and XML.

TXT is one ``Key:Value;`` per line (several pairs on a line are split), arrays as
``Key:`` / ``[`` / ``0: [`` … ``]`` / ``]``. XML is ``<result>`` with one child per
key and arrays as ``<item0>``, ``<item1>``… children. XML with a DOCTYPE is refused
(no entity expansion). Both raise ``ValueError`` when the text is not that format.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

_TXT_SPLIT = re.compile(r";\s*(?=[A-Za-z_]\w*\s*:)")
_ITEM_TAG = re.compile(r"^item\d+$", re.IGNORECASE)


def parse_txt(text: str) -> dict[str, Any]:
    """The TXT format: ``Key:Value;`` lines, arrays as ``Key:`` / ``[`` / ``0: [`` … ``]``."""
    root: dict[str, Any] = {}
    stack: list[Any] = [root]
    pending: str | None = None
    segments = (
        part for raw in text.splitlines() for part in _TXT_SPLIT.split(raw)
    )  # "Res:1;Msgid:5;" on one line is two pairs
    for segment in segments:
        line = segment.strip().rstrip(";").strip()
        if not line:
            continue
        top = stack[-1]
        if line in ("[", "]"):
            if line == "]":
                if len(stack) == 1:
                    raise ValueError("unbalanced ]")
                stack.pop()
            elif isinstance(top, dict) and pending is not None:
                top[pending] = []
                stack.append(top[pending])
            else:
                raise ValueError("unexpected [")
        elif re.fullmatch(r"\d+\s*:\s*\[", line) and isinstance(top, list):
            top.append({})
            stack.append(top[-1])
        elif ":" in line and isinstance(top, dict):
            key, _, value = line.partition(":")
            pending = key.strip()
            value = value.strip()
            if value == "[":
                top[pending] = []
                stack.append(top[pending])
            else:
                top[pending] = value
        else:
            raise ValueError(f"not a TXT answer line: {line[:40]!r}")
    return root


def parse_xml(text: str) -> Any:
    if "<!doctype" in text.lower() or "<!entity" in text.lower():
        raise ValueError("XML with a DOCTYPE is refused")
    return _xml_value(ElementTree.fromstring(text))


def _xml_value(element: ElementTree.Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    if all(_ITEM_TAG.match(child.tag) for child in children):
        return [_xml_value(child) for child in children]
    return {child.tag: _xml_value(child) for child in children}
