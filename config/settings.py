"""One typed settings object, read from the environment once at start-up.

``REDIS_URL``, ``MENSATEK_API_USER``, ``MENSATEK_API_TOKEN`` and ``MENSATEK_BASE_URL``
keep their plain names (they are shared with other tools); everything else is
``CERTSMS_<FIELD>``. Every duration and limit carries its unit in its name.

The provider credentials are not demanded by every process: a producer that only
enqueues never talks to Mensatek. Processes that do (worker, ``up``, ``credits``)
call :meth:`Settings.require_provider_credentials` at boot, which stops them with
the variable's name when a credential is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from certsms.config.errors import ConfigError

DEFAULT_BASE_URL = "https://api.mensatek.com/v7/"


class Settings(BaseSettings):
    """Everything certsms can be told, with its default. Options are keyword-only."""

    model_config = SettingsConfigDict(
        env_prefix="CERTSMS_",
        case_sensitive=False,
        frozen=True,
        extra="ignore",
        populate_by_name=True,
    )

    # --- connections and secrets -------------------------------------------------
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "redis_url")
    )
    mensatek_api_user: str | None = Field(
        default=None, validation_alias=AliasChoices("MENSATEK_API_USER", "mensatek_api_user")
    )
    mensatek_api_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MENSATEK_API_TOKEN", "mensatek_api_token")
    )
    mensatek_base_url: str = Field(
        default=DEFAULT_BASE_URL,
        validation_alias=AliasChoices("MENSATEK_BASE_URL", "mensatek_base_url"),
    )
    redis_sentinels: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_SENTINELS", "redis_sentinels")
    )
    redis_master_name: str = Field(default="mymaster", min_length=1)
    redis_sentinel_password: SecretStr | None = None
    redis_require_durable: bool = False
    redis_connect_timeout_s: float = Field(default=5.0, gt=0)
    redis_retry_window_s: float = Field(default=30.0, ge=0)
    redis_web_retry_window_s: float = Field(default=1.0, ge=0)
    redis_wait_replicas: int = Field(default=0, ge=0, le=16)
    redis_wait_timeout_ms: int = Field(default=1_000, ge=1)
    namespace: str = "certsms"

    # --- provider function paths (four are inferred; correctable without a release)
    function_send: str = "EnviarSMSCERTIFICADO"
    function_cancel: str = "CancelarSMSCERTIFICADO"
    function_reschedule: str = "ReprogramarSMSCERTIFICADO"
    function_certificate: str = "GetSMSCERTIFICADO"
    function_report: str = "GetReportSMSCERTIFICADO"
    function_upload: str = "CargarFichero"
    function_list_files: str = "ListarFicheros"
    function_delete_file: str = "BorrarFichero"
    function_credits: str = "GetCreditos"

    # --- HTTP client ---------------------------------------------------------------
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    transport_retries: int = Field(default=2, ge=0, le=10)
    transport_backoff_s: float = Field(default=0.5, ge=0)

    # --- the send on the wire (docs/provider.md §2.1) ---------------------------------
    send_report: bool | None = None  # None: on when callbacks can be received
    recipients_encoding: Literal["json_string", "array"] = "json_string"
    contract_types_needing_pdf: Annotated[tuple[int, ...], NoDecode] = (18,)
    credit_check_interval_s: int = Field(default=300, ge=1)

    # --- provider guard ------------------------------------------------------------
    rate_limit_per_s: float = Field(default=5.0, gt=0)
    rate_limit_send_per_s: float = Field(default=4.0, gt=0)
    rate_limit_query_per_s: float = Field(default=1.0, gt=0)
    rate_limit_certificate_per_s: float | None = Field(default=None, gt=0)
    range_download_interval_s: float = Field(default=900.0, ge=0)
    limiter_max_sleep_s: float = Field(default=5.0, ge=0)
    limiter_jitter_allowance_s: float = Field(default=0.04, ge=0)
    limiter_burst: float = Field(default=0.0, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=5.0, gt=0)
    breaker_max_cooldown_s: float = Field(default=600.0, gt=0)
    breaker_auth_cooldown_s: float = Field(default=3600.0, gt=0)
    memo_ttl_s: int = Field(default=86_400, ge=1)
    memo_not_yet_ttl_s: int = Field(default=300, ge=1)
    rejection_budget: int = Field(default=8, ge=1)
    rejection_window_s: int = Field(default=60, ge=1)
    credits_cache_ttl_s: int = Field(default=300, ge=0)
    report_cache_ttl_s: int = Field(default=60, ge=0)

    # --- jobs ------------------------------------------------------------------------
    job_retention_s: int = Field(default=90 * 86_400, ge=60)
    events_maxlen: int = Field(default=100_000, ge=100)
    events_max_age_s: int = Field(default=7 * 86_400, ge=60)
    send_max_retries: int = Field(default=8, ge=0)
    query_max_retries: int = Field(default=8, ge=0)
    retry_min_backoff_ms: int = Field(default=1_000, ge=0)
    retry_max_backoff_ms: int = Field(default=300_000, ge=0)
    max_redeliveries: int = Field(default=5, ge=1)
    heartbeat_timeout_s: int = Field(default=30, ge=5)
    redelivery_sweep_interval_s: int = Field(default=15, ge=1)
    in_flight_timeout_s: int = Field(default=300, ge=10)
    worker_metrics_port: int = Field(default=9191, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    hold_scheduled: bool = False
    hold_lead_s: int = Field(default=300, ge=0)

    # --- status tracking ---------------------------------------------------------------
    certified_codes: Annotated[tuple[int, ...], NoDecode] = (14, 17, 160, 181)
    poller_enabled: bool = True
    poller_schedule_s: Annotated[tuple[int, ...], NoDecode] = (120, 300, 900, 3600, 21600)
    poller_callback_grace_s: int = Field(default=1800, ge=0)
    status_source: Literal["auto", "callbacks", "polling", "both"] = "auto"
    poller_default_validity_s: int = Field(default=3 * 86_400, ge=60)
    poller_margin_s: int = Field(default=86_400, ge=0)
    poller_batch_size: int = Field(default=50, ge=1)
    maintenance_interval_s: float = Field(default=5.0, ge=0)
    stalled_after_s: int = Field(default=300, ge=10)
    evidence_retry_s: int = Field(default=900, ge=10)
    evidence_give_up_s: int = Field(default=7 * 86_400, ge=60)

    # --- evidence store and web --------------------------------------------------------
    cert_dir: Path = Path("./var/certificates")
    evidence_min_free_mb: float = Field(default=64.0, ge=0)
    evidence_unavailable_backoff_s: float = Field(default=60.0, gt=0)
    callback_user: str | None = None
    callback_password: SecretStr | None = None
    callback_insecure: bool = False
    callback_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    intake_token: SecretStr | None = None
    metrics_token: SecretStr | None = None
    max_recipients_per_send: int = Field(default=10_000, ge=1)
    web_routes: Literal["all", "callbacks", "intake"] = "all"
    web_header_timeout_s: float = Field(default=10.0, gt=0)
    web_body_timeout_s: float = Field(default=60.0, gt=0)
    web_idle_timeout_s: float = Field(default=30.0, gt=0)
    web_connection_limit: int = Field(default=1000, ge=10)
    web_unauthorized_log_interval_s: float = Field(default=10.0, ge=0)
    console_users: SecretStr | None = None
    console_session_ttl_s: int = Field(default=8 * 3600, ge=60)

    # --- logging -------------------------------------------------------------------------
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_pii: bool = False

    @field_validator(
        "certified_codes", "poller_schedule_s", "contract_types_needing_pdf", mode="before"
    )
    @classmethod
    def _int_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
            raise ValueError("must be a redis://, rediss://, unix:// or redis+sentinel:// URL")
        return value

    @field_validator("mensatek_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not value or any(c in value for c in " :{}*?[]"):
            raise ValueError("must be non-empty, without spaces, ':', braces or glob characters")
        return value

    @field_validator("console_users")
    @classmethod
    def _console_users(cls, value: SecretStr | None) -> SecretStr | None:
        # the format is checked here so a typo stops the process at boot (see
        # worker.web.console.users for the parser the console uses)
        if value is None:
            return value
        for entry in filter(None, (e.strip() for e in value.get_secret_value().split(","))):
            name, eq, rest = entry.partition("=")
            role, colon, password_hash = rest.partition(":")
            if not (eq and colon and name.strip() and password_hash):
                raise ValueError(
                    "each user must be NAME=ROLE:PASSWORD_HASH "
                    "(make the hash with `certsms console hash-password`)"
                )
            if role not in ("viewer", "operator"):
                raise ValueError(f"user {name!r}: role must be viewer or operator, not {role!r}")
        return value

    def require_provider_credentials(self) -> None:
        """Stop with the variable's name unless both provider credentials are set."""
        if not self.mensatek_api_user:
            raise ConfigError("MENSATEK_API_USER", "is required to talk to the provider")
        if self.mensatek_api_token is None or not self.mensatek_api_token.get_secret_value():
            raise ConfigError("MENSATEK_API_TOKEN", "is required to talk to the provider")

    @property
    def report_wanted(self) -> bool:
        """Whether sends carry ``Report=1``: ``send_report``, else whether callbacks can
        be received (a callback user, or ``callback_insecure``)."""
        if self.send_report is not None:
            return self.send_report
        return bool(self.callback_user) or self.callback_insecure

    def key(self, *parts: str) -> str:
        """A Redis key under this deployment's namespace: ``<namespace>:<part>:<part>``."""
        return ":".join((self.namespace, *parts))

    def function_path(self, name: str) -> str:
        """The configured provider path of a function named by its setting suffix."""
        return str(getattr(self, f"function_{name}"))


def variable_name(field: str) -> str:
    """The environment variable that sets a field."""
    if field.isupper():
        return field  # already the alias (REDIS_URL, MENSATEK_*)
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str) and first.isupper():
            return first
    return f"CERTSMS_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the process environment (``overrides`` win).

    Raises :class:`ConfigError` naming the first bad variable and what is wrong.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        raise ConfigError(variable_name(field), error["msg"]) from None
