"""Resultado codes and their Spanish ``Estado`` texts (docs/provider.md §4)."""

from __future__ import annotations

SCHEDULED = 1
SENDING = 1002
CANCELLED = 29
NOT_SENT = 104  # "El teléfono no es correcto": a recipient counted in NoEnviados
CERTIFIED_CODES = frozenset({14, 17, 160, 181})

_TEXTS: dict[int, str] = {
    0: "Esperando entrega",
    1: "Programado",
    2: "Esperando entrega",
    10: "Esperando entrega",
    11: "Entregado al teléfono",
    12: "Esperando entrega",
    13: "Entregado al teléfono",
    14: "Entregado y Certificado",
    17: "Contrato perfeccionado y Certificado",
    160: "Contrato perfeccionado y Certificado",
    181: "Contrato perfeccionado y Certificado",
    29: "Mensaje Cancelado",
    50: "La Red responde que el teléfono no existe",
    51: "Falló la entrega al teléfono",
    52: "Falló la entrega a la red",
    53: "El mensaje ha expirado (El teléfono sigue no operativo)",
    54: "Número en Lista Negra",
    55: "Número Bloqueado",
    102: "Usuario dado de baja",
    104: "El teléfono no es correcto",
    110: "El teléfono no existe",
    200: "Rechazado por la operadora (créditos devueltos)",
    1001: "Programado",
    1002: "Enviando",
}


def status_text(code: int) -> str:
    """The ``Estado`` text of a Resultado code (``Desconocido`` for codes not in the table)."""
    return _TEXTS.get(code, "Desconocido")


def is_certified(code: int) -> bool:
    """True for the final certified codes (14 Certified SMS; 17/160/181 Contract SMS)."""
    return code in CERTIFIED_CODES
