"""The configuration page (``docs/configuration.md``), generated from :class:`Settings`.

:func:`configuration_page` renders the whole page and :func:`markdown_table` its
table of variables; ``docs/generate.py`` writes the page and ``tests/test_docs.py``
fails when the committed page differs from it. Every setting needs a description
in :data:`DESCRIPTIONS`. ``python -m config.table`` prints the table.
"""

from __future__ import annotations

import typing

from pydantic import SecretStr

from certsms.config.settings import Settings, variable_name

PAGE_PATH = "docs/configuration.md"
"""Where the generated page lives, relative to the repository root."""
REGENERATE = ".venv/bin/python docs/generate.py"
"""The command that rewrites the generated page."""

DESCRIPTIONS: dict[str, str] = {
    "redis_url": "Redis for the broker, job records, guard and events",
    "mensatek_api_user": "API User from the Mensatek panel (required by processes that call it)",
    "mensatek_api_token": "API Token from the Mensatek panel (secret; never logged)",
    "mensatek_base_url": "Provider base URL; point it at the sandbox for development",
    "namespace": "Prefix of every Redis key certsms writes, the broker's included",
    "redis_sentinels": "Sentinels watching the primary (`host:port,…`); REDIS_URL then gives "
    "only the password, database and TLS (or use a `redis+sentinel://` REDIS_URL)",
    "redis_master_name": "The primary's name as the Sentinels know it (`sentinel monitor NAME`)",
    "redis_sentinel_password": "Password of the Sentinels themselves, when they require one",
    "redis_require_durable": "Refuse to start when Redis keeps no AOF/RDB or may evict keys "
    "(otherwise a loud warning at start-up)",
    "redis_connect_timeout_s": "How long opening a Redis connection may take",
    "redis_retry_window_s": "How long a worker keeps retrying a Redis command on a broken "
    "connection (restart, failover) before it fails; one-shot CLI commands use 3 s unless "
    "this is set",
    "redis_web_retry_window_s": "The same for the web process, which answers 503 after it",
    "redis_wait_replicas": "Replicas that must hold each job write before it is acknowledged "
    "(`WAIT`; 0: do not wait; 1 with Sentinel)",
    "redis_wait_timeout_ms": "How long to wait for those replicas before going on with a warning",
    "function_send": "Path of the send function",
    "function_cancel": "Path of cancel (inferred name)",
    "function_reschedule": "Path of reschedule (inferred name)",
    "function_certificate": "Path of the certificate download",
    "function_report": "Path of the report",
    "function_upload": "Path of the library upload",
    "function_list_files": "Path of the library listing (inferred name)",
    "function_delete_file": "Path of the library delete (inferred name)",
    "function_credits": "Path of the credits query",
    "connect_timeout_s": "HTTP connect timeout",
    "read_timeout_s": "HTTP read timeout (a send that times out becomes `uncertain`)",
    "transport_retries": "Retries inside one client call, only where safe",
    "transport_backoff_s": "Base of the jittered exponential backoff of those retries",
    "send_report": "Send `Report=1` so the provider posts status callbacks (enable the "
    "real-time reports in its panel); unset: on when `CERTSMS_CALLBACK_USER` or "
    "`CERTSMS_CALLBACK_INSECURE` is set",
    "recipients_encoding": "`Destinatarios` on the wire: `json_string` (a JSON-encoded "
    "string, as the v7 docs' example) or `array` (a native JSON array)",
    "contract_types_needing_pdf": "Comma-separated `Tipocontrato` values known to need a "
    "PDF (`(FILE:…)`/`(BASE64:…)`) in the message; other contract types may go without one",
    "credit_check_interval_s": "While the account lacks credit: how often waiting sends "
    "check the (cached) balance, and at most one send is tried per interval",
    "rate_limit_per_s": "Global request rate across all processes and hosts",
    "rate_limit_send_per_s": "Sub-budget for sends (below the global rate)",
    "rate_limit_query_per_s": "Sub-budget for queries (report, credits, files, date-range "
    "certificates)",
    "rate_limit_certificate_per_s": "Sub-budget for per-recipient certificate downloads "
    "(default: the send rate, so evidence keeps pace with sends)",
    "range_download_interval_s": "At most one date-range certificate download per interval",
    "limiter_max_sleep_s": "Longer waits re-enqueue the job with a delay instead of sleeping",
    "limiter_jitter_allowance_s": "Slack added to each request's spacing so no 1 s window "
    "ever holds more than the limit",
    "limiter_burst": "Extra requests allowed at once above the smooth rate (keep 0)",
    "breaker_failure_threshold": "Consecutive unhealthy answers that open the breaker",
    "breaker_cooldown_s": "First cool-down of an open breaker (doubles each time)",
    "breaker_max_cooldown_s": "Cap of the breaker cool-down",
    "breaker_auth_cooldown_s": "Cool-down after an authentication failure",
    "memo_ttl_s": "How long a rejected request is remembered and refused locally",
    "memo_not_yet_ttl_s": "How long a 'not yet' answer (certificate or report -4) is remembered",
    "rejection_budget": "Provider rejections tolerated per window before traffic pauses",
    "rejection_window_s": "Window of the rejection budget",
    "credits_cache_ttl_s": "Credits answered from cache within this age",
    "report_cache_ttl_s": "Identical report queries answered from cache within this age",
    "job_retention_s": "Job records expire after this (default 90 days)",
    "events_maxlen": "Approximate length cap of the events stream",
    "events_max_age_s": "Events older than this are trimmed from the stream (default 7 days)",
    "send_max_retries": "Retries of a send for transient errors before it is dead",
    "query_max_retries": "Retries of other jobs for transient errors before they are dead",
    "retry_min_backoff_ms": "Smallest retry backoff (jittered, exponential)",
    "retry_max_backoff_ms": "Largest retry backoff",
    "max_redeliveries": "Redeliveries of one message before it is dead-lettered as poison",
    "heartbeat_timeout_s": "A worker silent this long is dead; its messages are redelivered",
    "redelivery_sweep_interval_s": "How often each worker looks for dead workers' messages",
    "in_flight_timeout_s": "An in-flight send older than this with no worker becomes uncertain",
    "worker_metrics_port": "Port where `certsms worker` serves all its processes' metrics (0: off)",
    "worker_metrics_host": "Address of that metrics endpoint",
    "hold_scheduled": "Hold scheduled sends in certsms until close to their time",
    "hold_lead_s": "With hold_scheduled: hand the send to the provider this early",
    "certified_codes": "Resultado codes that mean certified (comma-separated)",
    "poller_enabled": "Poll reports for messages without recent callbacks",
    "poller_schedule_s": "Poll back-off steps per message (comma-separated seconds)",
    "poller_callback_grace_s": "With callbacks, poll only messages silent for this long",
    "status_source": "How status is learned: callbacks, polling, both (poll only messages "
    "silent for the grace period), or auto (both when CERTSMS_CALLBACK_USER is set, else polling)",
    "poller_default_validity_s": "Validity period assumed when a send sets no Vpd/Vph/Vpm",
    "poller_margin_s": "Polling continues this long after the validity period "
    "(and Aceptacion) ends",
    "poller_batch_size": "Most report polls made per maintenance cycle",
    "maintenance_interval_s": "How often the elected maintenance runner (poller, sweepers) "
    "wakes in each worker process; 0 turns the runner off",
    "stalled_after_s": "A queued or running job this old with no dramatiq message "
    "is re-queued once",
    "evidence_retry_s": "A certified recipient without stored evidence this long gets its "
    "certificate download re-enqueued",
    "evidence_give_up_s": "Stop retrying a certificate download after this (loud alert)",
    "cert_dir": "Where certificate ZIPs and the manifest are stored",
    "evidence_min_free_mb": "Free space the evidence store needs before a certificate is "
    "downloaded; below it downloads wait (no provider request)",
    "evidence_unavailable_backoff_s": "How long a certificate download waits when the "
    "evidence store is full or unwritable, doubling per attempt up to evidence_retry_s",
    "callback_user": "Basic user the provider's callbacks must present",
    "callback_password": "Basic password of the callbacks (secret)",
    "callback_insecure": "Accept callbacks without credentials (explicit opt-in; warns)",
    "callback_max_body_bytes": "Largest callback body accepted",
    "intake_token": "Bearer token of the HTTP intake API (secret)",
    "metrics_token": "When set, `GET /metrics` wants `Authorization: Bearer <token>` (secret)",
    "max_recipients_per_send": "Most recipients one send may name; more is refused at enqueue",
    "web_routes": "What `certsms web` serves: `all`, `callbacks` or `intake` (one port each)",
    "web_header_timeout_s": "A request's line and headers must arrive within this, or it is closed",
    "web_body_timeout_s": "A request's body must arrive within this after its headers",
    "web_idle_timeout_s": "A connection with no request in progress is closed after this",
    "web_connection_limit": "Most connections `certsms web` holds open at once",
    "web_unauthorized_log_interval_s": "At most one log line per route per interval for "
    "refused credentials (the rest are counted)",
    "console_users": "Who may use the web console at /console/: comma-separated "
    "`NAME=ROLE:PASSWORD_HASH`, ROLE `viewer` (looks; phones masked) or `operator` (acts; sees "
    "phones); hashes from `certsms console hash-password` (secret; unset: console off)",
    "console_session_ttl_s": "A console login lasts this long",
    "log_format": "auto (JSON unless a TTY), json or console",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "log_pii": "1 shows phone numbers in logs (masked to the last 3 digits otherwise)",
}


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    if field.is_required():
        return "required"
    value = field.default
    if value is None or isinstance(value, SecretStr):
        return "—"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def markdown_table() -> str:
    """The table of every variable: name, default and meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name in Settings.model_fields:
        rows.append(f"| `{variable_name(name)}` | `{_default(name)}` | {DESCRIPTIONS[name]} |")
    return "\n".join(rows)


def _variables_of(kind: type) -> list[str]:
    """The variables whose field type is ``kind`` (or ``kind | None``)."""
    found = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        args = typing.get_args(annotation)
        if annotation is kind or typing.get_origin(annotation) is kind or kind in args:
            found.append(f"`{variable_name(name)}`")
    return found


def _join(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


_INTRO = """\
For operators: every environment variable certsms reads, with its default.
One typed settings object is read from the environment once, at start-up, and
passed down (`config/settings.py`, pydantic-settings). `REDIS_URL` and the
`MENSATEK_*` variables keep their plain names; everything else is `CERTSMS_*`.
Every duration and limit carries its unit in its name. A bad value stops the
process with one line naming the variable (`CERTSMS_RATE_LIMIT_PER_S: Input
should be greater than 0`) and exit code 2. Secrets ({secrets}) have no
default and are never printed, also not in `repr`.

The provider credentials are demanded only by processes that call the provider
(`certsms worker`, `certsms up`, `certsms credits`); an application that only
enqueues needs nothing but `REDIS_URL` (and `CERTSMS_NAMESPACE` if not the
default). Four of the nine function paths are inferred from naming patterns
([provider.md §1.2](provider.md#12-function-paths)), so every path is a
setting: a wrong guess is corrected with `CERTSMS_FUNCTION_CANCEL=…`, not a
release.
"""

_FORMATS = """\
Lists ({lists}) are comma-separated. Booleans ({booleans}) accept `1/0` and
`true/false`. `CERTSMS_NAMESPACE` lets two deployments share one Redis: every
key, the broker's queues included, starts with it.

Where each setting acts: the rate limits, breaker, memo and caches in
[guard.md](guard.md); send retries and held sends in [jobs.md](jobs.md); the
poller, sweepers, callbacks and evidence store in
[status-tracking.md](status-tracking.md); workers, redelivery, logs and metrics
in [operating.md](operating.md); timeouts and transport retries in
[mensatek-library.md](mensatek-library.md#retries).
"""


def configuration_page() -> str:
    """The text of ``docs/configuration.md``."""
    header = (
        f"<!-- Generated from config/settings.py and config/table.py by docs/generate.py. "
        f"Do not edit: change those, then run `{REGENERATE}`. -->"
    )
    intro = _INTRO.format(secrets=_join(_variables_of(SecretStr)))
    formats = _FORMATS.format(
        lists=_join(_variables_of(tuple)), booleans=_join(_variables_of(bool))
    )
    parts = [
        header,
        "# Configuration",
        intro,
        "## Variables",
        markdown_table(),
        "## Formats",
        formats,
    ]
    return "\n\n".join(part.strip("\n") for part in parts) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
