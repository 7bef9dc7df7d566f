"""Transport retries inside one guarded call: each one a new request through the guard."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pydantic import SecretStr

from certsms.mensatek.client import MensatekClient
from certsms.mensatek.errors import ProviderUnavailable
from certsms.mensatek.payloads import request_from_payload
from certsms.worker.guard import Budget, ProviderGuard
from tests.fixtures.guard import MakeGuard, ManualClock
from tests.fixtures.sandbox import SandboxHandle


def _on_sandbox(sandbox: SandboxHandle, **overrides: object) -> dict[str, object]:
    return {
        "mensatek_base_url": sandbox.base_url,
        "mensatek_api_user": sandbox.user,
        "mensatek_api_token": SecretStr(sandbox.token),
        "transport_backoff_s": 0.0,
        **overrides,
    }


def _report_fails(guard: ProviderGuard) -> None:
    """One guarded report call (Idmensaje 123) that ends in ProviderUnavailable."""
    req = request_from_payload("report", {"Idmensaje": 123})
    with (
        MensatekClient(guard._settings, sleep=lambda s: None) as client,
        pytest.raises(ProviderUnavailable),
    ):
        guard.call(
            function="report",
            budget=Budget.QUERY,
            fingerprint=None,
            fn=lambda: client.report(req),  # type: ignore[arg-type]
        )


def test_date_range_download_is_never_repeated_inside_one_call(
    make_guard: MakeGuard, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """One date-range certificate call against a sandbox answering 503 makes one request."""
    sandbox.configure(error_5xx_rate=1.0, error_5xx_status=503)
    guard = make_guard(**_on_sandbox(sandbox, transport_retries=3, range_download_interval_s=1.0))
    req = request_from_payload(
        "certificate", {"Fechainicio": "2026-01-01 00:00", "Fechafin": "2026-01-02 00:00"}
    )
    with MensatekClient(guard._settings) as client, pytest.raises(ProviderUnavailable):
        guard.call(
            function="certificate",
            budget=Budget.RANGE_DOWNLOAD,
            fingerprint=None,
            fn=lambda: client.certificate(req, tmp_path / "range.zip"),  # type: ignore[arg-type]
        )
    assert len(sandbox.requests("GetSMSCERTIFICADO")) == 1
    assert guard.breaker.state(guard.now_s())["failures"] == 1


def test_each_transport_retry_takes_its_own_slot_and_counts_for_the_breaker(
    make_guard: MakeGuard, manual_clock: ManualClock, sandbox: SandboxHandle
) -> None:
    """A report retried twice after 503s is three requests: three slots, three failures."""
    sandbox.configure(error_5xx_rate=1.0, error_5xx_status=503)
    guard = make_guard(
        **_on_sandbox(sandbox, transport_retries=2, rate_limit_query_per_s=1.0),
        breaker_failure_threshold=10,
        limiter_max_sleep_s=5.0,
    )
    _report_fails(guard)
    assert len(sandbox.requests("GetReportSMSCERTIFICADO")) == 3
    # the first request had a free slot; each retry waited for the next one (1 per second)
    assert len(manual_clock.slept) == 2 and all(wait >= 0.95 for wait in manual_clock.slept)
    assert guard.breaker.state(guard.now_s())["failures"] == 3


def test_retries_stop_when_the_breaker_opens(make_guard: MakeGuard, sandbox: SandboxHandle) -> None:
    """The failure that opens the breaker ends the call: no retry goes out past it."""
    sandbox.configure(error_5xx_rate=1.0, error_5xx_status=503)
    guard = make_guard(**_on_sandbox(sandbox, transport_retries=5), breaker_failure_threshold=2)
    _report_fails(guard)
    assert len(sandbox.requests("GetReportSMSCERTIFICADO")) == 2
    assert guard.breaker.state(guard.now_s())["state"] == "open"


def test_real_time_retries_are_spaced_by_the_limiter_never_a_burst(
    make_guard: MakeGuard, sandbox: SandboxHandle
) -> None:
    """Read from the sandbox's log: retries of one call arrive at most one per slot."""
    sandbox.configure(error_5xx_rate=1.0, error_5xx_status=503)
    rate = 5.0
    guard = make_guard(
        real_time=True,
        **_on_sandbox(sandbox, transport_retries=3, rate_limit_query_per_s=rate),
        breaker_failure_threshold=10,
    )
    with MensatekClient(guard._settings) as client, pytest.raises(ProviderUnavailable):
        guard.call(function="credits", budget=Budget.QUERY, fingerprint=None, fn=client.credits)
    times = [float(r["epoch_s"]) for r in sandbox.requests("GetCreditos")]
    assert len(times) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 / rate - 0.05, gaps  # a lower bound: a slow machine only widens it
