"""Worker processes started through the CLI, and a worker killed with SIGKILL mid-send."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certsms import tasks
from certsms.worker.cli import main
from certsms.worker.jobs import JobStatus
from tests.fixtures.jobs import last_json, wait_for, wait_status
from tests.fixtures.sandbox import send_params

CLI = [sys.executable, "-m", "certsms.worker.cli"]

SETTLED = ("sent", "uncertain", "failed", "dead")


def _env(settings: Any, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=settings.redis_url,
        MENSATEK_BASE_URL=settings.mensatek_base_url,
        MENSATEK_API_USER=settings.mensatek_api_user,
        MENSATEK_API_TOKEN=settings.mensatek_api_token.get_secret_value(),
        CERTSMS_NAMESPACE=settings.namespace,
        CERTSMS_CERT_DIR=str(tmp_path / "certs"),
        CERTSMS_HEARTBEAT_TIMEOUT_S="5",
        CERTSMS_REDELIVERY_SWEEP_INTERVAL_S="1",
        CERTSMS_READ_TIMEOUT_S="10",
        CERTSMS_LOG_FORMAT="json",
    )
    return env


class _Workers:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.procs = env, log, []  # type: ignore[var-annotated]

    def start(self) -> subprocess.Popen[bytes]:
        out = self.log.open("ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "certsms.worker.cli",
                "worker",
                "--processes",
                "1",
                "--threads",
                "2",
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def workers(jobs_settings, tmp_path) -> Iterator[_Workers]:  # type: ignore[no-untyped-def]
    """Starts ``certsms worker`` subprocesses; stops every one after the test."""
    handle = _Workers(_env(jobs_settings, tmp_path), tmp_path / "worker.log")
    yield handle
    handle.stop_all()


def _message() -> dict[str, Any]:
    return send_params(Mensaje="Su notificacion esta disponible")


def test_jobs_cli_enqueue_status_and_worker_processes(
    jobs_settings, job_store, workers, sandbox, tmp_path, capsys, monkeypatch, cli_logging
) -> None:  # type: ignore[no-untyped-def]
    """``certsms enqueue --json`` queues a job that a ``certsms worker`` process sends."""
    for name, value in workers.env.items():
        monkeypatch.setenv(name, value)
    payload = tmp_path / "send.json"
    payload.write_text(json.dumps(_message()))
    assert main(["enqueue", "send", str(payload), "--json"]) == 0
    answer = last_json(capsys.readouterr().out)
    assert answer["status"] == "queued"
    workers.start()
    wait_status(job_store, answer["id"], "sent", "failed", "dead", timeout_s=60)
    assert main(["status", answer["id"], "--json"]) == 0
    record = last_json(capsys.readouterr().out)
    assert record["status"] == "sent" and record["attempts"] == 1
    assert isinstance(record["idmensaje"], int) and record["idmensaje"] > 0
    assert main(["jobs", "--status", "sent", "--json"]) == 0
    assert [j["id"] for j in last_json(capsys.readouterr().out)["jobs"]] == [answer["id"]]
    payload.write_text(json.dumps({**_message(), "Remitente": "X" * 30}))
    assert main(["enqueue", "send", str(payload), "--json"]) == 2
    assert "Remitente" in capsys.readouterr().out


def test_jobs_sigkill_mid_send_loses_nothing_and_sends_once(
    jobs_settings, job_store, workers, sandbox
) -> None:  # type: ignore[no-untyped-def]
    """A worker killed mid-send: after a restart every job settles, none is posted twice."""
    sandbox.configure(latency_ms=3000)
    ids = [tasks.enqueue_send(_message(), settings=jobs_settings) for _ in range(4)]
    first = workers.start()
    wait_for(lambda: any(job_store.status(j) is JobStatus.IN_FLIGHT for j in ids), timeout_s=60)
    workers.kill(first)
    in_flight = [j for j in ids if job_store.status(j) is JobStatus.IN_FLIGHT]
    sandbox.configure(latency_ms=0)
    workers.start()
    records = [wait_status(job_store, j, *SETTLED, timeout_s=90) for j in ids]
    assert {r.status for r in records} <= {JobStatus.SENT, JobStatus.UNCERTAIN}
    assert in_flight, "the kill should have caught a send in flight"
    references = [
        r["params"]["Referenciausuario"] for r in sandbox.requests("EnviarSMSCERTIFICADO")
    ]
    assert len(references) == len(set(references))  # nothing posted twice
    sent = {r.id for r in records if r.status is JobStatus.SENT}
    assert sent <= set(references)
    assert all(r.status is JobStatus.UNCERTAIN for r in records if r.id in in_flight)


def test_two_workers_on_one_host_both_export_metrics(jobs_settings: Any, tmp_path: Path) -> None:
    """A second ``certsms worker`` finds the port taken, says so, serves on the next one,
    and both endpoints answer with the queue and job gauges."""
    import requests

    from certsms.worker.embedded_redis import free_port

    port = free_port()
    env = {**_env(jobs_settings, tmp_path), "CERTSMS_WORKER_METRICS_PORT": str(port)}
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    handles = [_Workers(env, log) for log in logs]
    try:
        handles[0].start()
        served = [wait_for(lambda: _served_port(logs[0]), timeout_s=60)]
        handles[1].start()
        served.append(wait_for(lambda: _served_port(logs[1]), timeout_s=60))
        # the next free port: port + 1 unless something else on the machine holds it
        assert served[0] == port and port < served[1] < port + 16
        assert f'"port": {port}' in logs[1].read_text()
        assert '"worker_metrics_port_taken"' in logs[1].read_text()
        for serving in served:
            text = requests.get(f"http://127.0.0.1:{serving}/metrics", timeout=10).text
            assert "certsms_redis_up 1.0" in text
            assert 'certsms_queue_messages{queue="certsms.send",state="ready"}' in text
            assert 'certsms_jobs{status="queued"}' in text
    finally:
        for handle in handles:
            handle.stop_all()


def _served_port(log: Path) -> int | None:
    for line in log.read_text().splitlines() if log.exists() else []:
        if '"worker_metrics_serving"' in line:
            return int(json.loads(line)["port"])
    return None
