"""A storm of the same certified callback over real HTTP, processed by a real worker."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dramatiq
import redis
import requests

from config.settings import Settings
from tests.fixtures.web import CALLBACK_PASSWORD, CALLBACK_USER, WebServer, queued_callbacks
from worker.jobs.store import JobStatus, JobStore

MSG, PHONE = 777001, "34600123456"


def test_fifty_identical_certified_callbacks_enqueue_one_download(
    web_server: WebServer, web_runtime: Any, redis_client: redis.Redis, web_settings: Settings
) -> None:
    """50 concurrent identical certified callbacks → 50 × 200, one certificate job."""
    store = JobStore(redis_client, web_settings)
    store.create("storm-job", kind="send", payload={"Destinatarios": [{"Movil": PHONE}]})
    for step in (JobStatus.RUNNING, JobStatus.IN_FLIGHT):
        store.transition("storm-job", step)
    store.transition("storm-job", JobStatus.SENT, idmensaje=MSG)
    body = {"Servicio": "SMSCERTIFICADO", "Resultado": "14", "Movil": PHONE,
            "idMensaje": str(MSG), "Fecha": "2025-03-01 10:00:09"}  # fmt: skip

    def post(_: int) -> int:
        url = f"{web_server.url}/callbacks/mensatek"
        return requests.post(url, json=body, auth=(CALLBACK_USER, CALLBACK_PASSWORD)).status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        codes = list(pool.map(post, range(50)))
    assert codes == [200] * 50
    assert len(queued_callbacks(redis_client, web_settings)) == 50
    worker = dramatiq.Worker(web_runtime.broker, queues={"certsms.callbacks"}, worker_threads=8,
                             worker_timeout=50)  # fmt: skip
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while queued_callbacks(redis_client, web_settings) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.join()
    finally:
        worker.stop()
    assert queued_callbacks(redis_client, web_settings) == []
    certificate_jobs = store.list_jobs(kind="certificate")
    assert len(certificate_jobs) == 1
    assert store.status("storm-job") is JobStatus.CERTIFIED
