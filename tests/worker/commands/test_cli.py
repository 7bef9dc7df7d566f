"""The CLI's shared habits: --version, one set of exit codes, local checks before requests."""

from __future__ import annotations

import pytest

from certsms import tasks
from certsms.worker.cli import build_parser, main
from certsms.worker.jobs.store import JobStatus
from tests.fixtures.jobs import last_json, wait_status
from tests.fixtures.sandbox import send_params


def _env(monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    import certsms.worker.commands.jobs as commands

    monkeypatch.setattr(commands, "_settings", lambda: settings)


def test_cli_prints_its_version(capsys) -> None:  # type: ignore[no-untyped-def]
    """``certsms --version`` prints the installed version and exits 0."""
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("certsms ")


def test_cli_redis_down_is_exit_3_with_one_json_document(monkeypatch, capsys, cli_logging) -> None:  # type: ignore[no-untyped-def]
    """With Redis unreachable a command exits 3, says so in one line, and --json prints one
    document."""
    from certsms.worker.embedded_redis import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["status", "0" * 32, "--json"]) == 3
    captured = capsys.readouterr()
    assert last_json(captured.out)["error"] == "unavailable"
    assert [line for line in captured.err.splitlines() if line.startswith("certsms:")] == [
        "certsms: Redis unavailable (ConnectionError): check REDIS_URL"
    ]


def test_cli_commands_retry_redis_briefly_unless_told(monkeypatch, cli_logging) -> None:  # type: ignore[no-untyped-def]
    """One-shot commands give up on a broken Redis after 3 s (workers keep 30 s); an
    explicit CERTSMS_REDIS_RETRY_WINDOW_S wins, a shorter default stays."""
    from certsms.worker.commands.common import command_settings

    monkeypatch.delenv("CERTSMS_REDIS_RETRY_WINDOW_S", raising=False)
    assert command_settings().redis_retry_window_s == 3.0
    monkeypatch.setenv("CERTSMS_REDIS_RETRY_WINDOW_S", "45")
    assert command_settings().redis_retry_window_s == 45.0
    monkeypatch.setenv("CERTSMS_REDIS_RETRY_WINDOW_S", "1")
    assert command_settings().redis_retry_window_s == 1.0


def test_cli_every_flag_has_help() -> None:
    """Every option of every command has a help text (no bare flags in --help)."""
    missing = []

    def walk(parser, path):  # type: ignore[no-untyped-def]
        for action in parser._actions:
            if action.option_strings and not action.help and action.dest != "help":
                missing.append(f"{path} {action.option_strings[0]}")
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    walk(sub, f"{path} {name}")

    walk(build_parser(), "certsms")
    assert missing == []


def test_cli_cancel_of_an_unknown_idmensaje_makes_no_request(
    jobs_settings, job_store, sandbox, monkeypatch, capsys, cli_logging
) -> None:  # type: ignore[no-untyped-def]
    """A mistyped idMensaje is refused locally (exit 1): nothing is enqueued or posted."""
    _env(monkeypatch, jobs_settings)
    assert main(["cancel", "99999999", "--json"]) == 1
    assert last_json(capsys.readouterr().out)["error"] == "not_found"
    assert job_store.list_jobs() == []
    assert sandbox.requests("CancelarSMSCERTIFICADO") == []


def test_cli_cancel_of_a_delivered_send_is_refused_naming_target(
    jobs_settings, job_store, job_worker, sandbox, monkeypatch, capsys, cli_logging
) -> None:  # type: ignore[no-untyped-def]
    """Cancelling a send that already went out exits 2 naming TARGET, with no cancel job."""
    _env(monkeypatch, jobs_settings)
    job_id = tasks.enqueue_send(send_params(Mensaje="Hola"), settings=jobs_settings)
    record = wait_status(job_store, job_id, "sent")
    assert record.status is JobStatus.SENT
    assert main(["cancel", str(record.idmensaje)]) == 2
    assert "TARGET: send" in capsys.readouterr().err
    assert [r.kind for r in job_store.list_jobs()] == ["send"]


def test_cli_help_pages_are_text_not_raw_docstrings() -> None:
    """No ``--help`` page shows reStructuredText backticks or a ``certsms X:`` docstring title."""
    import argparse

    from certsms.worker.cli import build_parser

    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    pages = {name: command.format_help() for name, command in sub.choices.items()}
    assert len(pages) >= 10
    raw = sorted(name for name, text in pages.items() if "``" in text)
    assert raw == []
