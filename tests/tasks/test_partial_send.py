"""A send the provider made to only some recipients (NoEnviados) shows which were not sent."""

from __future__ import annotations

from typing import Any

from certsms import tasks
from tests.fixtures.jobs import record_of, wait_for, wait_status
from tests.fixtures.sandbox import send_params


def test_one_of_three_recipients_not_sent_is_marked_on_the_job(
    jobs_settings: Any, job_store: Any, job_worker: Any, sandbox: Any
) -> None:
    """NoEnviados 1 of 3: the job records the count, a report names the phone (Resultado
    104) and the other two are sent as usual."""
    sandbox.configure(invalid_phones=["34600000003"])
    recipients = [{"Movil": f"3460000000{n}"} for n in (1, 2, 3)]
    payload = send_params(Mensaje="Su notificacion esta disponible", Destinatarios=recipients)
    job_id = tasks.enqueue_send(payload, settings=jobs_settings)
    sent = wait_status(job_store, job_id, "sent", "failed", "dead")
    assert sent.not_sent == 1 and sent.res == 2

    def named() -> list[str] | None:
        return record_of(job_store, job_id).not_sent_phones

    assert wait_for(named, timeout_s=30) == ["34600000003"]
    record = record_of(job_store, job_id)
    assert record.recipients["34600000003"].result_code == 104
    assert record.recipients["34600000003"].status_class == "failed"
    events = [e["event"] for e in job_store.job_events(job_id)]
    assert "recipients_not_sent" in events and "recipients_not_sent_named" in events
    assert len(sandbox.requests("GetReportSMSCERTIFICADO")) == 1
