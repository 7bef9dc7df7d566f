"""Strict mode: refuse what the real v7 API may refuse (``strict``, default False).

The lenient sandbox accepts much that the docs do not promise; with ``strict``
it refuses, answering like every validation error (HTTP 200, ``Res -3`` and an
``Error`` naming the problem, in the ``Resp`` format asked for) and recording a
machine-readable ``reason`` in the request log (outcome ``strict_refused``):

============  ==================================================================
reason        refused because
============  ==================================================================
method        not a POST ("requests must be made using POST"); without
              ``strict`` a non-POST gets HTTP 405 and is not logged
query_string  parameters in the query string ("Parameters are sent in the body
              of the POST request"); all of their names are listed
legacy_login  ``Correo``/``Passwd`` in the body (v5/v6 login; v7 is Basic auth)
fecha_past    ``EnviarSMSCERTIFICADO`` with a ``Fecha`` whose minute is before
              the current Madrid minute (lenient: a past date sends now).
              ``ReprogramarSMSCERTIFICADO`` answers ``-6`` either way.
library_name  ``CargarFichero`` with a name that breaks "a maximum of 15
              characters (only letters and numbers)", read with the v7 text as
              the whole name *including* the extension: ``stem.ext``, both
              letters/digits, one dot, ≤ 15 characters (``mifichero.pdf``).
              Applies to ``Nombre`` or, for ``Tipo=FILES`` without ``Nombre``, the
              uploaded file's name. Lenient: the v5 rule (non-alphanumerics
              stripped, the stem cut to 15) and the final name in ``Nombre``.
============  ==================================================================

The request-level checks (method, query string, legacy login) run before
authentication, so the answer names the problem even for a v5-style request
that only carries ``Correo``/``Passwd``.
"""

from __future__ import annotations

import re

from certsms.sandbox.parsing import ParsedRequest
from certsms.sandbox.rendering import Answer

LEGACY_LOGIN = ("Correo", "Passwd")
_LIBRARY_NAME = re.compile(r"[A-Za-z0-9]+\.[A-Za-z0-9]+")
LIBRARY_NAME_MAX_CHARS = 15


def refusal(reason: str, text: str, **fields: object) -> Answer:
    """A strict-mode ``Res -3`` answer carrying ``reason`` for the request log."""
    return Answer({"Res": -3, "Error": text, **fields}, outcome="strict_refused", reason=reason)


def request_refusal(req: ParsedRequest) -> Answer | None:
    """The refusal of a request's transport (method, query string, legacy login), if any."""
    reasons: list[str] = []
    errors: list[str] = []
    if req.method != "POST":
        reasons.append("method")
        errors.append(f"Only POST is accepted (got {req.method})")
    if req.query_params:
        reasons.append("query_string")
        names = ", ".join(req.query_params)
        errors.append(f"Parameters in the query string are not accepted (use the body): {names}")
    in_query = {name.lower() for name in req.query_params}
    legacy = [n for n in LEGACY_LOGIN if n.lower() in req.params and n.lower() not in in_query]
    if legacy:
        reasons.append("legacy_login")
        errors.append(
            "Legacy login fields are not accepted, authenticate with the API User and API Token: "
            + ", ".join(legacy)
        )
    if not reasons:
        return None
    return refusal(",".join(reasons), "; ".join(errors))


def fecha_in_past(scheduled_at: float, now: float) -> bool:
    """True when the minute of ``Fecha`` is before the current minute."""
    return scheduled_at < now - now % 60


def library_name_problem(name: str) -> str | None:
    """Why ``name`` breaks the v7 library-name rule, or None when it follows it."""
    if len(name) > LIBRARY_NAME_MAX_CHARS:
        return f"at most {LIBRARY_NAME_MAX_CHARS} characters including the extension"
    if not _LIBRARY_NAME.fullmatch(name):
        return "only letters and digits, plus the extension (e.g. contrato1.pdf)"
    return None
