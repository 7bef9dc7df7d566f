"""The one place where a provider answer becomes an error (docs/provider.md §3, §9.14).

:func:`error_for_status` judges the HTTP status before the body is read;
:func:`error_for_answer` judges a parsed answer's ``Res``. The client raises what
they return. Every error carries the function, ``Res``, HTTP status, the
provider's text and the call's request id; never the token.

Decisions where the provider's behaviour is unknown:

- HTTP 401 and ``Res`` -1 are both authentication failures (v7's status is unknown).
- 403, 429 and 5xx are block-like or unhealthy: :class:`ProviderUnavailable`.
  Other non-2xx statuses are judged by their body (an answer with a negative
  ``Res`` maps as usual; anything else is ``ProviderUnavailable``).
- ``Res`` 0 is undocumented: a successful cancel of zero recipients, and a
  rejection for every other function (a send with ``Res`` 0 sent nothing).
- An answer without a usable ``Res`` is ``ProviderUnavailable``, except credits
  (v5 answered only ``Cred``; ``Cred`` -1 meant an authentication error).
- A send whose answer carries ``CreditosNecesarios`` ("only if the message cannot be
  sent due to lack of credits", the v7 docs' one signal) is
  :class:`InsufficientCredits` whatever its ``Res`` (0, -2 or another code).
"""

from __future__ import annotations

import email.utils
import time

from certsms.mensatek.errors import (
    AuthenticationFailed,
    BadDate,
    BadRequestData,
    FileLibraryError,
    InsufficientCredits,
    MensatekError,
    NotCancellable,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
)
from certsms.mensatek.parsing import Answer
from certsms.mensatek.requests import KINDS

FUNCTIONS: tuple[str, ...] = KINDS
"""The nine provider functions (the request kinds of :mod:`mensatek.requests`)."""
IDEMPOTENT: frozenset[str] = frozenset({"certificate", "report", "list_files", "credits"})

_COMMON = {-1: "authentication error", -3: "error in the call data"}
_MEANINGS: dict[str, dict[int, str]] = {
    "send": {
        0: "nothing was sent",
        -2: "v5: not enough credits; v7 says that by CreditosNecesarios only",
    },
    "cancel": {
        -2: "unknown message or not this account's",
        -4: "already sent",
        -5: "already cancelled",
    },
    "reschedule": {
        -2: "unknown message or not this account's",
        -4: "already sent",
        -5: "already cancelled",
        -6: "the date is not correct",
    },
    "report": {-4: "no data, or no permission to see this report"},
    "certificate": {-4: "no certificate for these data"},
    "upload": {
        -2: "missing mandatory parameters",
        -10: "storage capacity exceeded",
        -11: "file format not allowed",
        -12: "BASE64 mode but no content",
        -13: "FILES mode but no file arrived",
        -14: "image format not allowed",
        -15: "Tipo must be FILES or BASE64",
        -16: "file too large",
        -17: "upload error",
        -18: "trial accounts cannot upload files",
    },
    "delete_file": {-2: "the file does not exist"},
}


def meaning(function: str, res: int) -> str:
    """The documented meaning of ``res`` for ``function`` (English), or ``"undocumented"``."""
    return _MEANINGS.get(function, {}).get(res) or _COMMON.get(res) or "undocumented"


def parse_retry_after(value: str | None, *, now_s: float | None = None) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) as seconds from now; None if absent or odd."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


def error_for_status(
    function: str,
    http_status: int,
    *,
    retry_after_s: float | None = None,
    provider_text: str | None = None,
    request_id: str | None = None,
) -> MensatekError | None:
    """The error an HTTP status means by itself (401, 403, 429, 5xx), or None to read the body."""
    if http_status == 401:
        return AuthenticationFailed(
            f"{function}: HTTP 401, credentials refused",
            function=function,
            http_status=http_status,
            provider_text=provider_text,
            request_id=request_id,
        )
    if http_status in (403, 429) or http_status >= 500:
        return ProviderUnavailable(
            f"{function}: HTTP {http_status} (blocked or unavailable)",
            retry_after_s=retry_after_s,
            function=function,
            http_status=http_status,
            provider_text=provider_text,
            request_id=request_id,
        )
    return None


def error_for_answer(
    function: str, answer: Answer, *, http_status: int | None = None, request_id: str | None = None
) -> MensatekError | None:
    """The error a parsed answer means (negative or missing ``Res``), or None on success."""
    text = answer.get_text("Error")
    res = answer.get_int("Res")

    def make(cls: type[MensatekError], message: str) -> MensatekError:
        return cls(
            f"{function}: {message}",
            function=function,
            res=res,
            http_status=http_status,
            provider_text=text,
            request_id=request_id,
        )

    if function == "send" and (res is None or res <= 0):
        needed = answer.get_float("CreditosNecesarios", "CredNecesarios")
        if needed is not None:
            error = make(
                InsufficientCredits,
                f"not enough credits: {needed:g} needed (Res {res}, CreditosNecesarios)",
            )
            assert isinstance(error, InsufficientCredits)
            error.credits_needed = needed
            error.credits_available = answer.get_float("Cred", "Creditos")
            return error
    if res is None:
        credits = answer.get_float("Cred")
        if function == "credits" and credits is not None:
            return (
                make(AuthenticationFailed, "Cred -1 (authentication error)")
                if credits == -1
                else None
            )
        return make(ProviderUnavailable, "answer without a Res code")
    ok = res > 0 or (res == 0 and function == "cancel")
    if ok and (http_status is None or 200 <= http_status < 300):
        return None
    if ok:
        return make(ProviderUnavailable, f"HTTP {http_status} with Res {res}")
    return make(_rejection(function, res), f"Res {res} ({meaning(function, res)})")


def _rejection(function: str, res: int) -> type[ProviderRejected]:
    if res == -1:
        return AuthenticationFailed
    if res == -3 or (function == "upload" and res == -2):
        return BadRequestData
    if function in ("cancel", "reschedule"):
        if res in (-4, -5):
            return NotCancellable
        if res == -2:
            return NotFound
        if res == -6 and function == "reschedule":
            return BadDate
    if (function in ("report", "certificate") and res == -4) or (
        function == "delete_file" and res == -2
    ):
        return NotFound
    if function == "upload" and -18 <= res <= -10:
        return FileLibraryError
    return ProviderRejected
