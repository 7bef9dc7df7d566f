"""Settings from the environment: names in errors, secrets hidden, units parsed."""

from __future__ import annotations

import pytest

from certsms.config.errors import ConfigError
from certsms.config.settings import DEFAULT_BASE_URL, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("CERTSMS_", "MENSATEK_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)


def test_settings_defaults_match_the_reference() -> None:
    """Defaults: the v7 base URL, the nine function paths, the namespace."""
    settings = load_settings()
    assert settings.mensatek_base_url == DEFAULT_BASE_URL
    assert settings.function_path("send") == "EnviarSMSCERTIFICADO"
    assert settings.function_path("certificate") == "GetSMSCERTIFICADO"
    assert settings.key("job", "x") == "certsms:job:x"


def test_settings_read_plain_and_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """REDIS_URL and MENSATEK_* keep plain names; the rest is CERTSMS_*."""
    monkeypatch.setenv("REDIS_URL", "redis://example:6380/2")
    monkeypatch.setenv("MENSATEK_BASE_URL", "http://127.0.0.1:9/v7")
    monkeypatch.setenv("CERTSMS_NAMESPACE", "tenant-a")
    monkeypatch.setenv("CERTSMS_FUNCTION_CANCEL", "CancelarSMSCert")
    monkeypatch.setenv("CERTSMS_CERTIFIED_CODES", "14, 17")
    settings = load_settings()
    assert settings.redis_url == "redis://example:6380/2"
    assert settings.mensatek_base_url == "http://127.0.0.1:9/v7/"
    assert settings.key("events") == "tenant-a:events"
    assert settings.function_path("cancel") == "CancelarSMSCert"
    assert settings.certified_codes == (14, 17)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CERTSMS_RATE_LIMIT_PER_S", "fast"),
        ("CERTSMS_RATE_LIMIT_PER_S", "0"),
        ("REDIS_URL", "localhost:6379"),
        ("MENSATEK_BASE_URL", "ftp://x"),
        ("CERTSMS_NAMESPACE", "a b"),
        ("CERTSMS_LOG_FORMAT", "xml"),
    ],
)
def test_settings_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A bad value stops with one line that names the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")
    assert "\n" not in str(info.value)


def test_settings_missing_credentials_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes that talk to the provider stop naming the missing credential."""
    with pytest.raises(ConfigError, match="MENSATEK_API_USER"):
        load_settings().require_provider_credentials()
    monkeypatch.setenv("MENSATEK_API_USER", "acme")
    with pytest.raises(ConfigError, match="MENSATEK_API_TOKEN"):
        load_settings().require_provider_credentials()
    monkeypatch.setenv("MENSATEK_API_TOKEN", "tok-123456")
    load_settings().require_provider_credentials()


def test_settings_never_show_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets are absent from repr and str."""
    monkeypatch.setenv("MENSATEK_API_TOKEN", "tok-very-secret")
    monkeypatch.setenv("CERTSMS_CALLBACK_PASSWORD", "cb-very-secret")
    monkeypatch.setenv("CERTSMS_INTAKE_TOKEN", "in-very-secret")
    settings = load_settings()
    text = repr(settings) + str(settings)
    for secret in ("tok-very-secret", "cb-very-secret", "in-very-secret"):
        assert secret not in text


def test_settings_every_field_is_described_in_the_configuration_table() -> None:
    """The configuration page's table is generated from Settings: every field has a description."""
    from certsms.config.settings import Settings
    from certsms.config.table import DESCRIPTIONS, markdown_table

    assert set(DESCRIPTIONS) == set(Settings.model_fields)
    table = markdown_table()
    assert "`CERTSMS_RATE_LIMIT_PER_S`" in table
    assert "`REDIS_URL`" in table


def test_settings_every_variable_is_on_the_configuration_page() -> None:
    """docs/configuration.md documents every variable the settings read."""
    from pathlib import Path

    from certsms.config.settings import Settings, variable_name

    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    missing = [variable_name(f) for f in Settings.model_fields if variable_name(f) not in page]
    assert missing == []
