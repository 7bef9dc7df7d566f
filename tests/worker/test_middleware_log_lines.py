"""One canonical log line per job outcome, with the job's bound context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from certsms import tasks
from certsms.config.logging import configure_logging
from tests.fixtures.jobs import wait_for, wait_status
from tests.fixtures.sandbox import send_params


@pytest.fixture
def log_stream(jobs_settings) -> Iterator[io.StringIO]:  # type: ignore[no-untyped-def]
    """JSON logs of this process captured in memory."""
    stream = io.StringIO()
    configure_logging(jobs_settings.model_copy(update={"log_format": "json"}), stream=stream)
    yield stream
    logging.getLogger().handlers.clear()
    structlog.reset_defaults()


def _lines(stream: io.StringIO, event: str, job_id: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [r for r in rows if r.get("event") == event and r.get("job_id") == job_id]


def test_job_outcome_lines_carry_context_and_duration(
    jobs_settings, job_store, job_worker, sandbox, log_stream
) -> None:  # type: ignore[no-untyped-def]
    """A sent job writes one job_succeeded line; a rejected one one job_failed line with Res."""
    ok = tasks.enqueue_send(send_params(Mensaje="Hola"), settings=jobs_settings)
    bad = tasks.enqueue_send(send_params(Mensaje="Hola", Idmensaje=987654), settings=jobs_settings)
    wait_status(job_store, ok, "sent")
    wait_status(job_store, bad, "failed")
    succeeded = wait_for(lambda: _lines(log_stream, "job_succeeded", ok))
    failed = wait_for(lambda: _lines(log_stream, "job_failed", bad))
    assert len(succeeded) == 1 and len(failed) == 1
    line = succeeded[0]
    assert line["actor"] == "certsms.send" and line["kind"] == "send"
    assert line["attempt"] == 1 and line["message_id"]
    assert isinstance(line["duration_ms"], float)
    assert line["function"] == "EnviarSMSCERTIFICADO"
    assert failed[0]["res"] == -3
    # the context is cleared after the job: a later line of this thread has no job_id
    structlog.get_logger("t").info("after_job")
    after = [json.loads(x) for x in log_stream.getvalue().splitlines() if '"after_job"' in x]
    assert after and "job_id" not in after[0]
