"""The Resultado table: texts, classes, finality, configurable certified codes."""

from __future__ import annotations

import pytest

from certsms.mensatek.status import (
    STATUS_TABLE,
    StatusClass,
    classify,
    is_final,
    lookup,
    status_text,
)


@pytest.mark.parametrize(
    ("code", "status_class", "final"),
    [
        (0, StatusClass.PENDING, False),
        (1, StatusClass.PENDING, False),
        (1001, StatusClass.PENDING, False),
        (1002, StatusClass.PENDING, False),
        (10, StatusClass.PENDING, False),
        (11, StatusClass.DELIVERED, False),
        (70, StatusClass.DELIVERED, False),
        (14, StatusClass.CERTIFIED, True),
        (17, StatusClass.CERTIFIED, True),
        (160, StatusClass.CERTIFIED, True),
        (181, StatusClass.CERTIFIED, True),
        (29, StatusClass.CANCELLED, True),
        (53, StatusClass.EXPIRED, True),
        (113, StatusClass.EXPIRED, True),
        (50, StatusClass.FAILED, True),
        (104, StatusClass.FAILED, True),
        (200, StatusClass.FAILED, True),
        (121, StatusClass.PENDING, False),
        (134, StatusClass.PENDING, False),
        (4242, StatusClass.UNKNOWN, False),
    ],
)
def test_classify_and_is_final_follow_the_table(
    code: int, status_class: StatusClass, final: bool
) -> None:
    """Each Resultado code has the class and finality of docs/provider.md §4."""
    assert classify(code) is status_class
    assert is_final(code) is final


def test_certified_codes_are_configurable() -> None:
    """A code outside ``certified_codes`` is not certified; one inside is, even if unknown."""
    assert classify(160, certified_codes=(14,)) is StatusClass.DELIVERED
    assert not is_final(160, certified_codes=(14,))
    assert classify(163, certified_codes=(14, 163)) is StatusClass.CERTIFIED
    assert is_final(163, certified_codes=(14, 163))


def test_status_text_is_the_providers_spanish_estado() -> None:
    """Texts match the provider's ``Estado`` strings; unknown codes say so with the code."""
    assert status_text(14) == "Entregado y Certificado"
    assert status_text(11) == "Entregado al teléfono"
    assert status_text(29) == "Mensaje Cancelado"
    assert status_text(9999) == "Desconocido (9999)"


def test_table_rows_are_consistent() -> None:
    """Every row's code is its key and every final row is not pending."""
    assert lookup(4242) is None
    for code, info in STATUS_TABLE.items():
        assert info.code == code
        assert not (info.final and info.status_class is StatusClass.PENDING)
