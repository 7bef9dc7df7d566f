"""The hardened edge: credentials and body caps before the body, deadlines for slow
clients, separable doors, the metrics token, bounded refusal logs."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from pydantic import SecretStr
from structlog.testing import capture_logs

from certsms.config.settings import Settings
from certsms.worker.embedded_redis import free_port
from certsms.worker.web import create_app
from certsms.worker.web.auth import RefusalLog
from certsms.worker.web.callbacks import servicio_label
from tests.fixtures.jobs import load_factor, wait_for
from tests.fixtures.web import CALLBACK_PASSWORD, CALLBACK_USER, INTAKE_TOKEN, WebServer

CLI = [sys.executable, "-m", "certsms.worker.cli"]

ROOT = Path(__file__).resolve().parents[3]
MIB = 1024 * 1024
BASIC = "Basic " + base64.b64encode(f"{CALLBACK_USER}:{CALLBACK_PASSWORD}".encode()).decode()
CALLBACK = {
    "Servicio": "SMSCERTIFICADO",
    "Resultado": "11",
    "Movil": "34600000001",
    "idMensaje": "7",
}


def _address(server: WebServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _head(
    path: str, length: int, *, authorization: str | None = None, chunked: bool = False
) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    if authorization:
        lines.append(f"Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _push(sock: socket.socket, total: int) -> None:
    """Try to send ``total`` bytes of body; stop when the server has closed."""
    chunk = b"x" * 65536
    try:
        for _ in range(total // len(chunk)):
            sock.sendall(chunk)
    except OSError:
        return


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (reads end of stream, or a reset)."""
    try:
        sock.settimeout(0.2)
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.parametrize(
    ("path", "authorization"),
    [
        ("/callbacks/mensatek", None),
        ("/v1/jobs/send", None),
        ("/callbacks/mensatek", "Basic Zm9vOmJhcg=="),
    ],
)
def test_unauthenticated_oversize_body_is_401_with_less_than_a_mebibyte_read(
    web_server: WebServer, path: str, authorization: str | None
) -> None:
    """A 100 MiB body without (or with wrong) credentials: 401 on the headers, the
    connection closed, and the server reads less than 1 MiB of what the client pushes."""
    before = web_server._server.bytes_received
    with socket.create_connection(_address(web_server), timeout=5) as sock:
        sock.sendall(_head(path, 100 * MIB, authorization=authorization))
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 401"), reply[:80]
        assert b"www-authenticate" in reply.lower()
        _push(sock, 4 * MIB)
        wait_for(lambda: _closed(sock), timeout_s=10)
    assert web_server._server.bytes_received - before < MIB


def _reply(sock: socket.socket) -> bytes:
    """The whole reply of a server that closes the connection after it (headers and body
    may come in separate segments)."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_authenticated_body_over_the_callback_cap_is_413_at_once(
    web_server: WebServer, web_settings: Settings
) -> None:
    """Credentials right but a declared body past 64 KiB: 413 before any body is read."""
    cap = web_settings.callback_max_body_bytes
    before = web_server._server.bytes_received
    with socket.create_connection(_address(web_server), timeout=5) as sock:
        sock.sendall(_head("/callbacks/mensatek", cap + 1, authorization=BASIC))
        reply = _reply(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]
    assert f'"max_bytes": {cap}'.encode() in reply
    assert web_server._server.bytes_received - before < 4096


def test_chunked_callback_body_is_cut_at_the_cap(
    web_server: WebServer, web_settings: Settings
) -> None:
    """A chunked body (no declared length) is refused once it passes the callback cap."""
    cap = web_settings.callback_max_body_bytes
    before = web_server._server.bytes_received
    with socket.create_connection(_address(web_server), timeout=5) as sock:
        sock.sendall(_head("/callbacks/mensatek", 0, authorization=BASIC, chunked=True))
        chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        reply = b""
        try:
            for _ in range(64):  # 1 MiB offered
                sock.sendall(chunk)
        except OSError:
            pass
        sock.settimeout(5)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]
    assert web_server._server.bytes_received - before < cap + MIB // 2


def test_header_only_connections_do_not_starve_a_callback(
    web_settings: Settings,
    redis_client: redis.Redis,
    web_runtime: Any,
    serve_app: Callable[..., WebServer],
) -> None:
    """100 connections that send only (part of) their headers: a real callback is still
    answered within a deadline, and the slow connections are closed at their deadline."""
    settings = web_settings.model_copy(
        update={"web_header_timeout_s": 1.0, "web_body_timeout_s": 1.0, "web_idle_timeout_s": 30.0}
    )
    server = serve_app(create_app(settings, redis_client), edge_settings=settings)
    slow: list[socket.socket] = []
    try:
        for n in range(100):
            sock = socket.create_connection(_address(server), timeout=5)
            if n % 2:  # headers never finished
                sock.sendall(b"POST /callbacks/mensatek HTTP/1.1\r\nHost: test\r\n")
            else:  # headers complete, body never sent
                sock.sendall(_head("/callbacks/mensatek", 1000, authorization=BASIC))
            slow.append(sock)
        response = requests.post(
            f"{server.url}/callbacks/mensatek",
            json=CALLBACK,
            headers={"Authorization": BASIC},
            timeout=2 * load_factor(),
        )
        assert response.status_code == 200, response.text
        for sock in slow:
            wait_for(lambda sock=sock: _closed(sock), timeout_s=15)
    finally:
        for sock in slow:
            sock.close()


def test_routes_put_callbacks_and_intake_on_separate_ports(
    settings: Settings,
    web_settings: Settings,
    redis_client: redis.Redis,
    web_runtime: Any,
    serve_app: Callable[..., WebServer],
) -> None:
    """``CERTSMS_WEB_ROUTES=callbacks`` serves no intake; ``=intake`` serves no callbacks
    (404, even to a body) and needs no callback credentials."""
    bearer = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    only_callbacks = web_settings.model_copy(update={"web_routes": "callbacks"})
    callbacks = serve_app(create_app(only_callbacks, redis_client), edge_settings=only_callbacks)
    assert requests.get(f"{callbacks.url}/v1/jobs", headers=bearer, timeout=5).status_code == 404
    posted = requests.post(
        f"{callbacks.url}/callbacks/mensatek", json=CALLBACK, headers={"Authorization": BASIC}
    )
    assert posted.status_code == 200
    only_intake = settings.model_copy(
        update={"intake_token": SecretStr(INTAKE_TOKEN), "web_routes": "intake"}
    )
    intake = serve_app(create_app(only_intake, redis_client), edge_settings=only_intake)
    assert requests.post(f"{intake.url}/callbacks/mensatek", json=CALLBACK).status_code == 404
    assert requests.get(f"{intake.url}/v1/jobs", headers=bearer, timeout=5).status_code == 200


def test_metrics_token_guards_metrics(
    web_settings: Settings, redis_client: redis.Redis, serve_app: Callable[..., WebServer]
) -> None:
    """With a metrics token, /metrics is 401 without it and 200 with it."""
    settings = web_settings.model_copy(update={"metrics_token": SecretStr("scrape-me")})
    server = serve_app(create_app(settings, redis_client), edge_settings=settings)
    assert requests.get(f"{server.url}/metrics", timeout=5).status_code == 401
    wrong = requests.get(
        f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert wrong.status_code == 401
    right = requests.get(
        f"{server.url}/metrics", headers={"Authorization": "Bearer scrape-me"}, timeout=5
    )
    assert right.status_code == 200 and "certsms_" in right.text


def test_refusals_are_logged_at_a_bounded_rate() -> None:
    """A flood of refusals logs one line per interval per door, with the count it skipped."""
    now = [1000.0]
    refusals = RefusalLog(10.0, clock=lambda: now[0])
    with capture_logs() as logs:
        logged = [
            refusals.refused("callbacks", remote_addr="10.0.0.1", stage="headers")
            for _ in range(500)
        ]
        refusals.refused("intake", remote_addr="10.0.0.2", stage="app")
        now[0] += 10.5
        refusals.refused("callbacks", remote_addr="10.0.0.1", stage="headers")
    assert logged.count(True) == 1
    lines = [
        (entry["door"], entry["suppressed"])
        for entry in logs
        if entry["event"] == "web_unauthorized"
    ]
    assert lines == [("callbacks", 0), ("intake", 0), ("callbacks", 499)]


def test_servicio_label_comes_from_a_fixed_set() -> None:
    """A known Servicio keeps its name as the metric label; anything else is ``other``."""
    assert servicio_label("SMSCERTIFICADO") == "SMSCERTIFICADO"
    assert servicio_label("unrecognised") == "unrecognised"
    assert servicio_label("X" * 40) == "other"


@pytest.fixture
def web_command(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """``certsms web --routes callbacks`` as a subprocess on a free port; its base URL."""
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
        [
            sys.executable,
            "-m",
            "certsms.worker.cli",
            "web",
            "--port",
            str(port),
            "--routes",
            "callbacks",
        ],
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


def test_certsms_web_serves_the_hardened_callbacks_door(web_command: str) -> None:
    """``certsms web --routes callbacks``: a 100 MiB unauthenticated body is 401 on the
    headers, and the intake is not there."""
    host, port = web_command.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(_head("/callbacks/mensatek", 100 * MIB))
        assert sock.recv(4096).startswith(b"HTTP/1.1 401")
    bearer = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    assert requests.get(f"{web_command}/v1/jobs/abc", headers=bearer, timeout=5).status_code == 404
