"""The configuration table of the README, generated from :class:`Settings`.

``python -m config.table`` prints it; a test checks that every setting has a
description here and that README.md lists every variable.
"""

from __future__ import annotations

from pydantic import SecretStr

from config.settings import Settings, variable_name

DESCRIPTIONS: dict[str, str] = {
    "redis_url": "Redis for the broker, job records, guard and events",
    "mensatek_api_user": "API User from the Mensatek panel (required by processes that call it)",
    "mensatek_api_token": "API Token from the Mensatek panel (secret; never logged)",
    "mensatek_base_url": "Provider base URL; point it at the sandbox for development",
    "namespace": "Prefix of every Redis key certsms writes, the broker's included",
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
    "rate_limit_per_s": "Global request rate across all processes and hosts",
    "rate_limit_send_per_s": "Sub-budget for sends (below the global rate)",
    "rate_limit_query_per_s": "Sub-budget for queries (report, credits, files, certificates)",
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
    "callback_user": "Basic user the provider's callbacks must present",
    "callback_password": "Basic password of the callbacks (secret)",
    "callback_insecure": "Accept callbacks without credentials (explicit opt-in; warns)",
    "callback_max_body_bytes": "Largest callback body accepted",
    "intake_token": "Bearer token of the HTTP intake API (secret)",
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
    """The README's configuration table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name in Settings.model_fields:
        rows.append(f"| `{variable_name(name)}` | `{_default(name)}` | {DESCRIPTIONS[name]} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
