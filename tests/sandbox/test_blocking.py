"""Spam blocking, fault injection and the redacted request log."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.fixtures.sandbox import SandboxHandle, send_params


def test_sandbox_blocks_after_threshold_and_unblocks(sandbox: SandboxHandle) -> None:
    """Past block_threshold negative answers the credential gets 403 until the block ends."""
    sandbox.configure(block_threshold=3, block_window_s=60, block_duration_s=120)
    for _ in range(4):
        assert sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": "1"}).status_code == 200
    blocked = sandbox.call("GetCreditos")
    assert blocked.status_code == 403 and "blocked" in blocked.text
    state = sandbox.state()
    assert len(state["blocks"]["episodes"]) == 1 and "demo" in state["blocks"]["active"]
    assert sandbox.requests()[-1]["outcome"] == "blocked"
    sandbox.advance_clock(121)
    assert sandbox.call("GetCreditos").json()[0]["Res"] == "1"


def test_sandbox_block_signal_is_configurable(sandbox: SandboxHandle) -> None:
    """block_status and block_body choose how a block shows up."""
    sandbox.configure(block_threshold=0, block_status=429, block_body="slow down")
    sandbox.call("GetCreditos", auth=("demo", "wrong"))
    response = sandbox.call("GetCreditos")
    assert (response.status_code, response.text) == (429, "slow down")


def test_sandbox_repeated_identical_queries_count(sandbox: SandboxHandle) -> None:
    """Identical credit queries in quick succession count toward a block; varied ones do not."""
    sandbox.configure(block_threshold=2, repeat_window_s=60)
    for index in range(5):
        assert sandbox.call("GetCreditos", {"n": index}).status_code == 200
    assert sandbox.state()["blocks"]["episodes"] == []
    statuses = [sandbox.call("GetCreditos").status_code for _ in range(5)]
    assert statuses[:4] == [200, 200, 200, 200] and statuses[4] == 403
    assert sandbox.state()["blocks"]["episodes"][0]["reason"] == "repeated_query"


def test_sandbox_normal_use_has_no_block_episode(sandbox: SandboxHandle) -> None:
    """Successful sends and reports never block (block episodes stay 0)."""
    for _ in range(15):
        answer = sandbox.call("EnviarSMSCERTIFICADO", send_params()).json()[0]
        sandbox.call("GetReportSMSCERTIFICADO", {"Idmensaje": answer["idMensaje"]})
    assert sandbox.state()["blocks"]["episodes"] == []


def test_sandbox_fault_5xx(sandbox: SandboxHandle) -> None:
    """error_5xx_rate=1 answers every call with 500 or 503 and processes nothing."""
    sandbox.configure(error_5xx_rate=1.0, fault_seed=7)
    statuses = {sandbox.call("EnviarSMSCERTIFICADO", send_params()).status_code for _ in range(8)}
    assert statuses <= {500, 503} and statuses
    assert sandbox.state()["messages"] == []


def test_sandbox_fault_reset_is_connection_error(sandbox: SandboxHandle) -> None:
    """reset_rate=1 closes the connection without an answer: requests raises ConnectionError."""
    sandbox.configure(reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        sandbox.call("GetCreditos")
    sandbox.configure(reset_rate=0.0)
    assert sandbox.call("GetCreditos").status_code == 200
    assert [e["outcome"] for e in sandbox.requests()][:1] == ["fault:reset"]


def test_sandbox_fault_html_page(sandbox: SandboxHandle) -> None:
    """html_rate=1 answers an HTML error page, with 502 or (configured) 200."""
    sandbox.configure(html_rate=1.0)
    response = sandbox.call("GetCreditos")
    assert response.status_code == 502 and response.headers["Content-Type"].startswith("text/html")
    sandbox.configure(html_status=200)
    response = sandbox.call("GetCreditos", {"x": 1})
    assert response.status_code == 200 and response.text.startswith("<!DOCTYPE html>")


def test_sandbox_fault_accept_then_timeout(sandbox: SandboxHandle) -> None:
    """accept_then_timeout: the client times out, yet the message exists in the state."""
    sandbox.configure(accept_then_timeout_rate=1.0, timeout_hold_s=2.0)
    with pytest.raises(requests.ReadTimeout):
        sandbox.call("EnviarSMSCERTIFICADO", send_params(), timeout_s=0.3)
    messages = sandbox.state()["messages"]
    assert len(messages) == 1 and len(messages[0]["recipients"]) == 2
    assert sandbox.requests("EnviarSMSCERTIFICADO")[0]["outcome"] == "fault:timeout"


def test_sandbox_latency_is_recorded_not_failed(sandbox: SandboxHandle) -> None:
    """With latency configured calls still succeed."""
    sandbox.configure(latency_ms=20)
    assert sandbox.call("GetCreditos").json()[0]["Res"] == "1"


def test_sandbox_log_has_no_token_and_no_base64(sandbox: SandboxHandle) -> None:
    """The admin log never holds the token, the Authorization header or base64 payloads."""
    pdf64 = base64.b64encode(b"%PDF-1.4 " + b"x" * 300).decode()
    sandbox.call("CargarFichero", {"Nombre": "a.pdf", "Tipo": "BASE64", "Contenido": pdf64})
    sandbox.call("EnviarSMSCERTIFICADO", send_params(Mensaje=f"Doc (BASE64:2:{pdf64})"))
    sandbox.call(
        "GetCreditos", {"Correo": "demo", "Passwd": "demo-token"}, auth=("demo", "demo-token")
    )
    raw = requests.get(sandbox.admin_url + "requests", timeout=10).text
    assert "demo-token" not in raw and "Basic " not in raw
    assert pdf64 not in raw and pdf64[:40] not in raw
    entries = sandbox.requests()
    assert entries[0]["function"] == "CargarFichero" and entries[0]["params"][
        "Contenido"
    ].startswith("<")
    assert "(BASE64:2:<" in entries[1]["params"]["Mensaje"]
    assert {"seq", "time", "function", "params", "http_status", "res", "user", "outcome"} <= set(
        entries[0]
    )


def test_sandbox_reset_restores_start_config(sandbox: SandboxHandle) -> None:
    """Reset clears messages, log and blocks and restores the start config."""
    sandbox.configure(latency_ms=5, block_threshold=1)
    sandbox.call("EnviarSMSCERTIFICADO", send_params())
    sandbox.reset()
    state = sandbox.state()
    assert state["messages"] == [] and sandbox.requests() == []
    assert state["config"]["latency_ms"] == 0 and state["config"]["block_threshold"] == 10


def test_sandbox_admin_config_rejects_unknown_field(sandbox: SandboxHandle) -> None:
    """An unknown config field is a 400, and the config is unchanged."""
    response = requests.post(
        sandbox.admin_url + "config", json={"nope": 1, "latency_ms": 9}, timeout=10
    )
    assert response.status_code == 400 and "nope" in response.json()["error"]
    assert sandbox.state()["config"]["latency_ms"] == 0
