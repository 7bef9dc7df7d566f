"""Credentials for the two doors of the web app, compared in constant time.

The provider does not sign callbacks, so ``POST /callbacks/mensatek`` is protected by
HTTP Basic credentials configured in the provider's panel (``CERTSMS_CALLBACK_USER`` /
``CERTSMS_CALLBACK_PASSWORD``). The intake API takes ``Authorization: Bearer
<CERTSMS_INTAKE_TOKEN>``, a separate secret. Every comparison goes through
:func:`hmac.compare_digest` and both halves of a Basic pair are always compared, so the
answer time does not tell which half was wrong.
"""

from __future__ import annotations

import base64
import binascii
import hmac

BASIC_CHALLENGE = 'Basic realm="certsms callbacks", charset="UTF-8"'
BEARER_CHALLENGE = 'Bearer realm="certsms intake"'


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` → ``(user, password)``; None when absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


def check_basic(header: str | None, *, user: str, password: str) -> bool:
    """Whether the Authorization header carries exactly ``user``/``password``."""
    given = parse_basic(header)
    given_user, given_password = given if given is not None else ("", "")
    user_ok = _equal(given_user, user)
    password_ok = _equal(given_password, password)
    return given is not None and user_ok and password_ok


def check_bearer(header: str | None, *, token: str) -> bool:
    """Whether the Authorization header is ``Bearer <token>``."""
    scheme, _, value = (header or "").strip().partition(" ")
    matches = _equal(value.strip(), token)
    return scheme.lower() == "bearer" and bool(token) and matches
