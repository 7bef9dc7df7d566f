"""When a request arrived: the kernel's receive time of its bytes, not the handling time.

The provider measures its rate limit (and the date-range interval) where requests
arrive. The sandbox runs inside a Python process that may be starved (a loaded test
machine): its read loop can reach a socket tens of milliseconds after the bytes came
in, and a waitress thread can take longer still to parse the request. Stamping any
of those moments would squeeze requests that arrived a second apart into less, and
the sandbox — the oracle of the rate tests — would blame the client for its own
stalls.

So the sandbox's channels read with ``recvmsg`` and ask Linux for a receive
timestamp (``SO_TIMESTAMPNS``: the time the kernel queued the bytes, which a starved
process does not delay). Elsewhere, or when the kernel gives none, the stamp is the
moment waitress read the bytes (``last_activity``), and failing that the handling
time. :func:`arrival_s` maps the stamp onto the sandbox clock.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

from waitress.channel import HTTPChannel
from waitress.wasyncore import _DISCONNECTED  # type: ignore[attr-defined]

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux's ``SO_TIMESTAMPNS`` (``SCM_TIMESTAMPNS`` has the same number); Python's
``socket`` module does not name it."""
_TIMESPEC = struct.Struct("qq")
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
KERNEL_STAMPS = sys.platform.startswith("linux") and _ANCILLARY_BYTES > 0


def enable_kernel_stamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp what ``sock`` receives (on a listening socket, the
    connections it accepts inherit it); False where it cannot."""
    if not KERNEL_STAMPS:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


class StampingChannel(HTTPChannel):
    """waitress' HTTP channel, reading with the kernel's receive time of the bytes.

    ``received_at_s`` is the epoch time the kernel received the last bytes read (None
    until a read carried a stamp).
    """

    received_at_s: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stamped = self.socket is not None and enable_kernel_stamps(self.socket)

    def recv(self, buffer_size: int) -> bytes:
        if not self._stamped or self.socket is None:
            return bytes(super().recv(buffer_size))
        try:
            data, stamp = read_stamped(self.socket, buffer_size)
        except OSError as why:  # as wasyncore's dispatcher.recv
            if why.args[0] in _DISCONNECTED:
                self.handle_close()
                return b""
            raise
        if not data:
            self.handle_close()
            return b""
        if stamp is not None:
            self.received_at_s = stamp
        return data


def read_stamped(sock: socket.socket, size: int) -> tuple[bytes, float | None]:
    """Up to ``size`` bytes and the epoch time the kernel received them (None when it
    gave no stamp: stamps not enabled on ``sock``, or not Linux)."""
    data, ancillary, _flags, _addr = sock.recvmsg(size, _ANCILLARY_BYTES)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = _TIMESPEC.unpack(payload[: _TIMESPEC.size])
            if seconds > 0:
                return bytes(data), seconds + nanoseconds / 1e9
    return bytes(data), None


def arrival_s(environ: dict[str, Any], now_s: float) -> float:
    """When the request being handled arrived, on the sandbox clock (``now_s`` is the
    sandbox's time now): the kernel's stamp, else waitress' read time, else ``now_s``.

    The channel is reached through the bound ``waitress.client_disconnected`` probe
    in the environ. A request's last read is the one that completed it: waitress
    does not read the next request of a connection before answering this one.
    """
    probe = environ.get("waitress.client_disconnected")
    channel = getattr(probe, "__self__", None)
    stamp = getattr(channel, "received_at_s", None)
    if not isinstance(stamp, float):
        stamp = getattr(channel, "last_activity", None)
    if not isinstance(stamp, float):
        return now_s
    return now_s - min(max(0.0, time.time() - stamp), 60.0)
