"""A small soak (the CI-sized ``bench.soak``): mixed jobs through worker processes with
the sandbox's spam blocking at its default thresholds and faults injected."""

from __future__ import annotations

from pathlib import Path

from bench.soak import Admin, SoakConfig, run_soak
from certsms.config.settings import Settings
from tests.fixtures.sandbox import SandboxHandle


def test_guard_soak_300_mixed_jobs_never_blocks_the_account(
    jobs_settings: Settings, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """300 mixed jobs (sends, rejected sends, uploads, credits, listings, repeated reports,
    certificates, cancels) with 5xx, resets, HTML pages and latency: no block episode,
    no repeated query, each rejected payload reaches the provider once, nothing sent twice."""
    config = SoakConfig(
        jobs=300, rate_limit_per_s=40, rate_limit_send_per_s=30, rate_limit_query_per_s=20
    )
    figures = run_soak(
        jobs_settings, Admin(sandbox.base_url, sandbox.admin_url), config, tmp_path / "worker.log"
    )
    assert sandbox.state()["config"]["block_threshold"] == 10  # the default rule is on
    assert figures["block_episodes"] == 0 and figures["blocked_requests"] == 0
    assert figures["repeated_queries"] == 0
    # each distinct rejected payload (and the unknown report) reaches the provider at most
    # once; one may never reach it, when a fault made that send uncertain before it did
    assert 1 <= figures["rejections"] <= config.invalid_distinct + 1
    assert figures["duplicate_sends"] == 0
    faults = {k: v for k, v in figures["requests_by_outcome"].items() if k.startswith("fault")}
    assert sum(faults.values()) > 0  # the faults did happen
    outcomes = figures["job_outcomes"]
    assert not any(key.endswith(":dead") for key in outcomes)
    assert figures["failed_by_error"].get("RepeatedRejection", 0) >= 1
