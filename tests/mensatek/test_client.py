"""The client over real HTTP against the sandbox: every function, every documented failure."""

from __future__ import annotations

import hashlib
import re
import socket
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from certsms.config.settings import Settings
from certsms.mensatek.client import MensatekClient
from certsms.mensatek.errors import (
    AuthenticationFailed,
    BadDate,
    BadRequestData,
    FileLibraryError,
    InsufficientCredits,
    NotCancellable,
    NotFound,
    ProviderUnavailable,
    TransportError,
)
from certsms.mensatek.requests import (
    CancelRequest,
    CertificateRequest,
    DeleteFileRequest,
    Recipient,
    ReportRequest,
    RescheduleRequest,
    SendRequest,
    UploadRequest,
)
from tests.fixtures.sandbox import SandboxHandle

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PHONES = ("34600000001", "34600000002")


@dataclass(frozen=True)
class RawRequest:
    """A stand-in request with arbitrary provider parameters (to provoke provider errors)."""

    params: Mapping[str, object]

    def to_params(self) -> Mapping[str, object]:
        return self.params


def send_request(**changes: object) -> SendRequest:
    fields: dict[str, object] = {
        "sender": "ACME",
        "recipients": tuple(Recipient(phone) for phone in PHONES),
        "message": "Su notificación está disponible",
        "contact": "ACME S.L.",
        "contact_phone": "900000000",
        "contact_tax_id": "B00000000",
    }
    fields.update(changes)
    return SendRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture
def client(sandbox_settings: Settings) -> Iterator[MensatekClient]:
    """A client of the sandbox that does not really sleep between retries."""
    with MensatekClient(sandbox_settings, sleep=lambda s: None) as instance:
        yield instance


def fast_timeout_client(settings: Settings) -> MensatekClient:
    return MensatekClient(settings.model_copy(update={"read_timeout_s": 0.5}), sleep=lambda s: None)


def future(days: int = 2) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


# --- success of every function ------------------------------------------------------------


def test_send_returns_the_message_id_and_updates_credits(
    client: MensatekClient, sandbox: SandboxHandle
) -> None:
    """A send returns idMensaje, the count sent and the balance; one request carries Resp=JSON."""
    result = client.send(send_request())
    assert result.message_id and result.sent_count == 2
    assert (
        result.credits
        == client.last_credits
        == sandbox.state()["accounts"][sandbox.user]["credits"]
    )
    [entry] = sandbox.requests("EnviarSMSCERTIFICADO")
    assert entry["params"]["Resp"] == "JSON" and entry["http_status"] == 200


def test_cancel_and_reschedule_a_scheduled_send(client: MensatekClient) -> None:
    """A scheduled send can be rescheduled, then cancelled (credits recovered), then not again."""
    sent = client.send(send_request(scheduled_at=future()))
    assert sent.message_id is not None
    moved = client.reschedule(RescheduleRequest(sent.message_id, future(3)))
    assert moved.res == 1 and moved.credits is not None
    cancelled = client.cancel(CancelRequest(sent.message_id))
    assert cancelled.cancelled_count == 2 and cancelled.message_id == sent.message_id
    assert cancelled.credits_recovered and cancelled.credits_recovered > 0
    with pytest.raises(NotCancellable) as info:
        client.cancel(CancelRequest(sent.message_id))
    assert info.value.res == -5


def test_report_lists_every_recipient(client: MensatekClient, sandbox: SandboxHandle) -> None:
    """After progression the report has one entry per recipient with code and text."""
    sent = client.send(send_request())
    assert sent.message_id is not None
    sandbox.tick(4)
    report = client.report(ReportRequest(sent.message_id))
    assert report.recipient_count == 2
    assert {(e.phone, e.result_code) for e in report.recipients} == {(p, 14) for p in PHONES}
    assert all(e.status_text for e in report.recipients)


def test_certificate_zip_is_streamed_and_matches_the_sandbox(
    client: MensatekClient, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """The ZIP is stored at dest with the sandbox's sha256, its members listed, no temp left."""
    sent = client.send(send_request())
    assert sent.message_id is not None
    sandbox.tick(4)
    dest = tmp_path / "evidence" / "cert.zip"
    result = client.certificate(CertificateRequest(sent.message_id, PHONES[0]), dest)
    assert result.path == dest and result.size_bytes == dest.stat().st_size
    assert result.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert result.sha256 == sandbox.certificate_sha256(sent.message_id, PHONES[0])
    assert result.members == tuple(zipfile.ZipFile(dest).namelist()) and result.members
    assert sorted(p.name for p in dest.parent.iterdir()) == ["cert.zip"]


def test_certificate_error_body_is_never_saved(client: MensatekClient, tmp_path: Path) -> None:
    """An error answer to a certificate request raises and leaves nothing at dest."""
    dest = tmp_path / "cert.zip"
    with pytest.raises(NotFound):
        client.certificate(CertificateRequest(987654321, PHONES[0]), dest)
    assert list(tmp_path.iterdir()) == []


def test_file_library_round_trip_in_both_upload_modes(
    client: MensatekClient, sandbox: SandboxHandle
) -> None:
    """BASE64 and multipart FILES uploads land in the library, list, and delete."""
    first = client.upload(UploadRequest("contrato.pdf", PDF))
    second = client.upload(UploadRequest("anexo.pdf", PDF, mode="FILES"))
    assert (first.name, second.name) == ("contrato.pdf", "anexo.pdf")
    assert sandbox.requests("CargarFichero")[1]["params"]["fichero"]["filename"] == "anexo.pdf"
    listed = client.list_files()
    assert {(f.name, f.ext) for f in listed.files} == {
        ("contrato.pdf", "PDF"),
        ("anexo.pdf", "PDF"),
    }
    assert all(f.uploaded_at is not None for f in listed.files)
    assert client.delete_file(DeleteFileRequest("contrato.pdf")).res == 1
    assert [f.name for f in client.list_files().files] == ["anexo.pdf"]


def test_credits_returns_and_remembers_the_balance(
    client: MensatekClient, sandbox: SandboxHandle
) -> None:
    """GetCreditos returns the balance; last_credits follows every answer."""
    sandbox.set_credits(1234.5)
    assert client.last_credits is None
    assert client.credits().credits == 1234.5 == client.last_credits
    sandbox.set_credits(99.0)
    with pytest.raises(NotFound):
        client.delete_file(DeleteFileRequest("nada.pdf"))
    assert client.last_credits == 99.0


# --- documented negative Res ----------------------------------------------------------------


def test_send_without_credits_raises_insufficient_credits(
    client: MensatekClient, sandbox: SandboxHandle
) -> None:
    """Res -2 on a send carries CreditosNecesarios."""
    sandbox.set_credits(1.0)
    with pytest.raises(InsufficientCredits) as info:
        client.send(send_request())
    assert info.value.res == -2 and info.value.credits_needed and info.value.credits_needed > 1


def test_bad_data_carries_the_providers_error_text(client: MensatekClient) -> None:
    """Res -3 carries the provider's Error text, the function and a request id."""
    with pytest.raises(BadRequestData) as info:
        client.send(RawRequest({"Remitente": "ACME", "Mensaje": "x"}))
    error = info.value
    assert error.res == -3 and error.function == "send" and error.http_status == 200
    assert error.provider_text and "missing" in error.provider_text.lower()
    assert error.request_id and re.fullmatch(r"[0-9a-f]{32}", error.request_id)


def test_cancel_and_reschedule_errors(client: MensatekClient, sandbox: SandboxHandle) -> None:
    """Unknown id → NotFound; already sent → NotCancellable; past date → BadDate."""
    with pytest.raises(NotFound):
        client.cancel(CancelRequest(123))
    with pytest.raises(NotFound):
        client.reschedule(RescheduleRequest(123, future()))
    sent = client.send(send_request())
    assert sent.message_id is not None
    sandbox.tick(1)
    with pytest.raises(NotCancellable) as info:
        client.cancel(CancelRequest(sent.message_id))
    assert info.value.res == -4
    scheduled = client.send(send_request(scheduled_at=future()))
    assert scheduled.message_id is not None
    with pytest.raises(BadDate):
        client.reschedule(RescheduleRequest(scheduled.message_id, future(-1)))


def test_report_of_an_unknown_message_is_not_found(client: MensatekClient) -> None:
    """Report Res -4 (no data / not ours) → NotFound."""
    with pytest.raises(NotFound) as info:
        client.report(ReportRequest(424242))
    assert info.value.res == -4 and info.value.function == "report"


@pytest.mark.parametrize(
    ("name", "content", "res"),
    [("virus.exe", b"MZ", -11), ("foto.jpg", b"\xff\xd8", -14), ("grande.pdf", PDF * 10, -16)],
)
def test_upload_library_errors(
    client: MensatekClient, sandbox: SandboxHandle, name: str, content: bytes, res: int
) -> None:
    """Upload -10…-18 answers → FileLibraryError with the Res."""
    sandbox.configure(library_max_file_bytes=len(PDF) * 2)
    with pytest.raises(FileLibraryError) as info:
        client.upload(UploadRequest(name, content))
    assert info.value.res == res


def test_upload_on_trial_account_is_file_library_error(
    client: MensatekClient, sandbox: SandboxHandle
) -> None:
    """A trial account's upload answer (Res -18) → FileLibraryError with res -18."""
    sandbox.configure(trial_account=True)
    with pytest.raises(FileLibraryError) as info:
        client.upload(UploadRequest("contrato.pdf", PDF))
    assert info.value.res == -18 and info.value.function == "upload"


@pytest.mark.parametrize("mode", ["res", "http401"])
def test_wrong_credentials_raise_authentication_failed(
    sandbox: SandboxHandle, sandbox_settings: Settings, mode: str
) -> None:
    """Res -1 and HTTP 401 are both AuthenticationFailed, and the token appears nowhere."""
    sandbox.configure(auth_failure_mode=mode)
    wrong = sandbox_settings.model_copy(update={"mensatek_api_token": SecretStr("s3cret-wrong")})
    with (
        MensatekClient(wrong, sleep=lambda s: None) as client,
        pytest.raises(AuthenticationFailed) as info,
    ):
        client.credits()
    assert info.value.http_status == (401 if mode == "http401" else 200)
    assert "s3cret-wrong" not in repr(info.value.as_dict()) + str(info.value)
    assert len(sandbox.requests("GetCreditos")) == 1


# --- unhealthy answers and transport failures ------------------------------------------------


def test_block_answer_is_unavailable_and_not_retried_in_call(
    client: MensatekClient, sandbox: SandboxHandle
) -> None:
    """A 403 block → ProviderUnavailable; the client leaves the wait to the job layer."""
    sandbox.configure(block_threshold=0)
    with pytest.raises(NotFound):
        client.report(ReportRequest(1))
    with pytest.raises(ProviderUnavailable) as info:
        client.credits()
    assert info.value.http_status == 403 and info.value.provider_text
    assert [e["outcome"] for e in sandbox.requests("GetCreditos")] == ["blocked"]


def test_5xx_is_retried_for_a_report_but_not_for_a_send(
    client: MensatekClient, sandbox: SandboxHandle
) -> None:
    """A 5xx is retried twice for an idempotent report and never for a send."""
    sandbox.configure(error_5xx_rate=1.0)
    with pytest.raises(ProviderUnavailable) as info:
        client.report(ReportRequest(1))
    assert info.value.http_status in (500, 503)
    assert len(sandbox.requests("GetReportSMSCERTIFICADO")) == 3
    with pytest.raises(ProviderUnavailable):
        client.send(send_request())
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1


def test_html_page_with_200_is_unavailable(client: MensatekClient, sandbox: SandboxHandle) -> None:
    """An HTML page, even with HTTP 200, is ProviderUnavailable, never an answer."""
    sandbox.configure(html_rate=1.0, html_status=200)
    with pytest.raises(ProviderUnavailable) as info:
        client.credits()
    assert info.value.http_status == 200 and "<html" in (info.value.provider_text or "").lower()


def test_connection_reset_after_sending(client: MensatekClient, sandbox: SandboxHandle) -> None:
    """A reset is an unknown outcome: a send is tried once, a credits query three times."""
    sandbox.configure(reset_rate=1.0)
    with pytest.raises(TransportError) as info:
        client.send(send_request())
    assert info.value.request_sent is True
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1
    with pytest.raises(TransportError):
        client.credits()
    assert len(sandbox.requests("GetCreditos")) == 3


def test_accept_then_timeout_on_a_send_is_sent_and_not_reposted(
    sandbox: SandboxHandle, sandbox_settings: Settings
) -> None:
    """A send that timed out after the provider accepted it: request_sent=True, one request."""
    sandbox.configure(accept_then_timeout_rate=1.0, timeout_hold_s=2.0)
    with fast_timeout_client(sandbox_settings) as client, pytest.raises(TransportError) as info:
        client.send(send_request())
    assert info.value.request_sent is True and info.value.function == "send"
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 1
    assert len(sandbox.state()["messages"]) == 1  # the provider did send it


def test_accept_then_timeout_on_a_report_is_retried(
    sandbox: SandboxHandle, sandbox_settings: Settings
) -> None:
    """A timed-out report is idempotent: it is attempted 1 + transport_retries times."""
    sandbox.configure(accept_then_timeout_rate=1.0, timeout_hold_s=2.0)
    with fast_timeout_client(sandbox_settings) as client, pytest.raises(TransportError) as info:
        client.report(ReportRequest(1))
    assert info.value.request_sent is True
    assert len(sandbox.requests("GetReportSMSCERTIFICADO")) == 3


def test_connect_failure_is_not_sent_and_retried(sandbox_settings: Settings) -> None:
    """A refused connection never left the body: request_sent=False, retried even for a send."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = sandbox_settings.model_copy(
        update={"mensatek_base_url": f"http://127.0.0.1:{port}/v7/"}
    )
    sleeps: list[float] = []
    with (
        MensatekClient(closed, sleep=sleeps.append) as client,
        pytest.raises(TransportError) as info,
    ):
        client.send(send_request())
    assert info.value.request_sent is False
    assert len(sleeps) == closed.transport_retries


def test_certificate_by_message_and_by_date_range(
    client: MensatekClient, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """The message-only and date-range modes also stream a valid ZIP with every certificate."""
    sent = client.send(send_request())
    assert sent.message_id is not None
    sandbox.tick(4)
    by_message = client.certificate(CertificateRequest(sent.message_id), tmp_path / "m.zip")
    assert by_message.sha256 == sandbox.certificate_sha256(sent.message_id)
    assert sum(name.lower().endswith(".pdf") for name in by_message.members) == 2
    start, end = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
    by_range = client.certificate(CertificateRequest(start=start, end=end), tmp_path / "r.zip")
    assert by_range.members and zipfile.ZipFile(tmp_path / "r.zip").testzip() is None
