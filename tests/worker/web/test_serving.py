"""waitress refuses a body above the app's largest cap before the app (and its 401) runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from config.settings import Settings
from tests.fixtures.jobs import wait_for
from tests.fixtures.web import CALLBACK_PASSWORD, CALLBACK_USER, INTAKE_TOKEN, WebServer
from worker.embedded_redis import free_port
from worker.web import max_request_body_bytes
from worker.web.intake import INTAKE_MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[3]


def _declare_huge_body(url: str, path: str, length: int) -> bytes:
    """Send only the headers of an unauthenticated POST declaring ``length`` bytes; the reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode())
        try:
            return sock.recv(4096)
        except TimeoutError:  # the server waits to buffer the whole body
            return b""


def test_limit_is_the_largest_route_cap(web_settings: Settings) -> None:
    """The limit is the larger of the callback cap and the intake cap."""
    assert max_request_body_bytes(web_settings) == max(
        web_settings.callback_max_body_bytes, INTAKE_MAX_BODY_BYTES
    )
    big = web_settings.model_copy(update={"callback_max_body_bytes": INTAKE_MAX_BODY_BYTES * 2})
    assert max_request_body_bytes(big) == INTAKE_MAX_BODY_BYTES * 2


@pytest.mark.parametrize("path", ["/callbacks/mensatek", "/v1/jobs/send"])
def test_fixture_server_refuses_body_over_limit_before_the_app(
    web_server: WebServer, web_settings: Settings, path: str
) -> None:
    """A declared body past the limit gets waitress's 413 at once, not a buffered 401."""
    reply = _declare_huge_body(web_server.url, path, max_request_body_bytes(web_settings) + 1)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]


@pytest.fixture
def web_command(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """``certsms web`` as a subprocess on a free port; its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTSMS_", "MENSATEK_"))}
    env.update(
        CERTSMS_REDIS_URL=settings.redis_url,
        CERTSMS_NAMESPACE=settings.namespace,
        CERTSMS_CALLBACK_USER=CALLBACK_USER,
        CERTSMS_CALLBACK_PASSWORD=CALLBACK_PASSWORD,
        CERTSMS_INTAKE_TOKEN=INTAKE_TOKEN,
        CERTSMS_CERT_DIR=str(tmp_path / "certificates"),
    )
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "web", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, (tmp_path / "web.log").read_text()
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code in (200, 503)
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, timeout_s=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_certsms_web_refuses_body_over_limit_before_the_app(
    web_command: str, settings: Settings
) -> None:
    """``certsms web`` answers 413 to an unauthenticated body past the limit without reading it."""
    reply = _declare_huge_body(
        web_command, "/callbacks/mensatek", max_request_body_bytes(settings) + 1
    )
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]
