"""The sandbox's configuration: one dataclass, changeable at run time.

Where the provider's behaviour is unknown (see docs/provider.md §7 and §10) the
default here is the inferred one and every value can be changed at start
(``SandboxConfig(...)``, the environment, CLI flags) or at run time
(``POST /_admin/config``). Every duration carries its unit in its name.

Environment: every field ``name`` is read from ``CERTSMS_SANDBOX_<NAME>`` by
:meth:`SandboxConfig.from_env` (what ``certsms sandbox`` uses; a flag given on
the command line wins). Booleans take ``1/true/yes/on``; dicts a JSON object;
tuples a JSON array or a comma-separated list.

Where the v7 docs say something a client may get wrong, the sandbox holds the
client to the docs by default (switch off for a lenient sandbox):

- ``report_gates_callbacks`` (True): status callbacks only for recipients whose
  send had ``Report=1`` ("If you want to receive reports … in a script on your
  website").
- ``links_need_flag`` (True): ``(FILE:…)``/``(BASE64:…)``/``(LINK:…)``/``(IMG:…)``
  are macros only with ``Links=1`` ("Links are sent … specifying the Links=1
  parameter"); without it they are plain text.
- ``pdf_contract_types`` ((18,)): the contract types refused with ``Res -3``
  without a PDF; other contract types (a basic Contract SMS accepted by SMS
  reply) go without one.
- ``strict`` (False): refuse what the real API may refuse (query-string params,
  ``Correo``/``Passwd``, a past ``Fecha``, non-POST, library names that break
  "15 characters, only letters and numbers"); see :mod:`sandbox.strict`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

NestedFormat = Literal["single_quoted", "json"]
AuthFailureMode = Literal["res", "http401"]
CallbackFormat = Literal["json", "form"]
CertificateFormat = Literal["zip", "pdf"]

ENV_PREFIX = "CERTSMS_SANDBOX_"

CERTIFIED_PATH: tuple[int, ...] = (1002, 10, 11, 14)
CONTRACT_PATH: tuple[int, ...] = (1002, 10, 11, 17)

# Values a caller may not see in /_admin/config answers.
SECRET_FIELDS = frozenset({"token", "callback_password", "extra_accounts"})


class ConfigUpdateError(ValueError):
    """Raised when a run-time config change names an unknown field or a bad value."""


@dataclass
class SandboxConfig:
    """Everything the sandbox can be told, with its (mostly inferred) default."""

    # --- server and account ------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 0
    threads: int = 16
    user: str = "demo"
    token: str = "demo-token"
    extra_accounts: dict[str, str] = field(default_factory=dict)  # user -> token
    initial_credits: float = 10_000.0
    credits_per_message: float = 9.0
    no_credit_res: int = -2  # Res of a send refused for lack of credits (0 or negative)

    # --- where the v7 docs and our client disagree (flip each default when the client follows)
    report_gates_callbacks: bool = True  # status callbacks only after Report=1
    links_need_flag: bool = True  # macros are plain text unless Links=1
    strict: bool = False  # refuse query-string params, Correo/Passwd, past Fecha, non-POST, names
    pdf_contract_types: tuple[int, ...] = (18,)  # contract types refused (-3) without a PDF

    # --- status progression ------------------------------------------------------
    progression_interval_s: float = 0.0  # 0 = only on POST /_admin/tick
    certified_path: tuple[int, ...] = CERTIFIED_PATH
    contract_path: tuple[int, ...] = CONTRACT_PATH
    failure_phones: dict[str, int] = field(default_factory=dict)  # phone -> final failure code
    invalid_phones: tuple[str, ...] = ()  # "mobile is not correct": not sent (NoEnviados)

    # --- response shapes -----------------------------------------------------------
    nested_format: NestedFormat = "single_quoted"
    code_wrap_files: bool = False  # wrap Ficheros in <code>…</code> like the doc example
    auth_failure_mode: AuthFailureMode = "res"
    certificate_phone_format: CertificateFormat = "zip"  # Idmensaje+Telefono: ZIP or bare PDF

    # --- spam blocking -------------------------------------------------------------
    block_threshold: int = 10  # erroneous/repeated requests within the window
    block_window_s: float = 60.0
    block_duration_s: float = 300.0
    block_status: int = 403
    block_body: str = "Access temporarily blocked: too many erroneous requests"
    repeat_window_s: float = 5.0  # identical credit/report queries within this count
    range_download_interval_s: float = 900.0

    # --- faults (rates are shares of API requests, 0..1) ----------------------------
    latency_ms: int = 0
    error_5xx_rate: float = 0.0
    error_5xx_status: int | None = None  # None = 500 or 503 at random; else always this status
    reset_rate: float = 0.0
    html_rate: float = 0.0
    html_status: int = 502
    accept_then_timeout_rate: float = 0.0
    timeout_hold_s: float = 5.0
    fault_seed: int | None = None

    # --- callbacks -----------------------------------------------------------------
    callback_url: str | None = None
    callback_user: str | None = None
    callback_password: str | None = None
    callback_format: CallbackFormat = "json"
    callback_drop_rate: float = 0.0
    callback_retries: int = 3
    callback_retry_delay_s: float = 0.2
    callback_timeout_s: float = 5.0

    # --- file library ----------------------------------------------------------------
    library_max_files: int = 100
    library_max_bytes: int = 50 * 1024 * 1024
    library_max_file_bytes: int = 5 * 1024 * 1024
    trial_account: bool = False  # trial accounts cannot upload: CargarFichero answers Res -18

    # --- request log -------------------------------------------------------------------
    log_max_entries: int = 20_000

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        defaults: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> SandboxConfig:
        """The config from ``CERTSMS_SANDBOX_<FIELD>`` variables.

        Precedence: ``overrides`` (CLI flags given) > environment > ``defaults``
        (the CLI's own defaults) > the field defaults. A bad value raises
        :class:`ConfigUpdateError` naming the variable.
        """
        config = cls()
        config.apply(dict(defaults or {}))
        for item in dataclasses.fields(cls):
            variable = ENV_PREFIX + item.name.upper()
            if variable not in environ:
                continue
            try:
                value = _env_value(getattr(config, item.name), environ[variable])
                config.apply({item.name: value})
            except ValueError as exc:  # ConfigUpdateError and JSON errors alike
                raise ConfigUpdateError(f"{variable}: {exc}") from None
        config.apply(dict(overrides or {}))
        return config

    def accounts(self) -> dict[str, str]:
        """Every account the sandbox knows: user -> token."""
        return {**self.extra_accounts, self.user: self.token}

    def copy(self) -> SandboxConfig:
        """An independent copy (used to restore the start config on reset)."""
        return dataclasses.replace(
            self,
            extra_accounts=dict(self.extra_accounts),
            failure_phones=dict(self.failure_phones),
        )

    def public(self) -> dict[str, Any]:
        """The config as JSON-ready values, secrets left out."""
        data = dataclasses.asdict(self)
        for name in SECRET_FIELDS:
            data.pop(name, None)
        data["extra_accounts"] = sorted(self.extra_accounts)
        return data

    def apply(self, changes: dict[str, Any]) -> None:
        """Change fields in place from JSON values; unknown fields or bad types raise."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        staged: dict[str, Any] = {}
        for name, raw in changes.items():
            if name not in fields:
                raise ConfigUpdateError(f"unknown config field: {name}")
            staged[name] = _coerce(name, getattr(self, name), raw)
        for name, value in staged.items():
            setattr(self, name, value)


def _env_value(current: Any, text: str) -> Any:
    """An environment string as the JSON-like value :func:`_coerce` expects."""
    if isinstance(current, dict):
        return json.loads(text)
    if isinstance(current, tuple):
        stripped = text.strip()
        if stripped.startswith("["):
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return text


def _coerce(name: str, current: Any, raw: Any) -> Any:
    """Convert a JSON value to the type of the field's current value."""
    try:
        if raw is None:
            if name in _NULLABLE:
                return None
            raise ConfigUpdateError(f"{name} may not be null")
        if isinstance(current, bool):
            if isinstance(raw, str):
                return raw.strip().lower() in {"1", "true", "yes", "on"}
            return bool(raw)
        if name in _NULLABLE and current is None:
            return int(raw) if name in _NULLABLE_INTS else str(raw)
        if isinstance(current, int) and not isinstance(current, bool):
            value = int(raw)
            if name == "no_credit_res" and value > 0:
                raise ConfigUpdateError("no_credit_res must be 0 or negative")
            return value
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, tuple):
            if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
                raise ConfigUpdateError(f"{name} must be an array")
            if name in _STRING_TUPLES:
                return tuple(str(v).strip() for v in raw)
            return tuple(int(v) for v in raw)
        if isinstance(current, dict):
            if not isinstance(raw, dict):
                raise ConfigUpdateError(f"{name} must be an object")
            if name == "failure_phones":
                return {str(k): int(v) for k, v in raw.items()}
            return {str(k): str(v) for k, v in raw.items()}
        if name in _CHOICES and raw not in _CHOICES[name]:
            raise ConfigUpdateError(f"{name} must be one of {sorted(_CHOICES[name])}")
        return str(raw)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigUpdateError):
            raise
        raise ConfigUpdateError(f"bad value for {name}: {raw!r}") from None


_STRING_TUPLES = frozenset({"invalid_phones"})
_NULLABLE_INTS = frozenset({"fault_seed", "error_5xx_status"})
_NULLABLE = frozenset({"callback_url", "callback_user", "callback_password"}) | _NULLABLE_INTS
_CHOICES: dict[str, frozenset[str]] = {
    "nested_format": frozenset({"single_quoted", "json"}),
    "auth_failure_mode": frozenset({"res", "http401"}),
    "callback_format": frozenset({"json", "form"}),
    "certificate_phone_format": frozenset({"zip", "pdf"}),
}
