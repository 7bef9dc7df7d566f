"""apply_recipient_status and friends on a real Redis job store."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from certsms.config.settings import Settings
from certsms.mensatek.status import StatusClass
from certsms.worker.evidence import EvidenceStore
from certsms.worker.jobs.store import JobStatus, JobStore
from certsms.worker.status_updates import (
    apply_recipient_status,
    certificate_downloaded,
    derive_job_status,
    expected_phones,
    inbox,
    library_files_to_delete,
    process_callback_fields,
)
from tests.fixtures.jobs import record_of
from tests.fixtures.web import make_zip

A, B = "34600123456", "34611222333"
MSG = 10573758
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
#: What every valid send carries besides its sender, recipients and message.
CONTACT = {"Contacto": "TUEMPRESA S.L.", "Telcontacto": "900000000", "Cifcontacto": "B00000000"}


class Recorder:
    """Records enqueue calls (kind, payload, key) from any thread; returns fake job ids."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, payload: Mapping[str, Any], key: str | None) -> str:
        with self._lock:
            self.calls.append((kind, dict(payload), key))
            return f"{kind}-job-{len(self.calls)}"


@pytest.fixture
def store(redis_client: redis.Redis, settings: Settings) -> JobStore:
    """A job store on the test Redis."""
    return JobStore(redis_client, settings)


def make_send_job(
    store: JobStore,
    *,
    job_id: str = "job-1",
    phones: tuple[str, ...] = (A,),
    status: JobStatus = JobStatus.SENT,
    message: str = "Notificacion (FILE:2:notifica.pdf)",
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A send job as the send actor leaves it (``sent`` with its idMensaje, or another state);
    its payload is a valid send (what a job records)."""
    payload = {
        **CONTACT,
        "Remitente": "TUEMPRESA",
        "Destinatarios": [{"Movil": p} for p in phones],
        "Mensaje": message,
        "Referenciausuario": f"ref-{job_id}",
        **(extra or {}),
    }
    store.create(job_id, kind="send", payload=payload, reference=f"ref-{job_id}")
    for step in (JobStatus.RUNNING, JobStatus.IN_FLIGHT):
        store.transition(job_id, step)
    if status is JobStatus.SENT:
        store.transition(job_id, JobStatus.SENT, idmensaje=MSG)
    elif status is JobStatus.UNCERTAIN:
        store.transition(job_id, JobStatus.UNCERTAIN, reason="read timeout")
    return job_id


def apply(
    store: JobStore,
    code: int,
    *,
    phone: str = A,
    at: datetime | None = T0,
    recorder: Recorder | None = None,
    message_id: int | None = MSG,
    reference: str | None = None,
) -> Any:
    return apply_recipient_status(
        store,
        message_id=message_id,
        reference=reference,
        phone=phone,
        result_code=code,
        at=at,
        source="callback",
        enqueue=recorder or Recorder(),
    )


def test_status_walk_moves_job_forward_and_triggers_download(store: JobStore) -> None:
    """1002 → 11 → 14 moves the job sent → delivered → certified and enqueues one download."""
    job = make_send_job(store)
    recorder = Recorder()
    apply(store, 1002, at=T0, recorder=recorder)
    assert store.status(job) is JobStatus.SENT
    apply(store, 11, at=T0 + timedelta(seconds=3), recorder=recorder)
    assert store.status(job) is JobStatus.DELIVERED
    outcome = apply(store, 14, at=T0 + timedelta(seconds=9), recorder=recorder)
    assert store.status(job) is JobStatus.CERTIFIED
    assert outcome.certificate_job_id == "certificate-job-1"
    assert recorder.calls == [
        ("certificate", {"Idmensaje": MSG, "Telefono": A}, f"certificate:{MSG}:{A}")
    ]
    assert record_of(store, job).recipients[A].result_code == 14


def test_out_of_order_and_duplicates_never_move_back(store: JobStore) -> None:
    """A late 11 or 1002 after 14, and a repeated 14, change neither recipient nor job."""
    job = make_send_job(store)
    recorder = Recorder()
    apply(store, 14, at=T0 + timedelta(seconds=9), recorder=recorder)
    for code, seconds in ((11, 3), (1002, 0), (14, 9), (14, 30), (11, 60)):
        outcome = apply(store, code, at=T0 + timedelta(seconds=seconds), recorder=recorder)
        assert not outcome.recipient.changed
    record = store.get(job)
    assert record is not None
    assert record.status is JobStatus.CERTIFIED
    assert record.recipients[A].result_code == 14
    assert len(recorder.calls) == 1


def test_final_status_is_never_replaced_by_another_final(store: JobStore) -> None:
    """A stale failure code after certified leaves the recipient certified."""
    job = make_send_job(store)
    apply(store, 14)
    outcome = apply(store, 51, at=T0 + timedelta(hours=1))
    assert not outcome.recipient.changed
    assert record_of(store, job).recipients[A].status_class == "certified"
    assert store.status(job) is JobStatus.CERTIFIED


def test_storm_of_one_certified_callback_enqueues_one_download(store: JobStore) -> None:
    """The same certified status 50 times concurrently → exactly one certificate download."""
    make_send_job(store)
    recorder = Recorder()
    barrier = threading.Barrier(50)
    errors: list[BaseException] = []

    def hit() -> None:
        try:
            barrier.wait()
            apply(store, 14, recorder=recorder)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=hit) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [call[0] for call in recorder.calls] == ["certificate"]


def test_failed_enqueue_lets_a_later_callback_retry(store: JobStore) -> None:
    """If enqueueing the download fails, the marker is released and the next callback enqueues."""
    make_send_job(store)

    def broken(kind: str, payload: Mapping[str, Any], key: str | None) -> str:
        raise ConnectionError("redis went away")

    with pytest.raises(ConnectionError):
        apply_recipient_status(
            store,
            message_id=MSG,
            reference=None,
            phone=A,
            result_code=14,
            at=T0,
            source="callback",
            enqueue=broken,
        )
    recorder = Recorder()
    apply(store, 14, recorder=recorder)
    assert len(recorder.calls) == 1


def test_uncertain_send_is_reconciled_by_its_callback(store: JobStore) -> None:
    """An uncertain send found by Referencia becomes sent with the callback's idMensaje."""
    job = make_send_job(store, status=JobStatus.UNCERTAIN)
    assert store.find_by_message_id(MSG) is None
    outcome = apply(store, 1002, reference=f"ref-{job}")
    assert outcome.reconciled
    record = store.get(job)
    assert record is not None
    assert record.status is JobStatus.SENT
    assert record.idmensaje == MSG
    assert store.find_by_message_id(MSG) == job
    events = [e["event"] for e in store.events(count=50)]
    assert "job_reconciled" in events


def test_multi_recipient_job_status_follows_all_recipients(store: JobStore) -> None:
    """Two recipients: delivered once both are; certified once both final and one certified."""
    job = make_send_job(store, phones=(A, B))
    apply(store, 14, phone=A)
    assert store.status(job) is JobStatus.SENT  # B has no status yet
    apply(store, 11, phone=B)
    assert store.status(job) is JobStatus.DELIVERED
    apply(store, 51, phone=B, at=T0 + timedelta(minutes=5))  # B failed
    assert store.status(job) is JobStatus.CERTIFIED


def test_unknown_message_is_recorded_unmatched(store: JobStore) -> None:
    """A status for no known job changes nothing and leaves an unmatched event."""
    outcome = apply(store, 14, message_id=999)
    assert not outcome.found
    assert store.events(count=5)[-1]["event"] == "recipient_status_unmatched"


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ([], None),
        (["pending"], None),
        (["delivered", "pending"], None),
        (["delivered", "certified"], JobStatus.DELIVERED),
        (["certified", "certified"], JobStatus.CERTIFIED),
        (["certified", "failed"], JobStatus.CERTIFIED),
        (["failed", "expired"], JobStatus.FAILED),
        (["cancelled", "cancelled"], JobStatus.CANCELLED),
        (["unknown", "certified"], None),
    ],
)
def test_derive_job_status_table(classes: list[str], expected: JobStatus | None) -> None:
    """The documented multi-recipient rule, as a table."""
    assert derive_job_status([StatusClass(c) for c in classes]) == expected


def test_expected_phones_reads_every_payload_shape() -> None:
    """Destinatarios as a list, a JSON string or a '34600;34611' string all give the phones."""
    assert expected_phones({"Destinatarios": [{"Movil": A}, {"movil": B}]}) == {A, B}
    assert expected_phones({"DESTINATARIOS": f'[{{"Movil": "{A}"}}]'}) == {A}
    assert expected_phones({"destinatarios": f"{A};{B}"}) == {A, B}
    assert expected_phones({"recipients": [{"phone": "+" + A}]}) == {A}


C, D = "34622333444", "34633444555"


@pytest.mark.parametrize(
    ("destinatarios", "phones"),
    [
        (
            [{"Movil": A}, {"movil": "+" + B}, {"Telefono": "0034" + C[2:]}, {"phone": D}],
            {A, B, C, D},
        ),
        ([{"TELEFONO": A, "Nombre": "Ana"}], {A}),
        ({"Telefono": "+34 611 222 333", "Variable_1": "x"}, {B}),
        (f'[{{"Movil": "{A}"}}, {{"telefono": "{B}"}}, {{"Phone": "00{C}"}}]', {A, B, C}),
        (f'{{"Telefono": "{D}"}}', {D}),
        (f"{A}; +{B} ;00{C};", {A, B, C}),
        (f"{A},{B}", {A, B}),
        ([A, int(B), {"Movil": A}], {A, B}),
        ([{"Nombre": "no phone"}, {"Movil": C}], {C}),
        ("[not json", set()),
    ],
)
def test_expected_phones_of_a_multi_recipient_job_with_mixed_spellings(
    destinatarios: object, phones: set[str]
) -> None:
    """Every recipient key spelling and Destinatarios shape gives the canonical phones."""
    assert expected_phones({"Remitente": "X", "Destinatarios": destinatarios}) == phones


def test_job_waits_for_a_recipient_named_by_telefono(store: JobStore) -> None:
    """A recipient given as a single ``Telefono`` object still counts as waiting."""
    job = make_send_job(
        store, extra={"Destinatarios": [{"Movil": A}, {"Telefono": "+34 611 222 333"}]}
    )
    apply(store, 14, phone=A)
    assert store.status(job) is JobStatus.SENT  # B has no status yet
    apply(store, 14, phone=B)
    assert store.status(job) is JobStatus.CERTIFIED


def test_certificate_download_completes_job_and_deletes_files(
    store: JobStore, settings: Settings, tmp_path: Path
) -> None:
    """Storing the last certified recipient's ZIP → evidence_stored, then the FILE is deleted."""
    job = make_send_job(store, extra={"delete_files_after_certificate": True})
    apply(store, 14)
    recorder = Recorder()
    zip_path = make_zip(tmp_path / "dl.zip", {"cert.pdf": b"%PDF certified"})
    stored = certificate_downloaded(store, message_id=MSG, phone=A, path=zip_path, enqueue=recorder)
    assert stored.outcome == "stored"
    assert store.status(job) is JobStatus.EVIDENCE_STORED
    assert recorder.calls == [
        ("delete_file", {"Nombre": "notifica.pdf"}, f"autodelete:{job}:notifica.pdf")
    ]
    [entry] = EvidenceStore(settings).entries(job_id=job)
    assert entry["sha256"] == stored.sha256
    # a repeated download is a no-op and deletes nothing more
    certificate_downloaded(store, message_id=MSG, phone=A, path=zip_path, enqueue=recorder)
    assert len(recorder.calls) == 1


def test_no_file_deletion_unless_asked(store: JobStore, tmp_path: Path) -> None:
    """Without the option, evidence_stored deletes no library file."""
    job = make_send_job(store)
    apply(store, 14)
    recorder = Recorder()
    zip_path = make_zip(tmp_path / "c.zip", {"c.pdf": b"x"})
    certificate_downloaded(store, message_id=MSG, phone=A, path=zip_path, enqueue=recorder)
    assert store.status(job) is JobStatus.EVIDENCE_STORED
    assert recorder.calls == []
    asked = {
        **CONTACT,
        "Remitente": "TUEMPRESA",
        "Destinatarios": [{"Movil": A}],
        "Mensaje": "(FILE:2:a.pdf)",
        "Autoborrado": "Si",
    }
    assert library_files_to_delete(asked) == ["a.pdf"]


def test_evidence_waits_for_every_certified_recipient(store: JobStore, tmp_path: Path) -> None:
    """With two certified recipients the job is evidence_stored only after both ZIPs."""
    job = make_send_job(store, phones=(A, B))
    apply(store, 14, phone=A)
    apply(store, 14, phone=B)
    path_a = make_zip(tmp_path / "a.zip", {"a.pdf": b"a"})
    certificate_downloaded(store, message_id=MSG, phone=A, path=path_a, enqueue=Recorder())
    assert store.status(job) is JobStatus.CERTIFIED
    path_b = make_zip(tmp_path / "b.zip", {"b.pdf": b"b"})
    certificate_downloaded(store, message_id=MSG, phone=B, path=path_b, enqueue=Recorder())
    assert store.status(job) is JobStatus.EVIDENCE_STORED


def test_attachment_events_and_replies_are_recorded_once(store: JobStore) -> None:
    """EVENTOSSMSCERTIFICADO and SMSRECIBIDO land on the job and in the stream; duplicates once."""
    job = make_send_job(store)
    event = {
        "Servicio": "EVENTOSSMSCERTIFICADO",
        "Fichero": "notifica.pdf",
        "TipoAdjunto": "1",
        "Fecha": "2025-03-01 11:00:00",
        "Telefono": A,
        "TipoEvento": "1",
        "idEnvio": str(MSG),
        "idMensaje": str(MSG),
        "Valor": "00000000T",
    }
    reply = {
        "Servicio": "SMSRECIBIDO",
        "timestamp": "1664795529",
        "Fecha": "2025-03-01 11:05:00",
        "Movil": "34699000000",
        "Remitente": A,
        "Mensaje": "ACEPTO",
        "idR": "5",
        "idM": str(MSG),
        "EsCert": "true",
    }
    for body in (event, event, reply, reply):
        process_callback_fields(store, body, enqueue=Recorder())
    items = inbox(store, job)
    assert [item["type"] for item in items] == ["attachment_event", "reply"]
    assert items[1]["text"] == "ACEPTO"
    assert "last_reply" in record_of(store, job).other
    names = [e["event"] for e in store.events(count=50)]
    assert names.count("attachment_event") == 1 and names.count("reply_received") == 1


def _status_body(**changes: str) -> dict[str, str]:
    body = {
        "Servicio": "SMSCERTIFICADO",
        "Resultado": "11",
        "Movil": A,
        "Fecha": "2025-03-01 10:05:00",
        "Segundos": "3",
        "idMensaje": str(MSG),
    }
    return {**body, **changes}


def test_unrecognised_callbacks_are_kept_on_the_job_and_never_move_it(store: JobStore) -> None:
    """An unknown Servicio or an unreadable Resultado is kept (raw body, reason) on its job
    and in the stream, shown by the record, and changes no status."""
    job = make_send_job(store)
    store.transition(job, JobStatus.DELIVERED)
    bodies = [
        _status_body(Servicio="SMSMASIVO", Resultado="1"),
        _status_body(Resultado="catorce"),
    ]
    for body in (*bodies, bodies[0]):  # a duplicate is kept once
        process_callback_fields(store, body, enqueue=Recorder())
    items = [item for item in inbox(store, job) if item["type"] == "unrecognised"]
    assert [item["body"] for item in items] == bodies
    assert "unknown service" in items[0]["reason"] and items[1]["field"] == "Resultado"
    record = record_of(store, job)
    assert record.status is JobStatus.DELIVERED and record.recipients == {}
    assert "last_unrecognised" in record.other
    names = [e["event"] for e in store.events(count=50)]
    assert names.count("callback_unrecognised") == 2


def test_status_callback_with_odd_optional_fields_is_applied_forward_only(
    store: JobStore,
) -> None:
    """An empty Segundos, an unknown field or a bad Fecha does not stop a status callback;
    an older status never moves the recipient back."""
    job = make_send_job(store)
    enqueue = Recorder()
    process_callback_fields(store, _status_body(Segundos="", Operador="X"), enqueue=enqueue)
    assert record_of(store, job).recipients[A].result_code == 11
    process_callback_fields(store, _status_body(Resultado="10", Fecha="ayer"), enqueue=enqueue)
    assert record_of(store, job).recipients[A].result_code == 11
