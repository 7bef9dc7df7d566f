"""Redaction proven on real log output: token, Authorization, base64, phones."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging

import pytest
import structlog

from certsms.config.logging import configure_logging, mask_phone
from certsms.config.settings import Settings

TOKEN = "s3cr3t-api-token-value"
PDF_B64 = base64.b64encode(b"%PDF-1.4\n" + bytes(range(256)) * 4).decode()


def _configure(**overrides: object) -> io.StringIO:
    stream = io.StringIO()
    settings = Settings(
        mensatek_api_token=TOKEN,  # type: ignore[arg-type]
        log_format="json",
        **overrides,  # type: ignore[arg-type]
    )
    configure_logging(settings, stream=stream)
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _reset_structlog():  # type: ignore[no-untyped-def]
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_logging_removes_the_api_token_wherever_it_appears() -> None:
    """The token never reaches the output, as a value, inside text, or as a key."""
    stream = _configure()
    log = structlog.get_logger("t")
    log.info("request_sent", detail=f"auth user:{TOKEN}", token=TOKEN, nested={"x": TOKEN})
    out = stream.getvalue()
    assert TOKEN not in out
    assert "[redacted]" in out


def test_logging_removes_authorization_headers() -> None:
    """An Authorization header in text or as a field is replaced."""
    stream = _configure()
    log = structlog.get_logger("t")
    log.info("headers_seen", headers={"Authorization": "Basic ZGVtbzpkZW1vLXRva2Vu"})
    log.info("raw_line", text="Authorization: Bearer abc.def.ghi and more")
    out = stream.getvalue()
    assert "ZGVtbzpkZW1vLXRva2Vu" not in out
    assert "abc.def.ghi" not in out


def test_logging_replaces_base64_payloads_and_macros_by_length_and_hash() -> None:
    """Base64 content and (BASE64:…) macros become their length and sha256 prefix."""
    stream = _configure()
    log = structlog.get_logger("t")
    log.info("send_prepared", mensaje=f"Hola (BASE64:2:{PDF_B64}) fin", contenido=PDF_B64)
    out = stream.getvalue()
    assert PDF_B64 not in out
    digest = hashlib.sha256(PDF_B64.encode()).hexdigest()[:16]
    assert out.count(f"sha256={digest}") == 2
    assert f"base64 {len(PDF_B64)} chars" in out


def test_logging_masks_phone_numbers_to_last_three_digits() -> None:
    """Phones in phone fields and in free text keep only their last 3 digits."""
    stream = _configure()
    log = structlog.get_logger("t")
    log.info("recipient_updated", phone="34600123456", text="to +34 611 222 333 now")
    record = _lines(stream)[0]
    assert record["phone"] == "********456"
    assert "611 222 333" not in str(record["text"])
    assert "333" in str(record["text"])


def test_logging_keeps_phone_numbers_when_pii_is_allowed() -> None:
    """CERTSMS_LOG_PII=1 leaves phone numbers readable."""
    stream = _configure(log_pii=True)
    structlog.get_logger("t").info("recipient_updated", phone="34600123456")
    assert _lines(stream)[0]["phone"] == "34600123456"


def test_logging_keeps_identifiers_unmasked() -> None:
    """Message ids are not mistaken for phone numbers."""
    stream = _configure()
    structlog.get_logger("t").info("job_succeeded", idmensaje="1283876988", job_id="1283876988")
    record = _lines(stream)[0]
    assert record["idmensaje"] == "1283876988"
    assert record["job_id"] == "1283876988"


def test_logging_routes_stdlib_loggers_through_the_same_redaction() -> None:
    """A dramatiq-style stdlib log line is JSON and redacted too."""
    stream = _configure()
    logging.getLogger("dramatiq.worker").warning("failed for 34600123456 with %s", TOKEN)
    record = _lines(stream)[0]
    assert record["logger"] == "dramatiq.worker"
    assert TOKEN not in str(record["event"])
    assert "34600123456" not in str(record["event"])


@pytest.mark.parametrize(
    ("raw", "masked"),
    [("34600123456", "********456"), ("+34 600 123 456", "********456"), ("12", "12")],
)
def test_mask_phone_keeps_last_three_digits(raw: str, masked: str) -> None:
    """mask_phone keeps only the last three digits."""
    assert mask_phone(raw) == masked


def test_logging_masks_phone_numbers_inside_file_names() -> None:
    """A phone used as a file name (evidence layout) is masked in free text too."""
    stream = _configure()
    structlog.get_logger("t").warning("certificate_conflict_kept", kept_as="34600123456.zip")
    assert _lines(stream)[0]["kept_as"] == "********456.zip"


def test_logging_drops_lines_below_the_level() -> None:
    """At INFO a debug line is not written; at DEBUG it is."""
    stream = _configure()
    structlog.get_logger("t").debug("answer_parsed", phone="34600123456")
    assert stream.getvalue() == ""
    stream = _configure(log_level="DEBUG")
    structlog.get_logger("t").debug("answer_parsed")
    assert _lines(stream)[0]["event"] == "answer_parsed"


def test_logging_scrubs_mapping_keys_and_bytes() -> None:
    """A phone used as a key and a token inside bytes are redacted too."""
    stream = _configure()
    structlog.get_logger("t").info(
        "recipients_seen", recipients={"34600123456": 14}, raw=f"user:{TOKEN}".encode()
    )
    out = stream.getvalue()
    assert "34600123456" not in out and "********456" in out
    assert TOKEN not in out


def test_logging_keeps_timestamps_readable() -> None:
    """Epoch milliseconds under a timestamp key are not masked as phone numbers."""
    stream = _configure()
    structlog.get_logger("t").info("job_claimed", in_flight_ts="1764140000123")
    assert _lines(stream)[0]["in_flight_ts"] == "1764140000123"


def test_failing_actor_line_of_dramatiq_carries_no_message_text(settings: Settings) -> None:
    """dramatiq's "Failed to process message …" line names the actor, message and job,
    never the payload (message text, tax id, contact name)."""
    import dramatiq

    stream = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=stream)
    try:
        message = dramatiq.Message(
            queue_name="certsms.send",
            actor_name="certsms.send",
            args=("Texto secreto",),
            kwargs={
                "job_id": "job42",
                "payload": {
                    "Mensaje": "Texto secreto",
                    "Cifcontacto": "B12345678",
                    "Contacto": "Pepa",
                },
            },
            options={},
        )
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("dramatiq.worker.WorkerThread").error(
                "Failed to process message %s with unhandled exception.", message, exc_info=True
            )
        logging.getLogger("dramatiq.actor.Actor").warning(
            "Received args=%r kwargs=%r.", message.args, message.kwargs
        )
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    text = stream.getvalue()
    for secret in ("Texto secreto", "B12345678", "Pepa"):
        assert secret not in text
    line = json.loads(text.splitlines()[0])
    assert "certsms.send" in line["event"] and message.message_id in line["event"]
    assert "job42" in line["event"] and "boom" in line["exception"]
