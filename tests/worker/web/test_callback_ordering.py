"""The loop over real HTTP when callbacks come late, twice or out of order; events, replies.

Same wiring as :mod:`tests.worker.web.test_evidence_loop`: the web app served by waitress, the
sandbox POSTing its callbacks to it, and an in-process dramatiq worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import pytest
import requests

from certsms.config.settings import Settings
from certsms.worker.commands.stack import Stack
from certsms.worker.jobs.store import JobRecord, JobStatus, JobStore
from tests.fixtures.jobs import JOB_OVERRIDES, wait_for, wait_status
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.web import CALLBACK_PASSWORD, CALLBACK_USER, queued_callbacks

PHONE = "34600000001"
AUTH = (CALLBACK_USER, CALLBACK_PASSWORD)
CALLBACKS_QUEUE = "certsms.callbacks"
PAYLOAD: dict[str, Any] = {
    "Remitente": "ACME",
    "Mensaje": "Su notificacion esta disponible",
    "Destinatarios": [{"Movil": PHONE}],
    "Contacto": "ACME S.L.",
    "Telcontacto": "900000000",
    "Cifcontacto": "B00000000",
}


@dataclass
class Loop:
    """The running loop: settings, store, web server, broker runtime and worker."""

    settings: Settings
    store: JobStore
    server: Stack
    runtime: Any
    worker: dramatiq.Worker
    sandbox: SandboxHandle

    @property
    def callback_url(self) -> str:
        return f"{self.server.web_url}/callbacks/mensatek"

    def drain(self, timeout_s: float = 20.0) -> None:
        """Wait until the sandbox delivered its callbacks and the worker processed them all."""
        self.sandbox.wait_callbacks(timeout_s=timeout_s)
        self.runtime.broker.join(CALLBACKS_QUEUE, timeout=int(timeout_s * 1000))
        self.worker.join()
        assert queued_callbacks(self.store.redis, self.settings) == []

    def progress_to(self, job_id: str, *statuses: str, timeout_s: float = 30.0) -> JobRecord:
        """Tick the sandbox (it calls back) until the job is in one of ``statuses``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = self.store.get(job_id)
            assert record is not None
            if record.status in statuses:
                return record
            assert record.status not in _GIVEN_UP, record
            if record.status in _PROGRESSING:
                self.sandbox.tick()
                self.drain()
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} is {self.store.get(job_id)}, wanted {statuses}")

    def events_of(self, job_id: str) -> list[dict[str, str]]:
        return [e for e in self.store.events(count=1000) if e.get("job_id") == job_id]


_GIVEN_UP = (JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED)
_PROGRESSING = (JobStatus.SENT, JobStatus.DELIVERED, JobStatus.CERTIFIED)


@pytest.fixture
def make_loop(make_stack: Callable[..., Stack], sandbox: SandboxHandle) -> Callable[..., Loop]:
    """Start the loop on the shared stack (settings overrides as keywords)."""

    def start(**overrides: Any) -> Loop:
        stack = make_stack(**{**JOB_OVERRIDES, **overrides})
        return Loop(stack.settings, stack.store, stack, stack.runtime, stack.worker, sandbox)

    return start


def _status_body(job_id: str, message_id: str, code: int) -> dict[str, str]:
    return {
        "Servicio": "SMSCERTIFICADO",
        "Resultado": str(code),
        "Remitente": "ACME",
        "Movil": PHONE,
        "Fecha": "2020-12-03 11:14:24",
        "Segundos": "3",
        "idMensaje": message_id,
        "Referencia": job_id,
        "idReport": "1234567890",
    }


@pytest.mark.parametrize(
    ("reached", "stale_codes", "recipient_code"),
    [("delivered", (10, 1002), 11), ("evidence_stored", (11, 10, 1002), 14)],
)
def test_out_of_order_callbacks_never_move_a_job_back(
    make_loop: Callable[..., Loop], reached: str, stale_codes: tuple[int, ...], recipient_code: int
) -> None:
    """Older Resultados POSTed after a later one change neither the job nor the recipient."""
    from certsms.tasks import enqueue

    loop = make_loop()
    job_id = enqueue("send", PAYLOAD, idempotency_key=f"stale-{reached}")
    wait_status(loop.store, job_id, "sent")
    before = loop.progress_to(job_id, reached)
    assert before.recipients[PHONE].result_code == recipient_code
    assert before.idmensaje is not None
    message_id = str(before.idmensaje)
    events_before = len(loop.events_of(job_id))
    for code in stale_codes:
        response = requests.post(
            loop.callback_url, json=_status_body(job_id, message_id, code), auth=AUTH, timeout=10
        )
        assert response.status_code == 200, response.text
    # the web recorded each body as received; the actor then processed them all
    received = [
        json.loads(e["body"])["Resultado"]
        for e in loop.store.events(count=1000)
        if e["event"] == "callback_received" and json.loads(e["body"])["idMensaje"] == message_id
    ]
    assert received[-len(stale_codes) :] == [str(c) for c in stale_codes]
    loop.drain()
    after = loop.store.get(job_id)
    assert after is not None
    assert after.status is JobStatus(reached)
    assert after.recipients[PHONE].result_code == recipient_code
    assert after.recipients[PHONE] == before.recipients[PHONE]
    new_events = loop.events_of(job_id)[events_before:]
    moving = ("job_status_changed", "recipient_status_changed")
    moved = [e for e in new_events if e["event"] in moving]
    assert not moved, new_events


def test_uncertain_send_is_reconciled_by_its_callback(make_loop: Callable[..., Loop]) -> None:
    """Accepted but the answer lost: ``uncertain``; the sandbox's callbacks (Referencia = job
    id) move it to ``sent`` with the sandbox's idMensaje and on to evidence, with one send."""
    from certsms.tasks import enqueue

    loop = make_loop(read_timeout_s=0.5)
    loop.sandbox.configure(accept_then_timeout_rate=1.0, timeout_hold_s=2.0)
    job_id = enqueue("send", PAYLOAD, idempotency_key="uncertain-reconciled")
    record = wait_status(loop.store, job_id, "uncertain", "sent", "failed", "dead")
    assert record.status is JobStatus.UNCERTAIN, record
    assert record.idmensaje is None
    loop.sandbox.configure(accept_then_timeout_rate=0.0)
    [message] = [m for m in loop.sandbox.state()["messages"] if m["reference"] == job_id]
    # the send actor does not send again on its own
    loop.worker.join()
    assert loop.store.status(job_id) is JobStatus.UNCERTAIN

    loop.sandbox.tick()  # 1002 -> 10: a status callback carrying Referencia, no idMensaje known
    loop.drain()
    reconciled = loop.store.get(job_id)
    assert reconciled is not None
    assert reconciled.status in (*_PROGRESSING, JobStatus.EVIDENCE_STORED)
    assert reconciled.idmensaje == message["id"]
    final = loop.progress_to(job_id, "evidence_stored")
    assert final.idmensaje == message["id"]
    assert final.recipients[PHONE].result_code == 14
    assert len(loop.sandbox.requests("EnviarSMSCERTIFICADO")) == 1
    history = [e["event"] for e in loop.events_of(job_id)]
    assert "job_reconciled" in history
    assert loop.store.find_by_message_id(message["id"]) == job_id


def test_attachment_event_and_reply_are_recorded_on_the_job(
    make_loop: Callable[..., Loop],
) -> None:
    """EVENTOSSMSCERTIFICADO and SMSRECIBIDO from the sandbox land in the job's inbox,
    its ``last_*`` fields and the events stream."""
    from certsms.tasks import enqueue
    from certsms.worker.status_updates import inbox

    loop = make_loop()
    job_id = enqueue("send", PAYLOAD, idempotency_key="event-and-reply")
    record = wait_status(loop.store, job_id, "sent")
    message_id = record.idmensaje
    assert message_id is not None
    loop.sandbox.emit_event(message_id, PHONE, tipo_evento="2", valor="12345678Z")
    loop.sandbox.emit_reply(message_id, PHONE, mensaje="ACEPTO", es_cert=True)
    loop.drain()
    wait_for(lambda: len(inbox(loop.store, job_id)) == 2, timeout_s=10)
    entries = {entry["type"]: entry for entry in inbox(loop.store, job_id)}
    assert set(entries) == {"attachment_event", "reply"}
    event, reply = entries["attachment_event"], entries["reply"]
    assert event["idmensaje"] == message_id and event["phone"] == PHONE
    assert event["event_type"] == "2" and event["value"] == "12345678Z"
    assert reply["idmensaje"] == message_id and reply["phone"] == PHONE
    assert reply["text"] == "ACEPTO" and reply["certified"] is True
    after = loop.store.get(job_id)
    assert after is not None
    assert json.loads(after.other["last_attachment_event"])["event_type"] == "2"
    assert json.loads(after.other["last_reply"])["text"] == "ACEPTO"
    assert after.status is JobStatus.SENT  # neither moves the job
    kinds = [e["event"] for e in loop.events_of(job_id)]
    assert "attachment_event" in kinds and "reply_received" in kinds
