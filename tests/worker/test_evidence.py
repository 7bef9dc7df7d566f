"""The evidence store: atomic writes, ZIP verification, manifest, conflicts, verify."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from config.settings import Settings
from tests.fixtures.web import make_zip
from worker.evidence import EvidenceError, EvidenceStore

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
    from worker.cli import main

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
