"""``certsms credits``: answered from cache, one provider request when stale."""

from __future__ import annotations

import json

import pytest

from certsms.config.settings import Settings
from certsms.worker.cli import main
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def credits_env(sandbox_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's environment pointed at the test Redis and the sandbox."""
    token = sandbox_settings.mensatek_api_token
    assert token is not None
    for name, value in {
        "REDIS_URL": sandbox_settings.redis_url,
        "CERTSMS_NAMESPACE": sandbox_settings.namespace,
        "MENSATEK_BASE_URL": sandbox_settings.mensatek_base_url,
        "MENSATEK_API_USER": str(sandbox_settings.mensatek_api_user),
        "MENSATEK_API_TOKEN": token.get_secret_value(),
    }.items():
        monkeypatch.setenv(name, value)
    return sandbox_settings


def test_cli_credits_asks_once_then_answers_from_cache(
    credits_env: Settings, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two calls in a row make one GetCreditos request; the second is cached."""
    assert main(["credits", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["credits", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert len(sandbox.requests("GetCreditos")) == 1
    account = sandbox.state()["accounts"][sandbox.user]
    assert first["credits"] == second["credits"] == account["credits"]
    assert first["cached"] is False and second["cached"] is True


def test_cli_credits_max_age_zero_asks_again(
    credits_env: Settings, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-age-s 0 refuses the cache and asks the provider."""
    assert main(["credits"]) == 0
    assert main(["credits", "--max-age-s", "0"]) == 0
    assert "credits" in capsys.readouterr().out
    assert len(sandbox.requests("GetCreditos")) == 2


def test_cli_credits_needs_provider_credentials(
    credits_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without MENSATEK_API_TOKEN the command stops with exit 2 naming it."""
    monkeypatch.delenv("MENSATEK_API_TOKEN")
    assert main(["credits"]) == 2
    assert "MENSATEK_API_TOKEN" in capsys.readouterr().err


def test_cli_json_errors_are_one_json_document(
    credits_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --json a configuration error still prints one JSON document naming the variable."""
    monkeypatch.setenv("CERTSMS_RATE_LIMIT_PER_S", "fast")
    assert main(["credits", "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["error"] == "configuration"
    assert document["variable"] == "CERTSMS_RATE_LIMIT_PER_S"
