"""The sandbox stamps a request when the kernel received it, not when a starved process
read it (sandbox.arrival)."""

from __future__ import annotations

import socket
import time

import pytest

from certsms.sandbox.arrival import KERNEL_STAMPS, arrival_s, enable_kernel_stamps, read_stamped


@pytest.mark.skipif(not KERNEL_STAMPS, reason="kernel receive stamps are a Linux feature")
def test_a_late_read_carries_the_kernel_receive_time() -> None:
    """Bytes read 0.5 s after they came in carry the time they came in; the same read
    on a socket without stamps carries none."""
    listener = socket.create_server(("127.0.0.1", 0))
    assert enable_kernel_stamps(listener)  # accepted connections inherit it
    plain_listener = socket.create_server(("127.0.0.1", 0))
    with listener, plain_listener:
        client = socket.create_connection(listener.getsockname())
        plain_client = socket.create_connection(plain_listener.getsockname())
        server, _ = listener.accept()
        plain_server, _ = plain_listener.accept()
        with client, plain_client, server, plain_server:
            sent_s = time.time()
            client.sendall(b"POST /v7/GetCreditos")
            plain_client.sendall(b"POST /v7/GetCreditos")
            time.sleep(0.5)  # the reader is late, as a starved sandbox is
            data, stamp = read_stamped(server, 4096)
            read_s = time.time()
            assert data == b"POST /v7/GetCreditos"
            assert stamp is not None and sent_s - 0.01 <= stamp < sent_s + 0.25 <= read_s
            assert read_stamped(plain_server, 4096) == (b"POST /v7/GetCreditos", None)


def test_arrival_falls_back_to_the_read_time_then_the_handling_time() -> None:
    """Without a kernel stamp the channel's last read counts; without a channel, now."""

    class Channel:
        def __init__(self, received_at_s: float | None, last_activity: float) -> None:
            self.received_at_s = received_at_s
            self.last_activity = last_activity

        def check_client_disconnected(self) -> bool:
            return False

    now = time.time()
    stamped = {
        "waitress.client_disconnected": Channel(now - 2.0, now - 1.0).check_client_disconnected
    }
    unstamped = {"waitress.client_disconnected": Channel(None, now - 1.0).check_client_disconnected}
    sandbox_now = 1_000.0  # the sandbox clock may be offset from the host's
    assert arrival_s(stamped, sandbox_now) == pytest.approx(998.0, abs=0.05)
    assert arrival_s(unstamped, sandbox_now) == pytest.approx(999.0, abs=0.05)
    assert arrival_s({}, sandbox_now) == sandbox_now
