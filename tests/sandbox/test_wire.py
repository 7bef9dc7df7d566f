"""Destinatarios in every wire shape (and which one arrived), bare-PDF certificates, env config."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from certsms.sandbox import SandboxConfig
from certsms.sandbox.config import ConfigUpdateError
from certsms.worker.cli import build_parser
from certsms.worker.commands.sandbox import config_from_args
from tests.fixtures.sandbox import SandboxHandle, send_params

PHONES = ["34600000001", "34600000002"]
AS_JSON = (
    '[{"Movil":"34600000001","Variable_1":"Pedro"},{"Movil":"34600000002","Variable_1":"Ana"}]'
)


def _form(**extra: Any) -> dict[str, Any]:
    body = {k: v for k, v in send_params().items() if k != "Destinatarios"}
    return {**body, "Resp": "JSON", **extra}


# (how it is sent, request kwargs, body_format, destinatarios_format)
SHAPES: list[tuple[str, dict[str, Any], str, str]] = [
    ("json array", {"json": {**_form(), "Destinatarios": json.loads(AS_JSON)}}, "json", "array"),
    ("json string (docs example)", {"json": _form(Destinatarios=AS_JSON)}, "json", "json_string"),
    ("form json string", {"data": _form(Destinatarios=AS_JSON)}, "form", "json_string"),
    (
        "form bracket keys",
        {
            "data": _form(
                **{
                    "Destinatarios[0][Movil]": "34600000001",
                    "Destinatarios[0][Variable_1]": "Pedro",
                    "Destinatarios[1][Movil]": "34600000002",
                    "Destinatarios[1][Variable_1]": "Ana",
                }
            )
        },
        "form",
        "bracket_keys",
    ),
    (
        "form repeated keys",
        {"data": [*_form().items(), ("Destinatarios", PHONES[0]), ("Destinatarios", PHONES[1])]},
        "form",
        "repeated_keys",
    ),
    (
        "multipart json string",
        {"data": _form(Destinatarios=AS_JSON), "files": {"x": ("x.txt", b"x")}},
        "multipart",
        "json_string",
    ),
    ("legacy v5 list", {"json": _form(Destinatarios=";".join(PHONES))}, "json", "legacy_string"),
]


@pytest.mark.parametrize(("label", "kwargs", "body", "shape"), SHAPES, ids=[s[0] for s in SHAPES])
def test_sandbox_destinatarios_every_shape_is_sent_and_logged(
    sandbox: SandboxHandle, label: str, kwargs: dict[str, Any], body: str, shape: str
) -> None:
    """Destinatarios as a native array or a JSON string, in JSON, form or multipart bodies, sends
    both recipients; the request log says which body and which shape arrived."""
    answer = sandbox.raw("EnviarSMSCERTIFICADO", **kwargs).json()[0]
    assert answer["Res"] == "2", (label, answer)
    recipients = sandbox.message(answer["idMensaje"])["recipients"]
    assert [r["phone"] for r in recipients] == PHONES
    if shape not in {"repeated_keys", "legacy_string"}:
        assert [r["variables"] for r in recipients] == [
            {"variable_1": "Pedro"},
            {"variable_1": "Ana"},
        ]
    entry = sandbox.requests("EnviarSMSCERTIFICADO")[-1]
    assert (entry["body_format"], entry["destinatarios_format"]) == (body, shape)
    assert entry["query_params"] == [] and entry["method"] == "POST"


def test_sandbox_log_has_no_destinatarios_format_without_it(sandbox: SandboxHandle) -> None:
    """Functions without Destinatarios log destinatarios_format None."""
    sandbox.call("GetCreditos")
    assert sandbox.requests("GetCreditos")[0]["destinatarios_format"] is None


def test_sandbox_certificate_bare_pdf_for_one_phone(sandbox: SandboxHandle) -> None:
    """certificate_phone_format=pdf serves the bare PDF for Idmensaje+Telefono (the admin digest
    agrees); by Idmensaje alone it stays a ZIP; back to zip, the phone gets a ZIP again."""
    message_id = sandbox.call("EnviarSMSCERTIFICADO", send_params()).json()[0]["idMensaje"]
    sandbox.tick(3)
    params = {"Idmensaje": message_id, "Telefono": PHONES[0]}
    sandbox.configure(certificate_phone_format="pdf")
    response = sandbox.call("GetSMSCERTIFICADO", params)
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-") and response.content.rstrip().endswith(b"%%EOF")
    summary = sandbox.certificate(message_id, PHONES[0])
    assert summary["content_type"] == "application/pdf"
    assert summary["sha256"] == hashlib.sha256(response.content).hexdigest()
    whole = sandbox.call("GetSMSCERTIFICADO", {"Idmensaje": message_id})
    assert whole.headers["Content-Type"] == "application/zip" and whole.content[:2] == b"PK"
    sandbox.configure(certificate_phone_format="zip")
    assert sandbox.call("GetSMSCERTIFICADO", params).content.startswith(b"PK\x03\x04")
    assert sandbox.requests("GetSMSCERTIFICADO")[0]["answer"]["pdf"]["size_bytes"] > 0


def test_sandbox_config_from_env() -> None:
    """CERTSMS_SANDBOX_<FIELD> sets any field (bools, ints, tuples, JSON dicts); overrides win;
    a bad value names its variable."""
    environ = {
        "CERTSMS_SANDBOX_STRICT": "1",
        "CERTSMS_SANDBOX_REPORT_GATES_CALLBACKS": "true",
        "CERTSMS_SANDBOX_LINKS_NEED_FLAG": "yes",
        "CERTSMS_SANDBOX_NO_CREDIT_RES": "-5",
        "CERTSMS_SANDBOX_INVALID_PHONES": "34600000002, 34600000003",
        "CERTSMS_SANDBOX_CERTIFICATE_PHONE_FORMAT": "pdf",
        "CERTSMS_SANDBOX_FAILURE_PHONES": '{"34600000009": 104}',
        "CERTSMS_SANDBOX_PORT": "9001",
        "OTHER": "ignored",
    }
    config = SandboxConfig.from_env(environ, defaults={"port": 8765}, overrides={"strict": False})
    assert (config.strict, config.report_gates_callbacks, config.links_need_flag) == (
        False,
        True,
        True,
    )
    assert config.no_credit_res == -5 and config.port == 9001
    assert config.invalid_phones == ("34600000002", "34600000003")
    assert config.certificate_phone_format == "pdf"
    assert config.failure_phones == {"34600000009": 104}
    for variable, value in (
        ("CERTSMS_SANDBOX_CERTIFICATE_PHONE_FORMAT", "tar"),
        ("CERTSMS_SANDBOX_NO_CREDIT_RES", "3"),
        ("CERTSMS_SANDBOX_FAILURE_PHONES", "{nope"),
    ):
        with pytest.raises(ConfigUpdateError, match=variable):
            SandboxConfig.from_env({variable: value})


def test_sandbox_cli_flags_win_over_env() -> None:
    """`certsms sandbox` reads the environment; flags given win; the command's defaults stay."""
    args = build_parser().parse_args(
        [
            "sandbox",
            "--strict",
            "--invalid-phone",
            "34600000004",
            "--invalid-phone",
            "600000005",
            "--no-report-gates-callbacks",
            "--certificate-phone-format",
            "pdf",
        ]
    )
    environ = {
        "CERTSMS_SANDBOX_REPORT_GATES_CALLBACKS": "1",
        "CERTSMS_SANDBOX_LINKS_NEED_FLAG": "1",
        "CERTSMS_SANDBOX_STRICT": "0",
    }
    config = config_from_args(args, environ)
    assert config.strict is True and config.links_need_flag is True
    assert config.report_gates_callbacks is False
    assert config.invalid_phones == ("34600000004", "600000005")
    assert config.certificate_phone_format == "pdf"
    assert (config.port, config.progression_interval_s) == (8765, 3.0)
    defaults = config_from_args(build_parser().parse_args(["sandbox"]), {})
    assert defaults.report_gates_callbacks == SandboxConfig().report_gates_callbacks
    assert defaults.links_need_flag == SandboxConfig().links_need_flag
    assert defaults.strict is False and defaults.user == "demo"
