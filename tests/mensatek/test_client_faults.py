"""Every one of the nine client functions under every sandbox fault, and the session's setup.

Each fault test builds a valid request (creating the message or file it needs
with a healthy client first), then turns the fault on and checks the error and
how many requests reached the sandbox during the faulty call: a 403 block is
never retried inside the call; 5xx answers, resets and accept-then-timeouts are
retried (1 + ``transport_retries`` requests) only for the idempotent functions
(certificate, report, list_files, credits) and tried exactly once for the others.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import requests

from certsms.config.settings import Settings
from certsms.mensatek.client import MensatekClient
from certsms.mensatek.errors import NotFound, ProviderUnavailable, TransportError
from certsms.mensatek.requests import (
    CancelRequest,
    CertificateRequest,
    DeleteFileRequest,
    ReportRequest,
    RescheduleRequest,
    UploadRequest,
)
from tests.fixtures.sandbox import SandboxHandle
from tests.mensatek.test_client import PDF, PHONES, send_request

Call = Callable[[MensatekClient], object]

# The client's function name -> the sandbox's (logged) provider function name.
PROVIDER_NAMES: dict[str, str] = {
    "send": "EnviarSMSCERTIFICADO",
    "cancel": "CancelarSMSCERTIFICADO",
    "reschedule": "ReprogramarSMSCERTIFICADO",
    "certificate": "GetSMSCERTIFICADO",
    "report": "GetReportSMSCERTIFICADO",
    "upload": "CargarFichero",
    "list_files": "ListarFicheros",
    "delete_file": "BorrarFichero",
    "credits": "GetCreditos",
}
FUNCTIONS = tuple(PROVIDER_NAMES)
IDEMPOTENT = frozenset({"certificate", "report", "list_files", "credits"})
READ_TIMEOUT_S = 0.3
TIMEOUT_HOLD_S = 1.5  # longer than READ_TIMEOUT_S: the client gives up first


def test_the_parametrized_functions_are_the_clients_nine() -> None:
    """The tables above cover every client function and agree on which are idempotent."""
    assert set(FUNCTIONS) == set(MensatekClient.FUNCTIONS) and len(FUNCTIONS) == 9
    assert frozenset(MensatekClient.IDEMPOTENT) == IDEMPOTENT


def _future(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def _message_id(client: MensatekClient, *, scheduled: bool = False) -> int:
    sent = client.send(send_request(scheduled_at=_future(2) if scheduled else None))
    assert sent.message_id is not None
    return sent.message_id


def prepare(function: str, client: MensatekClient, sandbox: SandboxHandle, tmp_path: Path) -> Call:
    """Create what ``function`` needs with a healthy client; return the call under test."""
    if function == "send":
        return lambda c: c.send(send_request())
    if function == "cancel":
        cancel = CancelRequest(_message_id(client, scheduled=True))
        return lambda c: c.cancel(cancel)
    if function == "reschedule":
        move = RescheduleRequest(_message_id(client, scheduled=True), _future(3))
        return lambda c: c.reschedule(move)
    if function == "certificate":
        message_id = _message_id(client)
        sandbox.tick(4)
        dest = tmp_path / "cert.zip"
        return lambda c: c.certificate(CertificateRequest(message_id, PHONES[0]), dest)
    if function == "report":
        report = ReportRequest(_message_id(client))
        return lambda c: c.report(report)
    if function == "upload":
        return lambda c: c.upload(UploadRequest("contrato.pdf", PDF))
    if function == "list_files":
        client.upload(UploadRequest("anexo.pdf", PDF))
        return lambda c: c.list_files()
    if function == "delete_file":
        client.upload(UploadRequest("anexo.pdf", PDF))
        return lambda c: c.delete_file(DeleteFileRequest("anexo.pdf"))
    if function == "credits":
        return lambda c: c.credits()
    raise AssertionError(f"no request for {function}")


def _last_seq(sandbox: SandboxHandle) -> int:
    return max((entry["seq"] for entry in sandbox.requests()), default=0)


def _requests_since(sandbox: SandboxHandle, mark: int) -> list[dict[str, Any]]:
    return [entry for entry in sandbox.requests() if entry["seq"] > mark]


@pytest.fixture
def fast_settings(sandbox_settings: Settings) -> Settings:
    """The sandbox settings with no backoff and a short read timeout."""
    return sandbox_settings.model_copy(
        update={"transport_backoff_s": 0.0, "read_timeout_s": READ_TIMEOUT_S}
    )


def run_faulty_call(
    function: str,
    sandbox: SandboxHandle,
    sandbox_settings: Settings,
    fast_settings: Settings,
    tmp_path: Path,
    error: type[Exception],
    **fault: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    """Prepare ``function``, configure ``fault``, call it once; the error and new log entries."""
    with MensatekClient(sandbox_settings, sleep=lambda s: None) as healthy:
        call = prepare(function, healthy, sandbox, tmp_path)
    sandbox.configure(**fault)
    mark = _last_seq(sandbox)
    with (
        MensatekClient(fast_settings, sleep=lambda s: None) as client,
        pytest.raises(error) as info,
    ):
        call(client)
    entries = _requests_since(sandbox, mark)
    assert {entry["function"] for entry in entries} == {PROVIDER_NAMES[function]}
    return info.value, entries


def expected_attempts(function: str, settings: Settings) -> int:
    return 1 + settings.transport_retries if function in IDEMPOTENT else 1


@pytest.mark.parametrize("function", FUNCTIONS)
def test_block_answer_is_unavailable_and_never_retried_in_call(
    function: str,
    sandbox: SandboxHandle,
    sandbox_settings: Settings,
    fast_settings: Settings,
    tmp_path: Path,
) -> None:
    """A 403 block → ProviderUnavailable(http_status=403), exactly one request, no retry."""
    with MensatekClient(sandbox_settings, sleep=lambda s: None) as healthy:
        call = prepare(function, healthy, sandbox, tmp_path)
        sandbox.configure(block_threshold=0)
        with pytest.raises(NotFound):  # one erroneous request blocks the credential
            healthy.delete_file(DeleteFileRequest("nada.pdf"))
    mark = _last_seq(sandbox)
    with (
        MensatekClient(fast_settings, sleep=lambda s: None) as client,
        pytest.raises(ProviderUnavailable) as info,
    ):
        call(client)
    assert info.value.http_status == 403 and info.value.function == function
    assert info.value.provider_text and "blocked" in info.value.provider_text.lower()
    entries = _requests_since(sandbox, mark)
    assert [(e["function"], e["outcome"]) for e in entries] == [
        (PROVIDER_NAMES[function], "blocked")
    ]
    if function == "certificate":
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_5xx_is_retried_in_call_only_for_idempotent_functions(
    function: str,
    sandbox: SandboxHandle,
    sandbox_settings: Settings,
    fast_settings: Settings,
    tmp_path: Path,
) -> None:
    """HTTP 503 → ProviderUnavailable; 1 + transport_retries requests if idempotent, else 1."""
    error, entries = run_faulty_call(
        function,
        sandbox,
        sandbox_settings,
        fast_settings,
        tmp_path,
        ProviderUnavailable,
        error_5xx_rate=1.0,
        error_5xx_status=503,
    )
    assert error.http_status == 503 and error.function == function
    assert [e["outcome"] for e in entries] == ["fault:5xx"] * expected_attempts(
        function, fast_settings
    )
    assert all(e["http_status"] == 503 for e in entries)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_connection_reset_is_sent_and_retried_only_for_idempotent_functions(
    function: str,
    sandbox: SandboxHandle,
    sandbox_settings: Settings,
    fast_settings: Settings,
    tmp_path: Path,
) -> None:
    """A reset → TransportError(request_sent=True); retried only for idempotent functions."""
    error, entries = run_faulty_call(
        function,
        sandbox,
        sandbox_settings,
        fast_settings,
        tmp_path,
        TransportError,
        reset_rate=1.0,
    )
    assert error.request_sent is True and error.function == function
    assert [e["outcome"] for e in entries] == ["fault:reset"] * expected_attempts(
        function, fast_settings
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_accept_then_timeout_is_sent_and_retried_only_for_idempotent_functions(
    function: str,
    sandbox: SandboxHandle,
    sandbox_settings: Settings,
    fast_settings: Settings,
    tmp_path: Path,
) -> None:
    """The provider handled it but answered too late → TransportError(request_sent=True)."""
    error, entries = run_faulty_call(
        function,
        sandbox,
        sandbox_settings,
        fast_settings,
        tmp_path,
        TransportError,
        accept_then_timeout_rate=1.0,
        timeout_hold_s=TIMEOUT_HOLD_S,
    )
    assert error.request_sent is True and error.function == function
    assert [e["outcome"] for e in entries] == ["fault:timeout"] * expected_attempts(
        function, fast_settings
    )
    if function == "certificate":
        assert list(tmp_path.iterdir()) == []


# --- the session's setup -------------------------------------------------------------------


def test_session_sends_user_agent_separate_timeouts_and_verifies_tls(
    sandbox: SandboxHandle, sandbox_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What reaches the transport adapter: User-Agent certsms/<version>, (connect, read), verify."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # these would replace verify=True
        monkeypatch.delenv(name, raising=False)
    settings = sandbox_settings.model_copy(
        update={"connect_timeout_s": 1.25, "read_timeout_s": 7.5}
    )
    seen: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []
    with MensatekClient(settings, sleep=lambda s: None) as client:
        adapter = client._session.get_adapter(settings.mensatek_base_url)
        assert adapter.max_retries.total == 0  # type: ignore[attr-defined]
        original = adapter.send

        def recording_send(request: requests.PreparedRequest, **kwargs: Any) -> Any:
            seen.append((request, kwargs))
            return original(request, **kwargs)

        monkeypatch.setattr(adapter, "send", recording_send)
        client.credits()
        client.list_files()
    assert len(seen) == 2
    for request, kwargs in seen:
        assert request.headers["User-Agent"] == f"certsms/{metadata.version('certsms')}"
        assert request.headers["X-Request-Id"]
        assert kwargs["timeout"] == (1.25, 7.5)
        assert kwargs["verify"] is True
    assert seen[0][0].headers["X-Request-Id"] != seen[1][0].headers["X-Request-Id"]
