"""A slice of the suite under CPU load: the promises hold on a starved machine.

Four busy loops compete with the slice on this machine's cores (issue 13: four
``python3 -c 'while True: pass'`` loops made a rejected payload reach the provider
twice). The slice holds the tests of those promises; it must pass as it does on an
idle machine. Deadlines inside the tests scale with the load
(``tests.fixtures.jobs.load_factor``); the promises do not.

The rate test is measured where the provider measures it: the sandbox stamps each
request with the kernel's receive time of its bytes (not when a starved thread got
round to it), and the limit must hold there. The slice runs as docs/guard.md advises
for a host starved for long stretches: ``CERTSMS_LIMITER_JITTER_ALLOWANCE_S=0.1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOGS = 4
STARVED_HOST_ALLOWANCE_S = 0.1
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging")
SLICE = (
    "tests/worker/guard/test_guard_processes.py::test_guard_rate_accuracy_measured_from_the_sandbox_log",
    "tests/worker/guard/test_guard_processes.py::test_guard_identical_rejected_burst_makes_one_request",
    "tests/worker/guard/test_guard_stalls.py::test_guard_stalled_lock_holder_and_successor_make_one_rejected_request",
    "tests/tasks/test_actors.py::test_jobs_provider_rejection_fails_after_one_request",
    "tests/tasks/test_actors.py::test_jobs_report_and_certificate",
)


@pytest.fixture
def cpu_hogs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Four busy-looping processes for the length of the test, then stopped."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(HOGS)]
    try:
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=10)


@pytest.mark.serial
def test_suite_slice_passes_with_four_cpu_hogs(cpu_hogs: list[subprocess.Popen[bytes]]) -> None:
    """The rate-limit, one-request-per-rejection, stalled-holder and report tests pass while four
    busy loops compete for the CPUs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTSMS_", "MENSATEK_"))}
    # a host starved for long stretches is run as docs/guard.md says: a wider jitter
    # allowance (the default 40 ms let 11 requests into one second in about 1 run in 15)
    env["CERTSMS_LIMITER_JITTER_ALLOWANCE_S"] = str(STARVED_HOST_ALLOWANCE_S)
    done = subprocess.run(
        [*PYTEST, *SLICE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert all(hog.poll() is None for hog in cpu_hogs)  # the load lasted the whole run
    why = [line for line in done.stdout.splitlines() if line.startswith(("E ", "FAILED"))]
    assert done.returncode == 0, "\n".join(why[-40:]) or done.stdout[-3000:]
