"""Certificate triggers: only a real recipient's certified status reaches the provider."""

from __future__ import annotations

import dramatiq

from certsms import tasks
from certsms.config.settings import Settings
from certsms.worker.jobs.store import JobStore
from certsms.worker.runtime import Runtime
from tests.fixtures.jobs import record_of, wait_for, wait_status
from tests.fixtures.sandbox import SandboxHandle, send_params

DOWNLOAD = "GetSMSCERTIFICADO"


def _callback(message_id: int, phone: str, result: int = 14) -> dict[str, str]:
    return {
        "Servicio": "SMSCERTIFICADO",
        "Resultado": str(result),
        "Remitente": "ACME",
        "Movil": phone,
        "Fecha": "2026-01-10 12:00:00",
        "Segundos": "0",
        "idMensaje": str(message_id),
        "Referencia": "",
        "idReport": "1",
    }


def test_certificate_stray_phone_callbacks_make_no_provider_request(
    jobs_settings: Settings,
    jobs_runtime: Runtime,
    job_store: JobStore,
    job_worker: dramatiq.Worker,
    sandbox: SandboxHandle,
) -> None:
    """Twenty certified callbacks naming phones that are not the job's recipients download
    nothing (0 provider requests) and are kept as anomalies; the real recipient's one
    downloads once."""
    job_id = tasks.enqueue_send(
        send_params(Mensaje="Aviso", Destinatarios=[{"Movil": "34600000001"}]),
        settings=jobs_settings,
    )
    message_id = (
        record_of(job_store, job_id).idmensaje or wait_status(job_store, job_id, "sent").idmensaje
    )
    assert message_id is not None
    producer = jobs_runtime.producer
    for i in range(20):
        producer.queue_callback(_callback(int(message_id), f"3461100{i:04d}"), "2026-01-10")

    def anomalies() -> list[dict[str, object]]:
        events = job_store.events(count=1000)
        found = [e for e in events if e.get("event") == "certificate_anomaly"]
        return found if len(found) >= 20 else []

    found = wait_for(anomalies, timeout_s=60)
    assert {e["reason"] for e in found} == {"not_a_recipient"}
    assert sandbox.requests(DOWNLOAD) == []
    producer.queue_callback(_callback(int(message_id), "34600000001"), "2026-01-10")
    wait_for(lambda: len(sandbox.requests(DOWNLOAD)) >= 1, timeout_s=60)
    downloads = sandbox.requests(DOWNLOAD)
    assert [d["params"]["Telefono"] for d in downloads] == ["34600000001"]
