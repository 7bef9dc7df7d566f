"""The ``Resultado`` table: per-recipient delivery status codes (docs/provider.md §4).

Each code has the provider's Spanish ``Estado`` text, a :class:`StatusClass` and
whether it is final. Sources: the Certified/Contract codes 14, 17, 160, 181 are
documented (v7); the rest is the v5 generic table, and its "final" column is
inferred from the descriptions. Delivered-to-handset codes (11, 13, 70, 106) are
not final for a Certified SMS: the certification (14) follows. Codes the provider
may add later classify as ``UNKNOWN`` (never final), so a job keeps polling.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_CERTIFIED_CODES: tuple[int, ...] = (14, 17, 160, 181)


class StatusClass(StrEnum):
    """What a ``Resultado`` means for the job that sent the message."""

    PENDING = "pending"
    DELIVERED = "delivered"
    CERTIFIED = "certified"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StatusInfo:
    """One row of the table: ``Resultado`` code, ``Estado`` text, class, final or not."""

    code: int
    text: str
    status_class: StatusClass
    final: bool


_WAITING = "Esperando entrega"
_DELIVERED = "Entregado al teléfono"
_DELIVERED_NO_TIME = "Entregado al teléfono. Tiempo de entrega no disponible"
_FATAL = "Error Fatal"
_EXPIRED = "El mensaje ha expirado (El teléfono sigue no operativo)"
_CERTIFIED = "Contrato perfeccionado y Certificado"
_P, _D, _C, _F = (
    StatusClass.PENDING,
    StatusClass.DELIVERED,
    StatusClass.CERTIFIED,
    StatusClass.FAILED,
)
_X, _E = StatusClass.CANCELLED, StatusClass.EXPIRED

_ROWS: list[tuple[tuple[int, ...], str, StatusClass, bool]] = [
    ((0, 2, 10, 12, 31, 500, 999, 1000), _WAITING, _P, False),
    ((1, 1001), "Programado", _P, False),
    ((1002,), "Enviando", _P, False),
    ((11, 13), _DELIVERED, _D, False),
    ((70, 106), _DELIVERED_NO_TIME, _D, False),
    ((14,), "Entregado y Certificado", _C, True),
    ((17, 160, 181), _CERTIFIED, _C, True),
    ((22, 23, 24, 25, 26, 27, 28), _FATAL, _F, True),
    ((29,), "Mensaje Cancelado", _X, True),
    ((50,), "La Red responde que el teléfono no existe", _F, True),
    ((51,), "Falló la entrega al teléfono", _F, True),
    ((52,), "Falló la entrega a la red", _F, True),
    ((53, 101, 103, 113), _EXPIRED, _E, True),
    ((54,), "Número en Lista Negra", _F, True),
    ((55,), "Número Bloqueado", _F, True),
    ((102,), "Usuario dado de baja", _F, True),
    ((104,), "El teléfono no es correcto", _F, True),
    ((110,), "El teléfono no existe", _F, True),
    ((111, 137), "Teléfono dado de baja", _F, True),
    ((112, 136), "Teléfono sin servicio", _F, True),
    ((120, 122), "Fallo en el SMSC destino", _P, False),
    ((121,), "Congestión en el SMSC destino", _P, False),
    ((130,), "Error en el Teléfono destino", _F, True),
    ((131,), "El Móvil ha excedido la capacidad de memoria", _F, True),
    ((132,), "El Móvil no puede recibir mensajes", _F, True),
    ((133,), "Fallo en móvil destino (dado de baja)", _F, True),
    ((134, 1003), "Problema en el móvil destino. Reintentando…", _P, False),
    ((135,), "Problema en la red destino. Reintentando…", _P, False),
    ((140, 141), "Error de destino, contacte con soporte", _F, True),
    ((150,), "La red de destino ha cerrado temporalmente la entrega de mensajes", _F, True),
    ((200,), "Rechazado por la operadora (créditos devueltos)", _F, True),
]

STATUS_TABLE: dict[int, StatusInfo] = {
    code: StatusInfo(code, text, cls, final) for codes, text, cls, final in _ROWS for code in codes
}


def lookup(result_code: int) -> StatusInfo | None:
    """The table row of ``result_code`` (``Resultado``), or None for a code not in the table."""
    return STATUS_TABLE.get(result_code)


def status_text(result_code: int) -> str:
    """The provider's Spanish ``Estado`` for ``result_code`` (``Desconocido (N)`` if unknown)."""
    info = STATUS_TABLE.get(result_code)
    return info.text if info else f"Desconocido ({result_code})"


def classify(
    result_code: int, *, certified_codes: Collection[int] = DEFAULT_CERTIFIED_CODES
) -> StatusClass:
    """The class of ``result_code``; any of ``certified_codes`` is ``CERTIFIED`` (configurable)."""
    if result_code in certified_codes:
        return StatusClass.CERTIFIED
    info = STATUS_TABLE.get(result_code)
    if info is None or info.status_class is StatusClass.CERTIFIED:
        # a table "certified" code that the deployment does not count as certified
        return StatusClass.UNKNOWN if info is None else StatusClass.DELIVERED
    return info.status_class


def is_final(
    result_code: int, *, certified_codes: Collection[int] = DEFAULT_CERTIFIED_CODES
) -> bool:
    """Whether no further status will follow for this recipient (unknown codes: not final)."""
    if result_code in certified_codes:
        return True
    info = STATUS_TABLE.get(result_code)
    return bool(info and info.final and info.status_class is not StatusClass.CERTIFIED)
