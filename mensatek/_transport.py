"""Transport helpers of the client: request protocols, body reading, failure classification.

:func:`transport_error` decides ``request_sent`` from a ``requests`` failure: only
failures known to happen before the body left (connect refused or timed out,
DNS, TLS handshake, a bad URL) are ``request_sent=False``; everything else
(read timeouts, resets, broken bodies) may have reached the provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Protocol

import requests
import urllib3.exceptions

from certsms.mensatek.errors import TransportError


class SupportsParams(Protocol):
    """A request model (``mensatek.requests``): its provider parameters."""

    def to_params(self) -> Mapping[str, object]: ...


class SupportsUpload(SupportsParams, Protocol):
    """An upload request: its ``Nombre``, raw content and ``Tipo``."""

    @property
    def name(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def mode(self) -> str: ...


def read_head(chunks: Iterator[bytes], size: int) -> bytes:
    """At least ``size`` bytes from the start of a streamed body (fewer if it is shorter)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return head


def read_capped(chunks: Iterator[bytes], limit: int) -> bytes:
    """The rest of a streamed body, stopping once ``limit`` bytes were read."""
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        parts.append(chunk)
        total += len(chunk)
        if total >= limit:
            break
    return b"".join(parts)


def form_value(value: object) -> str:
    """A parameter as a multipart form value (arrays as JSON, booleans as 1/0)."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


_NOT_SENT_REQUESTS = (
    requests.ConnectTimeout,
    requests.exceptions.SSLError,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
)
_NOT_SENT = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)


def transport_error(
    exc: requests.RequestException, function: str, request_id: str
) -> TransportError:
    """Classify a requests failure: did the body possibly reach the provider?"""
    if isinstance(exc, _NOT_SENT_REQUESTS):
        sent = False
    elif isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        sent = not isinstance(reason, _NOT_SENT)
    else:  # read timeouts, resets, broken chunked bodies: the body may have arrived
        sent = True
    what = "after the request may have been received" if sent else "before the request was sent"
    return TransportError(
        f"{function}: {type(exc).__name__} {what}",
        request_sent=sent,
        function=function,
        request_id=request_id,
    )
