"""The console in a real browser (Chromium from the OS packages, driven by Playwright)
against the real web process, Redis, worker and sandbox. Each test saves screenshots
of the pages it visits: to ``docs/console/`` with ``UPDATE_SCREENSHOTS=1`` (the
pictures in the docs), else to a scratch directory (a test run leaves the tree clean)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from certsms.worker.commands.stack import Stack
from certsms.worker.jobs.store import JobStatus
from certsms.worker.web.console.users import hash_password
from tests.fixtures.jobs import wait_for
from tests.fixtures.sandbox import SandboxHandle

SCREENSHOTS = (
    Path(__file__).resolve().parents[3] / "docs" / "console"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / f"certsms-console-{os.getpid()}"
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
OPERATOR, OPERATOR_PASSWORD = "olga", "operator-pw-1"
SEND = {
    "Remitente": "ACME",
    "Mensaje": "Su notificacion esta disponible",
    "Destinatarios": [{"Movil": "34600000001"}, {"Movil": "34600000002"}],
    "Contacto": "ACME S.L.",
    "Telcontacto": "900000000",
    "Cifcontacto": "B00000000",
}


def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A Playwright page in the system's Chromium (skipped with one line when absent)."""
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        pytest.skip("browser tests need Chromium and playwright: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1200, "height": 900}
        )
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


@pytest.fixture
def console_stack(make_stack: Callable[..., Stack]) -> Stack:
    """The stack with one console operator."""
    users = f"{OPERATOR}=operator:{hash_password(OPERATOR_PASSWORD)}"
    return make_stack(
        console_users=SecretStr(users),
        retry_min_backoff_ms=50,
        retry_max_backoff_ms=200,
        breaker_cooldown_s=30.0,
    )


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _log_in(page: Any, stack: Stack) -> None:
    page.goto(stack.web_url + "/console/")
    page.get_by_label("Name").fill(OPERATOR)
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    _shot(page, "login")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def _evidence_stored(stack: Stack, sandbox: SandboxHandle, job_id: str) -> None:
    def done() -> bool:
        status = stack.store.status(job_id)
        if status in (JobStatus.FAILED, JobStatus.DEAD):
            raise AssertionError(f"job {job_id} is {status}")
        if status in (JobStatus.SENT, JobStatus.DELIVERED, JobStatus.CERTIFIED):
            sandbox.tick()  # the provider's time passes; it calls back by itself
            sandbox.wait_callbacks(timeout_s=5)
        return status is JobStatus.EVIDENCE_STORED

    wait_for(done, timeout_s=60)


def test_console_finds_a_job_by_reference_and_downloads_its_certificate(
    console_stack: Stack, sandbox: SandboxHandle, browser_page: Any, tmp_path: Path
) -> None:
    """Log in, search a reference, open the job, download a certificate whose SHA-256 is
    the one shown, verify now, then retry a dead letter from its page."""
    from certsms.tasks import enqueue

    stack, page = console_stack, browser_page
    job_id = enqueue("send", {**SEND, "Referenciausuario": "order-8812"})
    _evidence_stored(stack, sandbox, job_id)
    _log_in(page, stack)
    _shot(page, "overview")

    page.get_by_role("link", name="Jobs").click()
    page.get_by_label("Search").fill("order-8812")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name=f"{job_id[:12]}…").click()
    assert page.locator("#job-status").inner_text() == "evidence_stored"
    assert page.locator("#job-reference").inner_text() == "order-8812"
    _shot(page, "job")

    shown = page.locator("#evidence .sha").first.get_attribute("data-sha256")
    with page.expect_download() as download_info:
        page.locator("#evidence a[download]").first.click()
    saved = tmp_path / "certificate.zip"
    download_info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == shown
    assert saved.read_bytes()[:2] == b"PK"

    page.get_by_role("button", name="Verify now").click()
    assert "2 of 2 file(s) match" in page.locator("#verify-result").inner_text()

    rejected = enqueue("send", {**SEND, "Idmensaje": 987654})  # the sandbox rejects it
    wait_for(lambda: stack.store.status(rejected) is JobStatus.FAILED, timeout_s=60)
    page.get_by_role("link", name="Dead letters").click()
    page.get_by_role("link", name="Show dead letter").first.wait_for()
    _shot(page, "dead-letters")
    page.get_by_role("link", name="Show dead letter").first.click()
    _shot(page, "dead-letter")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Retry").click()
    assert f"Retried: job {rejected} is queued again." in page.get_by_role("status").inner_text()
    events = wait_for(
        lambda: [e for e in stack.store.events(count=500) if e.get("event") == "job_retried"]
    )
    assert events[0]["job_id"] == rejected


def test_console_shows_the_breaker_open_during_a_sandbox_outage(
    console_stack: Stack, browser_page: Any
) -> None:
    """With the sandbox answering 503 to everything, the guard page shows the breaker open."""
    from certsms.tasks import enqueue

    stack, page = console_stack, browser_page
    _log_in(page, stack)
    stack.sandbox_config(error_5xx_rate=1.0, error_5xx_status=503)
    for n in range(stack.settings.breaker_failure_threshold + 1):
        enqueue("send", {**SEND, "Referenciausuario": f"outage-{n}"})
    wait_for(lambda: _breaker_state(stack) == "open", timeout_s=60)
    page.get_by_role("link", name="Guard").click()
    assert page.locator("#breaker-state").inner_text() == "open"
    _shot(page, "guard-breaker-open")
    page.get_by_role("link", name="Overview").click()
    assert page.locator("#breaker-state").inner_text() == "open"
    stack.sandbox_config(error_5xx_rate=0.0)
    page.get_by_role("link", name="Guard").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset the guard").click()
    assert page.locator("#breaker-state").inner_text() == "closed"


def _breaker_state(stack: Stack) -> str:
    from certsms.worker.guard import ProviderGuard

    snapshot: dict[str, Any] = ProviderGuard(stack.redis, stack.settings).snapshot()
    return str(snapshot["breaker"]["state"])
