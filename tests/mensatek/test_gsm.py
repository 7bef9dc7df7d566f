"""GSM 03.38 / UCS-2 analysis: encodings, unit counts, segment boundaries, transliteration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certsms.mensatek.gsm import GSM_BASIC, GSM_EXTENSION, analyze_text, transliterate

SEGMENT_CASES = [
    # (text, unicode, encoding, characters, segments)
    ("", False, "GSM-7", 0, 0),
    ("a" * 160, False, "GSM-7", 160, 1),
    ("a" * 161, False, "GSM-7", 161, 2),
    ("a" * 306, False, "GSM-7", 306, 2),
    ("a" * 307, False, "GSM-7", 307, 3),
    ("€" * 80, False, "GSM-7", 160, 1),
    ("€" * 81, False, "GSM-7", 162, 2),
    ("a" * 158 + "[", False, "GSM-7", 160, 1),
    ("a" * 159 + "[", False, "GSM-7", 161, 2),
    # an ESC pair never straddles two segments: 152 + (2) + 152 needs a third segment
    ("a" * 152 + "€" + "a" * 152, False, "GSM-7", 306, 3),
    ("ñ" * 70, True, "UCS-2", 70, 1),
    ("ñ" * 71, True, "UCS-2", 71, 2),
    ("ñ" * 134, True, "UCS-2", 134, 2),
    ("ñ" * 135, True, "UCS-2", 135, 3),
    ("😀" * 35, False, "UCS-2", 70, 1),
    ("😀" * 36, False, "UCS-2", 72, 2),
    # a surrogate pair never straddles two segments
    ("a" * 66 + "😀" + "a" * 66, True, "UCS-2", 134, 3),
    ("hola", True, "UCS-2", 4, 1),
]


@pytest.mark.parametrize(("text", "unicode", "encoding", "characters", "segments"), SEGMENT_CASES)
def test_analyze_text_counts_units_and_segments(
    text: str, unicode: bool, encoding: str, characters: int, segments: int
) -> None:
    """Each text is counted in its encoding's units and packed into the right number of SMS."""
    analysis = analyze_text(text, unicode=unicode)
    assert (analysis.encoding, analysis.characters, analysis.segments) == (
        encoding,
        characters,
        segments,
    )


SPANISH_CASES = [
    # (text, transliterated, non_gsm, characters)
    ("¿Dónde está el niño? ¡Añade 5€!", {"ó": "o", "á": "a"}, (), 32),
    ("Pingüino, café, señor, Ñandú", {"ú": "u"}, (), 28),
    ("Ça va, garçon", {"ç": "Ç"}, (), 13),
    (
        "ÁÍÓÚ áíóú é É",
        {"Á": "A", "Í": "I", "Ó": "O", "Ú": "U", "á": "a", "í": "i", "ó": "o", "ú": "u"},
        (),
        13,
    ),
    ("“Hola” — ¿qué tal? 😀", {}, ("“", "”", "—", "😀"), 21),
]


@pytest.mark.parametrize(("text", "transliterated", "non_gsm", "characters"), SPANISH_CASES)
def test_analyze_text_reports_spanish_transliterations_and_unicode_forcers(
    text: str, transliterated: dict[str, str], non_gsm: tuple[str, ...], characters: int
) -> None:
    """Accents the provider replaces are listed with their replacement; others force Unicode."""
    analysis = analyze_text(text)
    assert analysis.transliterated == transliterated
    assert analysis.non_gsm == non_gsm
    assert analysis.characters == characters
    assert analysis.encoding == ("UCS-2" if non_gsm else "GSM-7")


def test_extension_characters_count_two_each() -> None:
    """Every printable extension-table character costs two units."""
    text = "^{}\\[~]|€"
    assert analyze_text(text).characters == 2 * len(text)
    assert set(text) <= GSM_EXTENSION


def test_transliterate_replaces_only_transliterable_characters() -> None:
    """transliterate() maps accents to GSM letters and leaves GSM and Unicode-only characters."""
    assert transliterate("áéíóú ÁÉÍÓÚ ç ñ ü € 😀") == "aéiou AÉIOU Ç ñ ü € 😀"


def test_gsm_basic_table_has_127_characters() -> None:
    """The basic table holds 128 codes minus ESC."""
    assert len(GSM_BASIC) == 127
    assert {"@", "¡", "¿", "ñ", "Ñ", "é", "ü", "\n", "Ç"} <= GSM_BASIC


@given(st.text(alphabet=sorted(GSM_BASIC), max_size=500))
def test_basic_text_length_is_its_character_count(text: str) -> None:
    """A text of basic characters costs one unit each and fits 160 / 153 per segment."""
    analysis = analyze_text(text)
    assert analysis.encoding == "GSM-7"
    assert analysis.characters == len(text)
    expected = 0 if not text else 1 if len(text) <= 160 else -(-len(text) // 153)
    assert analysis.segments == expected


@given(st.text(max_size=200))
def test_transliterated_text_analyses_without_transliterations(text: str) -> None:
    """After transliterate(), nothing is left to transliterate and the non-GSM set is unchanged."""
    before = analyze_text(text)
    after = analyze_text(transliterate(text))
    assert after.transliterated == {}
    assert after.non_gsm == before.non_gsm
