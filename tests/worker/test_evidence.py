"""The evidence store: atomic writes, ZIP verification, manifest, conflicts, verify."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import dramatiq
import pytest

from certsms import tasks
from certsms.config.settings import Settings
from certsms.worker.evidence import EvidenceError, EvidenceStore, EvidenceUnavailable
from certsms.worker.runtime import Runtime
from tests.fixtures.jobs import wait_for
from tests.fixtures.sandbox import SandboxHandle, send_params
from tests.fixtures.web import make_zip

PHONE = "34600123456"


def _manifest(store: EvidenceStore) -> list[dict[str, object]]:
    if not store.manifest_path.exists():
        return []
    return [json.loads(line) for line in store.manifest_path.read_text().splitlines()]


def test_store_writes_layout_and_manifest(settings: Settings, tmp_path: Path) -> None:
    """A new certificate lands at <cert_dir>/<idMensaje>/<phone>.zip with a manifest entry."""
    source = make_zip(tmp_path / "dl" / "c.zip", {"cert.pdf": b"%PDF-1.4 x", "r.csv": b"a;b"})
    store = EvidenceStore(settings)
    result = store.store(source, message_id=10573758, phone=PHONE, job_id="job-1")
    expected = settings.cert_dir / "10573758" / f"{PHONE}.zip"
    assert result.outcome == "stored"
    assert result.path == expected
    assert expected.read_bytes() == source.read_bytes()
    assert result.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    [entry] = _manifest(store)
    assert entry["sha256"] == result.sha256
    assert entry["size_bytes"] == source.stat().st_size
    assert entry["members"] == ["cert.pdf", "r.csv"]
    assert (entry["job_id"], entry["message_id"], entry["phone"]) == ("job-1", "10573758", PHONE)
    assert entry["stored_at"]
    assert [p.name for p in expected.parent.iterdir()] == [expected.name]  # no temp file left


def test_store_identical_again_is_a_noop(settings: Settings, tmp_path: Path) -> None:
    """Storing the same bytes twice keeps one file and one manifest entry."""
    source = make_zip(tmp_path / "c.zip", {"cert.pdf": b"%PDF same"})
    store = EvidenceStore(settings)
    store.store(source, message_id=1, phone=PHONE, job_id="j")
    again = store.store(source, message_id=1, phone=PHONE, job_id="j")
    assert again.outcome == "identical"
    assert len(_manifest(store)) == 1


def test_store_different_file_is_kept_beside_never_over(settings: Settings, tmp_path: Path) -> None:
    """A different download never replaces a verified certificate; it is kept as a conflict."""
    first = make_zip(tmp_path / "a.zip", {"cert.pdf": b"%PDF first"})
    second = make_zip(tmp_path / "b.zip", {"cert.pdf": b"%PDF second"})
    store = EvidenceStore(settings)
    original = store.store(first, message_id=7, phone=PHONE, job_id="j")
    conflict = store.store(second, message_id=7, phone=PHONE, job_id="j")
    assert conflict.outcome == "conflict"
    assert original.path.read_bytes() == first.read_bytes()
    assert conflict.path.name == f"{PHONE}.conflict-{conflict.sha256[:8]}.zip"
    assert conflict.path.read_bytes() == second.read_bytes()
    kinds = [entry["kind"] for entry in _manifest(store)]
    assert kinds == ["certificate", "conflict"]


def test_store_refuses_a_non_zip_and_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    """A body that is not a ZIP (e.g. an error page) raises and leaves no file."""
    source = tmp_path / "error.zip"
    source.write_bytes(b'[{"Res":"-3","Error":"bad"}]')
    store = EvidenceStore(settings)
    with pytest.raises(EvidenceError):
        store.store(source, message_id=1, phone=PHONE, job_id="j")
    assert not store.path_for(1, PHONE).exists()
    assert _manifest(store) == []


def test_store_refuses_a_hash_that_differs_from_the_client(
    settings: Settings, tmp_path: Path
) -> None:
    """The client's sha256 must match the file handed over."""
    source = make_zip(tmp_path / "c.zip", {"cert.pdf": b"%PDF"})
    with pytest.raises(EvidenceError):
        EvidenceStore(settings).store(
            source, message_id=1, phone=PHONE, job_id="j", expected_sha256="0" * 64
        )


def test_store_rejects_path_tricks_in_names(settings: Settings, tmp_path: Path) -> None:
    """Message ids and phones are digits only, so no name can escape the store."""
    source = make_zip(tmp_path / "c.zip", {"cert.pdf": b"%PDF"})
    store = EvidenceStore(settings)
    with pytest.raises(EvidenceError):
        store.store(source, message_id="../1", phone=PHONE, job_id="j")
    with pytest.raises(EvidenceError):
        store.store(source, message_id=1, phone="../../etc", job_id="j")


def test_verify_detects_tampering_and_missing_files(settings: Settings, tmp_path: Path) -> None:
    """verify() re-hashes each file: a changed file and a removed file are both reported."""
    store = EvidenceStore(settings)
    a = store.store(
        make_zip(tmp_path / "a.zip", {"a.pdf": b"A"}), message_id=5, phone=PHONE, job_id="job-v"
    )
    b = store.store(
        make_zip(tmp_path / "b.zip", {"b.pdf": b"B"}),
        message_id=5,
        phone="34611111111",
        job_id="job-v",
    )
    assert all(check.ok for check in store.verify("job-v"))
    a.path.chmod(0o644)
    a.path.write_bytes(a.path.read_bytes() + b"tampered")
    b.path.unlink()
    problems = {Path(c.path).name: c.problem for c in store.verify("job-v")}
    assert problems == {f"{PHONE}.zip": "sha256 mismatch", "34611111111.zip": "missing"}


def test_concurrent_stores_write_one_file_and_one_entry(settings: Settings, tmp_path: Path) -> None:
    """Twenty threads storing the same certificate at once leave one file and one entry."""
    source = make_zip(tmp_path / "c.zip", {"cert.pdf": b"%PDF concurrent"})
    store = EvidenceStore(settings)
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def work() -> None:
        barrier.wait()
        outcomes.append(store.store(source, message_id=9, phone=PHONE, job_id="j").outcome)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["identical"] * 19 + ["stored"]
    assert len(_manifest(store)) == 1
    assert [p.name for p in (settings.cert_dir / "9").iterdir()] == [f"{PHONE}.zip"]


def test_evidence_cli_exit_codes(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`certsms evidence JOB --json` reports the files; exit 1 once a hash no longer matches."""
    from certsms.worker.cli import main

    store = EvidenceStore(settings)
    stored = store.store(
        make_zip(tmp_path / "a.zip", {"a.pdf": b"A"}), message_id=3, phone=PHONE, job_id="job-cli"
    )
    monkeypatch.setenv("CERTSMS_CERT_DIR", str(settings.cert_dir))
    capsys.readouterr()
    assert main(["evidence", "job-cli", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["files"][0]["expected_sha256"] == stored.sha256
    stored.path.chmod(0o644)
    stored.path.write_bytes(b"not the same")
    assert main(["evidence", "job-cli"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_ready_refuses_below_min_free_space_with_backoff(settings: Settings) -> None:
    """Below evidence_min_free_mb the store is not ready (no_space); the back-off doubles
    per attempt up to evidence_retry_s; with the space back it is ready again."""
    full = EvidenceStore(
        settings.model_copy(
            update={
                "evidence_min_free_mb": 1e12,
                "evidence_unavailable_backoff_s": 4.0,
                "evidence_retry_s": 20,
            }
        )
    )
    waits = []
    for attempt in (1, 2, 3, 4):
        with pytest.raises(EvidenceUnavailable) as info:
            full.ready(attempt=attempt)
        assert info.value.reason == "no_space"
        waits.append(info.value.retry_after_s)
    assert waits == [4.0, 8.0, 16.0, 20.0]
    assert "evidence_min_free_mb" in str(info.value)
    EvidenceStore(settings.model_copy(update={"evidence_min_free_mb": 0})).ready()


def test_ready_refuses_an_unwritable_directory(settings: Settings, tmp_path: Path) -> None:
    """A cert_dir that cannot hold files (a file is in the way) is not_writable."""
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    store = EvidenceStore(settings.model_copy(update={"cert_dir": blocked / "certs"}))
    with pytest.raises(EvidenceUnavailable) as info:
        store.ready()
    assert info.value.reason == "not_writable"


def test_full_evidence_store_means_one_download_per_certificate(
    jobs_runtime: Runtime, job_worker: dramatiq.Worker, sandbox: SandboxHandle
) -> None:
    """While the evidence disk is full the certificate job waits (several back-offs) with
    no provider request; once there is space it downloads once and stores the ZIP."""
    settings = jobs_runtime.settings
    # the disk is "full": the running worker's settings demand more free space than exists
    object.__setattr__(settings, "evidence_min_free_mb", 1e12)
    object.__setattr__(settings, "evidence_unavailable_backoff_s", 0.1)
    answer = sandbox.call("EnviarSMSCERTIFICADO", send_params(Mensaje="Aviso")).json()[0]
    sandbox.tick(3)  # delivered → certified
    message_id = int(answer["idMensaje"])
    job_id = tasks.enqueue_certificate(
        {"Idmensaje": message_id, "Telefono": "34600000001"}, settings=settings
    )
    store = jobs_runtime.store

    def postponed() -> bool:
        events = [e for e in store.events(count=500) if e.get("job_id") == job_id]
        return sum(1 for e in events if e.get("reason") == "no_space") >= 2

    wait_for(postponed, timeout_s=60)
    assert sandbox.requests("GetSMSCERTIFICADO") == []
    object.__setattr__(settings, "evidence_min_free_mb", 0.0)  # the operator frees space
    wait_for(
        lambda: (r := store.get(job_id)) is not None and r.status == "succeeded",
        timeout_s=60,
    )
    assert len(sandbox.requests("GetSMSCERTIFICADO")) == 1
    assert EvidenceStore(settings).has(message_id, "34600000001")


def test_download_the_store_cannot_write_is_kept_not_downloaded_again(
    jobs_settings: Settings, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """The disk refuses the certificate after its download (the message's directory cannot
    be made): the ZIP is kept, later runs store it without a new request — 1 download."""
    from certsms.tasks.boot import setup

    certs = tmp_path / "certs"
    s = jobs_settings.model_copy(
        update={"evidence_unavailable_backoff_s": 0.1, "cert_dir": certs, "evidence_min_free_mb": 0}
    )
    runtime = setup(s)
    answer = sandbox.call("EnviarSMSCERTIFICADO", send_params(Mensaje="Aviso")).json()[0]
    sandbox.tick(3)
    message_id = int(answer["idMensaje"])
    certs.mkdir(parents=True)
    (certs / str(message_id)).write_text("in the way")  # mkdir of the message's dir fails
    job_id = tasks.enqueue_certificate(
        {"Idmensaje": message_id, "Telefono": "34600000001"}, settings=s
    )
    evidence = EvidenceStore(s)
    worker = dramatiq.Worker(runtime.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        store = runtime.store

        def refused_twice() -> bool:
            events = [e for e in store.events(count=500) if e.get("job_id") == job_id]
            return sum(1 for e in events if e.get("reason") == "not_writable") >= 2

        wait_for(refused_twice, timeout_s=60)
        assert evidence.kept_download(message_id, "34600000001") is not None
        (certs / str(message_id)).unlink()  # the operator fixes the disk
        wait_for(
            lambda: (r := store.get(job_id)) is not None and r.status == "succeeded",
            timeout_s=60,
        )
    finally:
        worker.stop(timeout=10_000)
    assert len(sandbox.requests("GetSMSCERTIFICADO")) == 1
    assert evidence.has(message_id, "34600000001")
    assert evidence.kept_download(message_id, "34600000001") is None
    assert [e["phone"] for e in evidence.entries(message_id=message_id)] == ["34600000001"]


def test_evidence_lag_is_the_age_of_the_oldest_certified_send(
    settings: Settings, redis_client: object
) -> None:
    """The lag is now minus when the oldest still-certified send became certified (and is
    the gauge's value); 0 once its evidence is stored."""
    import redis as redis_lib
    from prometheus_client import REGISTRY

    from certsms.worker.evidence import evidence_lag_s
    from certsms.worker.jobs.store import JobStatus, JobStore

    assert isinstance(redis_client, redis_lib.Redis)
    store = JobStore(redis_client, settings)
    assert evidence_lag_s(store, now_s=1e9) == 0.0
    for job_id in ("old", "new"):
        store.create(job_id, kind="send", payload={"Mensaje": "x"})
        for step in (JobStatus.RUNNING, JobStatus.IN_FLIGHT, JobStatus.SENT, JobStatus.CERTIFIED):
            store.transition(job_id, step)
    entered = dict(store.entered_status(JobStatus.CERTIFIED))
    lag = evidence_lag_s(store, now_s=entered["old"] + 42.0)
    assert lag == 42.0
    assert REGISTRY.get_sample_value("certsms_evidence_lag_seconds") == 42.0
    store.transition("old", JobStatus.EVIDENCE_STORED)
    assert evidence_lag_s(store, now_s=entered["new"] + 5.0) == 5.0
    store.transition("new", JobStatus.EVIDENCE_STORED)
    assert evidence_lag_s(store, now_s=entered["new"] + 5.0) == 0.0
