"""``certsms up``: the whole stack as subprocesses, a job through the CLI, a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from certsms.worker.cli import main
from certsms.worker.commands.up import read_env_file

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "send.json"


def _cli(env: dict[str, str], *argv: str) -> dict[str, Any]:
    """Run ``certsms ARGV --json`` and return its JSON document."""
    done = subprocess.run(
        [sys.executable, "-m", "certsms.worker.cli", *argv, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.stdout.strip(), done.stderr
    return dict(json.loads(done.stdout))


def _wait(predicate: Any, *, timeout_s: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout_s} s; log:\n{log.read_text()[-4000:]}")


@pytest.fixture
def up_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """``certsms up --sandbox`` on free ports and a tmp var dir; killed if the test did not."""
    var_dir = tmp_path / "var"
    log = tmp_path / "up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTSMS_", "MENSATEK_"))}
    env.pop("REDIS_URL", None)
    env["CERTSMS_LOG_FORMAT"] = "json"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "certsms.worker.cli",
                "up",
                "--sandbox",
                "--var-dir",
                str(var_dir),
                "--progression-interval-s",
                "0.3",
                "--processes",
                "1",
                "--threads",
                "2",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    yield process, var_dir, log
    if process.poll() is None:  # the test failed before it stopped ``up``: stop it, then make sure
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for child in psutil.wait_procs(children, timeout=10)[1]:
            child.kill()


def test_up_sandbox_runs_a_cli_job_to_evidence_and_stops_every_child(
    up_process: tuple[subprocess.Popen[bytes], Path, Path],
) -> None:
    """A job enqueued through the CLI reaches evidence_stored; SIGINT then ends every child."""
    process, var_dir, log = up_process
    env_file = var_dir / "sandbox.env"
    _wait(env_file.exists, timeout_s=30, what="var/sandbox.env", log=log)
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    env = {**os.environ, "CERTSMS_LOG_FORMAT": "json", **read_env_file(env_file)}
    assert env["MENSATEK_BASE_URL"].startswith("http://127.0.0.1:")

    def enqueued() -> dict[str, Any] | None:
        document = _cli(env, "enqueue", "send", str(EXAMPLE))
        return document if document.get("id") else None

    # the first enqueue can race the worker booting; Redis is up before anything else
    job = _wait(enqueued, timeout_s=30, what="enqueue", log=log)
    assert job["status"] == "queued"

    def stored() -> dict[str, Any] | None:
        record = _cli(env, "status", job["id"])
        assert record.get("status") not in ("failed", "dead", "uncertain"), record
        return record if record.get("status") == "evidence_stored" else None

    record = _wait(stored, timeout_s=120, what="evidence_stored", log=log)
    assert isinstance(record["idmensaje"], int) and record["idmensaje"] > 0
    certificates = list((var_dir / "certificates").rglob("*.zip"))
    assert len(certificates) == 2, certificates  # one per recipient of examples/send.json

    children = psutil.Process(process.pid).children(recursive=True)
    assert len(children) >= 4  # redis, sandbox, worker (+ its processes), web
    password = env["CERTSMS_CALLBACK_PASSWORD"]
    assert password and env["CERTSMS_SANDBOX_CALLBACK_PASSWORD"] == password
    assert not [c.pid for c in children if password in " ".join(c.cmdline())]  # not in ps
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) in (0, 130)
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.pid for p in alive]
    output = log.read_text()
    assert "SIGINT received" in output
    assert "redis stopped" in output
    for name in ("sandbox", "worker", "web"):
        assert f"{name} stopped" in output


def test_up_without_sandbox_refuses_without_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plain ``certsms up`` exits 2 naming MENSATEK_API_USER when no credentials are set."""
    for name in list(os.environ):
        if name.startswith(("MENSATEK_", "CERTSMS_")):
            monkeypatch.delenv(name)
    assert main(["up"]) == 2
    assert "MENSATEK_API_USER" in capsys.readouterr().err
