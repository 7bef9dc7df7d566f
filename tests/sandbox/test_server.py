"""The sandbox as a server: the CLI command, automatic progression, settings fixture."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import requests

from certsms.config.settings import Settings
from certsms.sandbox import SandboxConfig, SandboxServer
from certsms.worker.cli import build_parser
from certsms.worker.commands.sandbox import config_from_args
from certsms.worker.embedded_redis import free_port
from tests.fixtures.sandbox import SandboxHandle, send_params


def test_sandbox_cli_flags_become_config() -> None:
    """`certsms sandbox` flags map onto the SandboxConfig fields."""
    args = build_parser().parse_args(
        [
            "sandbox",
            "--port",
            "9999",
            "--callback-url",
            "http://x/cb",
            "--latency-ms",
            "50",
            "--block-threshold",
            "4",
            "--reset-rate",
            "0.5",
            "--callback-format",
            "form",
        ]
    )
    config = config_from_args(args)
    assert (config.port, config.callback_url, config.latency_ms) == (9999, "http://x/cb", 50)
    assert (config.block_threshold, config.reset_rate, config.callback_format) == (4, 0.5, "form")
    assert args.func.__name__ == "run"


def test_sandbox_cli_runs_in_foreground_until_signalled() -> None:
    """The command prints a SANDBOX banner with the base URL, serves, and stops on SIGTERM."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "certsms.worker.cli", "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        banner = "".join(lines)
        assert "SANDBOX" in banner and f"http://127.0.0.1:{port}/v7/" in banner
        assert "demo-token" in banner
        answer = requests.post(
            f"http://127.0.0.1:{port}/v7/GetCreditos",
            json={"Resp": "JSON"},
            auth=("demo", "demo-token"),
            timeout=10,
        ).json()
        assert answer == [{"Res": "1", "Cred": "10000"}]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "SANDBOX stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sandbox_progresses_by_itself_with_interval() -> None:
    """With progression_interval_s > 0 a message reaches 14 without any tick."""
    server = SandboxServer(SandboxConfig(progression_interval_s=0.01)).start()
    try:
        answer = requests.post(
            server.base_url + "EnviarSMSCERTIFICADO",
            json={**send_params(), "Resp": "JSON"},
            auth=("demo", "demo-token"),
            timeout=10,
        ).json()[0]
        deadline = time.monotonic() + 10
        results: list[int] = []
        while time.monotonic() < deadline:
            state = requests.get(server.admin_url + "state", timeout=10).json()
            results = [r["result"] for r in state["messages"][0]["recipients"]]
            if results == [14, 14]:
                break
            time.sleep(0.02)
        assert state["messages"][0]["id"] == int(answer["idMensaje"]) and results == [14, 14]
    finally:
        server.stop()


def test_sandbox_injected_clock_drives_scheduling() -> None:
    """A clock passed to SandboxServer is the sandbox's time (scheduled sends use it)."""
    now = [4_102_444_800.0]  # 2100-01-01 UTC
    server = SandboxServer(SandboxConfig(), clock=lambda: now[0]).start()
    try:
        state = requests.get(server.admin_url + "state", timeout=10).json()
        assert state["now"].startswith("2100-01-01")
    finally:
        server.stop()


def test_sandbox_settings_point_at_sandbox(
    sandbox_settings: Settings, sandbox: SandboxHandle
) -> None:
    """sandbox_settings carries the sandbox's base URL and credentials."""
    assert sandbox_settings.mensatek_base_url == sandbox.base_url
    token = sandbox_settings.mensatek_api_token
    assert token is not None and token.get_secret_value() == sandbox.token
    response = requests.post(
        sandbox_settings.mensatek_base_url + sandbox_settings.function_credits,
        json={"Resp": "JSON"},
        auth=(sandbox_settings.mensatek_api_user or "", token.get_secret_value()),
        timeout=10,
    )
    assert response.json()[0]["Res"] == "1"


def test_sandbox_stamps_arrival_not_handling() -> None:
    """A request that waits for a busy server thread is logged when its bytes arrived
    (``epoch_s``), with the wait as ``handled_after_ms``: the provider measures its rate
    limit at arrival, and a starved sandbox must not shift requests closer together."""
    server = SandboxServer(SandboxConfig(threads=1, latency_ms=1000)).start()

    def credits() -> None:
        requests.post(
            server.base_url + "GetCreditos",
            json={"Resp": "JSON"},
            auth=("demo", "demo-token"),
            timeout=30,
        )

    try:
        first = threading.Thread(target=credits)
        first.start()
        time.sleep(0.1)  # the first now holds the only thread for a second
        sent_s = time.time()
        credits()
        first.join(timeout=30)
        log = requests.get(server.admin_url + "requests", timeout=10).json()
        entries = sorted(log, key=lambda e: e["seq"])
        assert [e["function"] for e in entries] == ["GetCreditos", "GetCreditos"]
        waited = entries[1]
        assert waited["handled_after_ms"] >= 300  # it sat behind the first's second
        assert sent_s - 0.05 <= waited["epoch_s"] <= sent_s + 0.7
        assert waited["epoch_s"] + waited["handled_after_ms"] / 1000 >= entries[0]["epoch_s"] + 0.9
    finally:
        server.stop()


def test_sandbox_judges_the_range_interval_between_arrivals() -> None:
    """Two date-range downloads 0.1 s apart at a 1 s interval: the second is refused
    (Res -4) although a busy server thread handled it 1.5 s after the first."""
    server = SandboxServer(
        SandboxConfig(threads=1, latency_ms=1500, range_download_interval_s=1)
    ).start()
    auth = ("demo", "demo-token")
    try:
        requests.post(
            server.base_url + "EnviarSMSCERTIFICADO",
            json={**send_params(), "Resp": "JSON"},
            auth=auth,
            timeout=30,
        )
        requests.post(server.admin_url + "tick", json={"steps": 3}, timeout=30)
        window = {"Fechainicio": "2000-01-01 00:00", "Fechafin": "2099-12-31 23:59"}
        answers: dict[str, requests.Response] = {}

        def download(name: str) -> None:
            answers[name] = requests.post(
                server.base_url + "GetSMSCERTIFICADO",
                json={**window, "Resp": "JSON"},
                auth=auth,
                timeout=30,
            )

        first = threading.Thread(target=download, args=("first",))
        first.start()
        time.sleep(0.1)
        download("second")
        first.join(timeout=30)
        assert answers["first"].status_code == 200
        assert answers["first"].headers["Content-Type"].startswith("application/zip")
        refused = answers["second"].json()[0]
        assert refused["Res"] == "-4" and "once every" in refused["Error"]
    finally:
        server.stop()
