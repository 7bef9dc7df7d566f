"""GSM 03.38 / UCS-2 text analysis: encoding, length in units, segments, transliteration.

- GSM-7: basic-table characters count 1, extension-table characters (``^ { } \\ [ ~ ] | €``
  and form feed) count 2 (ESC + code). One SMS holds 160 units; a concatenated SMS
  holds 153 units per segment, and an ESC pair is never split across segments.
- UCS-2: counted in UTF-16 code units (an emoji counts 2). One SMS holds 70 units;
  concatenated, 67 per segment, and a surrogate pair is never split.
- Transliteration (what the provider does with ``Unicode=0``): a letter with
  diacritics that is not in GSM becomes its base letter when that base is in GSM
  (á→a, í→i, ó→o, ú→u, Á→A, â→a, ï→i …; é, è, ü, ñ, à … stay, they are GSM). The
  provider documents only the accents; ``ç`` → ``Ç`` is our decision (GSM has only
  the capital). Everything else outside GSM (emoji, typographic quotes and dashes,
  ``…``, ``ª``/``º``, Cyrillic …) cannot be transliterated and forces Unicode.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Literal

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE_UNITS = 160
GSM_MULTI_UNITS = 153
UCS2_SINGLE_UNITS = 70
UCS2_MULTI_UNITS = 67

_EXTRA_TRANSLITERATIONS = {"ç": "Ç"}

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class TextAnalysis:
    """The cost of a message text.

    ``encoding``: "GSM-7", or "UCS-2" when ``unicode`` was asked or ``non_gsm`` is
    not empty. ``characters``: length in units of that encoding (GSM-7 after
    transliteration; UCS-2 in UTF-16 code units). ``segments``: SMS parts (0 for
    an empty text). ``transliterated``: ``{char: replacement}`` for the characters
    the provider would change with ``Unicode=0``. ``non_gsm``: characters neither
    in GSM nor transliterable, in order of first appearance.
    """

    encoding: Encoding
    characters: int
    segments: int
    transliterated: dict[str, str] = field(default_factory=dict)
    non_gsm: tuple[str, ...] = ()


def gsm_units(char: str) -> int | None:
    """Return 1 or 2 for a GSM character (basic or extension), None otherwise."""
    if char in GSM_BASIC:
        return 1
    if char in GSM_EXTENSION:
        return 2
    return None


def transliteration_of(char: str) -> str | None:
    """Return the GSM replacement the provider would use for ``char``, or None."""
    if gsm_units(char) is not None:
        return None
    if char in _EXTRA_TRANSLITERATIONS:
        return _EXTRA_TRANSLITERATIONS[char]
    decomposed = unicodedata.normalize("NFD", char)
    base = decomposed[0]
    marks = decomposed[1:]
    if (
        len(decomposed) > 1
        and base in GSM_BASIC
        and base.isalpha()
        and all(unicodedata.combining(mark) for mark in marks)
    ):
        return base
    return None


def transliterate(text: str) -> str:
    """Replace every transliterable character by its GSM replacement; leave the rest."""
    return "".join(transliteration_of(char) or char for char in text)


def _pack(units: list[int], single: int, multi: int) -> int:
    """Count segments: ``units`` are indivisible widths (an ESC pair, a surrogate pair)."""
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for width in units:
        if used + width > multi:
            segments += 1
            used = 0
        used += width
    return segments


def analyze_text(text: str, *, unicode: bool = False) -> TextAnalysis:
    """Analyse ``text`` as the provider would send it with ``Unicode`` = ``unicode``."""
    transliterated: dict[str, str] = {}
    non_gsm: list[str] = []
    gsm_widths: list[int] = []
    for char in text:
        width = gsm_units(char)
        if width is None:
            replacement = transliteration_of(char)
            if replacement is None:
                if char not in non_gsm:
                    non_gsm.append(char)
                continue
            transliterated[char] = replacement
            width = sum(gsm_units(c) or 0 for c in replacement)
        gsm_widths.append(width)
    if unicode or non_gsm:
        widths = [2 if ord(char) > 0xFFFF else 1 for char in text]
        return TextAnalysis(
            encoding="UCS-2",
            characters=sum(widths),
            segments=_pack(widths, UCS2_SINGLE_UNITS, UCS2_MULTI_UNITS),
            transliterated=transliterated,
            non_gsm=tuple(non_gsm),
        )
    return TextAnalysis(
        encoding="GSM-7",
        characters=sum(gsm_widths),
        segments=_pack(gsm_widths, GSM_SINGLE_UNITS, GSM_MULTI_UNITS),
        transliterated=transliterated,
        non_gsm=(),
    )
