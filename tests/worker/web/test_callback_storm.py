"""A storm of the same certified callback over real HTTP, processed by a real worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import dramatiq
import redis
import requests
from pydantic import SecretStr

from certsms.config.settings import Settings
from certsms.worker.jobs.store import JobStatus, JobStore
from tests.fixtures.sandbox import SandboxHandle, send_params
from tests.fixtures.web import CALLBACK_PASSWORD, CALLBACK_USER, WebServer, queued_callbacks

PHONE = "34600123456"


def test_fifty_identical_certified_callbacks_download_the_certificate_once(
    sandbox: SandboxHandle,
    sandbox_settings: Settings,
    redis_client: redis.Redis,
    serve_app: Callable[..., WebServer],
) -> None:
    """50 concurrent identical certified callbacks → 50 × 200, one trigger, one download."""
    from certsms.tasks.boot import setup
    from certsms.worker.web import create_app, waitress_options

    settings = sandbox_settings.model_copy(
        update={"callback_user": CALLBACK_USER, "callback_password": SecretStr(CALLBACK_PASSWORD)}
    )
    runtime = setup(settings)

    server = serve_app(create_app(settings, redis_client), **waitress_options(settings))
    sent = sandbox.call("EnviarSMSCERTIFICADO", send_params(Destinatarios=[{"Movil": PHONE}]))
    message_id = int(sent.json()[0]["idMensaje"])
    sandbox.tick(3)  # the recipient is certified at the provider: the ZIP exists
    store = JobStore(redis_client, settings)
    store.create("storm-job", kind="send", payload={"Destinatarios": [{"Movil": PHONE}]})
    for step in (JobStatus.RUNNING, JobStatus.IN_FLIGHT):
        store.transition("storm-job", step)
    store.transition("storm-job", JobStatus.SENT, idmensaje=message_id)
    body = {
        "Servicio": "SMSCERTIFICADO",
        "Resultado": "14",
        "Movil": PHONE,
        "idMensaje": str(message_id),
        "Fecha": "2025-03-01 10:00:09",
    }

    def post(_: int) -> int:
        url = f"{server.url}/callbacks/mensatek"
        return requests.post(url, json=body, auth=(CALLBACK_USER, CALLBACK_PASSWORD)).status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        codes = list(pool.map(post, range(50)))
    assert codes == [200] * 50
    assert len(queued_callbacks(redis_client, settings)) == 50
    worker = dramatiq.Worker(
        runtime.broker,
        queues={"certsms.callbacks", "certsms.query"},
        worker_threads=8,
        worker_timeout=50,
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            queued_callbacks(redis_client, settings)
            or store.status("storm-job") is not JobStatus.EVIDENCE_STORED
        ):
            time.sleep(0.05)
        worker.join()
    finally:
        worker.stop()
    assert queued_callbacks(redis_client, settings) == []
    assert store.status("storm-job") is JobStatus.EVIDENCE_STORED
    assert len(store.list_jobs(kind="certificate")) == 1
    triggers = [
        e for e in store.events(count=2000) if e["event"] == "certificate_download_enqueued"
    ]
    assert len(triggers) == 1  # the SET NX gate, not only the producer's idempotency key
    downloads = [
        r
        for r in sandbox.requests("GetSMSCERTIFICADO")
        if str(r.get("params", {}).get("Idmensaje")) == str(message_id)
        and str(r.get("params", {}).get("Telefono")) == PHONE
    ]
    assert len(downloads) == 1, sandbox.requests("GetSMSCERTIFICADO")
