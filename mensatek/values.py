"""Yes/no values as the provider and our callers spell them: one set of strings, one reader.

Used in both directions: provider answers (``Sobrescrito``), callbacks (``EsCert``),
request payloads (``Report``, ``Unicode``…) and job options (``Autoborrado``).
Comparison ignores case and surrounding spaces.
"""

from __future__ import annotations

TRUE_STRINGS = frozenset({"1", "true", "yes", "y", "si", "sí", "s", "on"})
#: ``""`` is false: PHP (the provider) prints ``false`` as an empty string.
FALSE_STRINGS = frozenset({"0", "false", "no", "n", "off", ""})


def parse_bool(value: object) -> bool | None:
    """``value`` as a bool, or None when it is not a yes/no value.

    Booleans are themselves; the numbers 0 and 1 are false and true (other numbers
    are not flags); strings are looked up in :data:`TRUE_STRINGS` and
    :data:`FALSE_STRINGS`. None and anything else give None.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUE_STRINGS:
            return True
        if lowered in FALSE_STRINGS:
            return False
    return None
