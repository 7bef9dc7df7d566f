"""Operator commands: resolve an uncertain send, retry and purge dead letters."""

from __future__ import annotations

import json

from dramatiq.message import Message

from certsms import tasks
from certsms.worker.cli import main
from certsms.worker.dramatiq_keys import messages_key
from certsms.worker.jobs.store import JobStatus
from tests.fixtures.jobs import last_json, wait_for, wait_status
from tests.fixtures.sandbox import send_params


def _env(monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    """The commands run in this process, next to the test's worker: give them its settings."""
    import certsms.worker.commands.jobs as commands

    monkeypatch.setattr(commands, "_settings", lambda: settings)


def test_jobs_resolve_sent_and_resend(
    jobs_settings, job_store, job_worker, sandbox, monkeypatch, capsys, cli_logging
) -> None:  # type: ignore[no-untyped-def]
    """``resolve --sent`` records the idMensaje; ``--resend`` posts an uncertain send once more."""
    _env(monkeypatch, jobs_settings)
    message = send_params(Mensaje="Hola")
    a = tasks.enqueue_send(message, settings=jobs_settings)
    b = tasks.enqueue_send(message, settings=jobs_settings)
    for job_id in (a, b):
        wait_status(job_store, job_id, "sent")
        job_store.transition(job_id, JobStatus.UNCERTAIN, force=True)
    assert main(["resolve", a, "--sent", "12345", "--json"]) == 0
    assert last_json(capsys.readouterr().out)["status"] == "sent"
    assert job_store.find_by_message_id(12345) == a
    assert main(["resolve", b, "--resend", "--json"]) == 0
    capsys.readouterr()
    wait_status(job_store, b, "sent")
    assert len(sandbox.requests("EnviarSMSCERTIFICADO")) == 3
    assert main(["resolve", a, "--resend"]) == 2  # a sent job is not resolved again


def test_jobs_dead_list_show_retry_purge(
    jobs_runtime, jobs_settings, job_store, job_worker, sandbox, monkeypatch, capsys, cli_logging
) -> None:  # type: ignore[no-untyped-def]
    """A dead job is listed with its reason, shown, retried, and purge empties the set."""
    _env(monkeypatch, jobs_settings)
    sandbox.configure(error_5xx_rate=1.0)
    job_id = tasks.enqueue_report({"Idmensaje": 1}, settings=jobs_settings)
    record = wait_status(job_store, job_id, "dead", "failed", timeout_s=30)
    assert record.status is JobStatus.DEAD
    assert record.reason is not None and "retries exhausted" in record.reason
    assert main(["dead", "list", "--json"]) == 0
    letters = last_json(capsys.readouterr().out)["dead_letters"]
    assert [d["job_id"] for d in letters] == [job_id]
    assert main(["dead", "show", letters[0]["id"], "--json"]) == 0
    assert last_json(capsys.readouterr().out)["record"]["reason"].startswith("retries exhausted")
    sandbox.configure(error_5xx_rate=0.0)
    send = tasks.enqueue_send(send_params(Mensaje="Hola"), settings=jobs_settings)
    idmensaje = wait_status(job_store, send, "sent").idmensaje
    assert isinstance(idmensaje, int)
    job_store.redis.hset(job_store.job_key(job_id), "payload", json.dumps({"Idmensaje": idmensaje}))
    assert main(["dead", "retry", letters[0]["id"], "--json"]) == 0
    capsys.readouterr()
    # the retried message carries its original payload (Idmensaje 1): the provider answers -4
    wait_status(job_store, job_id, "failed", "succeeded")
    jobs_runtime.broker.enqueue(
        Message(
            queue_name="certsms.query",
            actor_name="certsms.report",
            args=(),
            kwargs={"v": 9},
            options={},
        )
    )

    def both_dead() -> bool:
        # the retried job's permanent failure and the malformed message, both recorded
        assert main(["dead", "list", "--json"]) == 0
        letters = last_json(capsys.readouterr().out)["dead_letters"]
        return {d["job_id"] for d in letters} >= {job_id, None}

    wait_for(both_dead)
    assert main(["dead", "purge", "--all", "--json"]) == 0
    assert last_json(capsys.readouterr().out)["purged"] >= 1
    assert main(["dead", "list", "--json"]) == 0
    assert last_json(capsys.readouterr().out)["dead_letters"] == []


def _queued_messages(rt) -> int:  # type: ignore[no-untyped-def]
    return int(rt.redis.hlen(messages_key(rt.broker.namespace, "certsms.send")))


def test_jobs_resolve_resend_refuses_in_flight_without_force(
    jobs_runtime, jobs_settings, job_store, monkeypatch, capsys, cli_logging
) -> None:  # type: ignore[no-untyped-def]
    """``--resend`` on an in_flight send exits 2 and queues nothing; ``--force`` resends it."""
    _env(monkeypatch, jobs_settings)
    job_id = tasks.enqueue_send(send_params(Mensaje="Hola"), settings=jobs_settings)
    assert job_store.transition(job_id, JobStatus.IN_FLIGHT, incr_attempts=1)
    before = _queued_messages(jobs_runtime)
    assert main(["resolve", job_id, "--resend"]) == 2
    assert "in_flight" in capsys.readouterr().err
    assert job_store.status(job_id) == JobStatus.IN_FLIGHT
    assert _queued_messages(jobs_runtime) == before
    assert main(["resolve", job_id, "--resend", "--force", "--json"]) == 0
    assert last_json(capsys.readouterr().out)["status"] == "queued"
    assert _queued_messages(jobs_runtime) == before + 1
