"""The evidence store: certificate ZIPs on disk, written atomically, never silently replaced.

Layout under ``CERTSMS_CERT_DIR`` (default ``./var/certificates``)::

    <cert_dir>/
        manifest.jsonl                    one JSON line per stored file (append-only)
        .manifest.lock                    fcntl lock serialising writers (threads and processes)
        .pending/<idMensaje>-<phone>.zip  a download the store could not write (disk full,
                                          read-only): stored from here, never re-downloaded
        <idMensaje>/
            <phone>.zip                   the certificate of that recipient
            <phone>.conflict-<sha8>.zip   a later download that differed (kept, never swapped in)

A file is written to a temporary name in its final directory, fsynced, checked as a
ZIP and against the expected sha256, then renamed over nothing
(:func:`mensatek.files.atomic_write`): an existing verified file is never
overwritten by a different one. Re-storing identical bytes is a no-op.
Each stored file appends ``{"path", "sha256", "size_bytes", "members", "stored_at",
"job_id", "message_id", "phone", "kind"}`` to the manifest; :meth:`EvidenceStore.verify`
re-hashes every file of a job and compares it with the manifest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from certsms.config.errors import CertsmsError
from certsms.config.settings import Settings
from certsms.mensatek.files import atomic_write
from certsms.mensatek.phones import canonical_phone, is_plausible_phone
from certsms.worker import metrics
from certsms.worker.jobs.status import JobStatus
from certsms.worker.jobs.store import JobStore

log = structlog.get_logger(__name__)

MANIFEST_NAME = "manifest.jsonl"
PENDING_DIR = ".pending"
_LOCK_NAME = ".manifest.lock"
_MESSAGE_ID_RE = re.compile(r"^[0-9]{1,20}$")
_CHUNK_BYTES = 1024 * 1024

StoreOutcome = Literal["stored", "identical", "conflict"]


class EvidenceError(CertsmsError):
    """Raised when a certificate cannot be stored (not a ZIP, hash mismatch, bad name)."""


class EvidenceUnavailable(EvidenceError):
    """Raised when the store cannot take a certificate now (``reason`` ``no_space`` or
    ``not_writable``): download nothing, come back after ``retry_after_s``."""

    def __init__(self, message: str, *, reason: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s


_unavailable_since: dict[str, str] = {}
"""Root → the reason it was last found unavailable (one warning per episode)."""


@dataclass(frozen=True)
class StoredEvidence:
    """What :meth:`EvidenceStore.store` did with one certificate.

    ``outcome``: ``stored`` (new file), ``identical`` (same bytes already there; nothing
    written) or ``conflict`` (different bytes kept beside the existing file at ``path``).
    """

    outcome: StoreOutcome
    path: Path
    sha256: str
    size_bytes: int
    members: tuple[str, ...]
    message_id: str
    phone: str
    job_id: str | None


@dataclass(frozen=True)
class EvidenceCheck:
    """The result of re-hashing one stored file against its manifest entry."""

    path: str
    kind: str
    message_id: str
    phone: str
    expected_sha256: str
    actual_sha256: str | None
    size_bytes: int
    stored_at: str
    ok: bool
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        """The check as plain JSON (for ``certsms evidence --json``)."""
        return asdict(self)


@dataclass(frozen=True)
class _ZipFacts:
    sha256: str
    size_bytes: int
    members: tuple[str, ...]


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _zip_facts(path: Path) -> _ZipFacts:
    """Hash ``path`` and check it is a readable ZIP (every member's CRC); else EvidenceError."""
    sha256, size = _hash_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            members = tuple(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise EvidenceError(f"{path.name} is not a valid ZIP: {exc}") from None
    if bad is not None:
        raise EvidenceError(f"{path.name} is a damaged ZIP (member {bad!r} fails its CRC)")
    return _ZipFacts(sha256=sha256, size_bytes=size, members=members)


class EvidenceStore:
    """Certificates on local disk under ``settings.cert_dir`` (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.root = Path(settings.cert_dir)
        self.manifest_path = self.root / MANIFEST_NAME
        self.min_free_bytes = int(settings.evidence_min_free_mb * 1024 * 1024)
        self.backoff_s = settings.evidence_unavailable_backoff_s
        self.max_backoff_s = float(settings.evidence_retry_s)

    # --- can it take a file? -------------------------------------------------------------
    def ready(self, *, attempt: int = 1) -> None:
        """Raise :class:`EvidenceUnavailable` unless a certificate can be stored now.

        Checked *before* a download, so a full or read-only disk costs no provider
        request: the directory must exist or be creatable, accept a new file, and keep
        ``evidence_min_free_mb`` free. The back-off doubles with ``attempt`` from
        ``evidence_unavailable_backoff_s`` up to ``evidence_retry_s``. One warning per
        episode (``evidence_store_unavailable``), one line when it recovers, and
        ``certsms_evidence_unavailable_total`` per postponed download.
        """
        root = str(self.root)
        reason, detail = self._problem()
        if reason is None:
            if _unavailable_since.pop(root, None) is not None:
                log.warning("evidence_store_available", cert_dir=root)
            return
        retry_after_s = min(self.max_backoff_s, self.backoff_s * 2 ** max(0, attempt - 1))
        metrics.EVIDENCE_UNAVAILABLE.labels(reason=reason).inc()
        if _unavailable_since.get(root) != reason:
            _unavailable_since[root] = reason
            log.error(
                "evidence_store_unavailable",
                cert_dir=root,
                reason=reason,
                detail=detail,
                retry_after_s=retry_after_s,
            )
        raise EvidenceUnavailable(
            f"evidence store {root} cannot take certificates: {detail}",
            reason=reason,
            retry_after_s=retry_after_s,
        )

    def _problem(self) -> tuple[str | None, str]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # one probe per call: threads of one process check at the same time
            probe = self.root / f".probe-{os.getpid()}-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink(missing_ok=True)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                return "no_space", "no space left on the device"
            return "not_writable", f"{type(exc).__name__}: {exc.strerror or exc}"
        free = shutil.disk_usage(self.root).free
        if free < self.min_free_bytes:
            return "no_space", (
                f"{free // (1024 * 1024)} MB free, below evidence_min_free_mb "
                f"({self.min_free_bytes // (1024 * 1024)} MB)"
            )
        return None, ""

    # --- names -------------------------------------------------------------------------
    def path_for(self, message_id: int | str, phone: str) -> Path:
        """Where the certificate of ``phone`` in message ``message_id`` lives."""
        message, number = self._names(message_id, phone)
        return self.root / message / f"{number}.zip"

    @staticmethod
    def _names(message_id: int | str, phone: str) -> tuple[str, str]:
        message = str(message_id).strip()
        number = canonical_phone(str(phone))
        if not _MESSAGE_ID_RE.match(message):
            raise EvidenceError(f"message id {message_id!r} is not a number")
        if not is_plausible_phone(number):
            raise EvidenceError("phone must be 4-20 digits")
        return message, number

    # --- writing -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers: threads and processes on this host (fcntl advisory lock)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / _LOCK_NAME).open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def store(
        self,
        source: Path,
        *,
        message_id: int | str,
        phone: str,
        job_id: str | None,
        expected_sha256: str | None = None,
    ) -> StoredEvidence:
        """Store the ZIP at ``source`` as the certificate of (message, phone).

        ``source`` is left in place (the caller owns its temp file). Raises
        :class:`EvidenceError` when it is not a valid ZIP or its hash differs from
        ``expected_sha256`` (what the client computed while downloading).
        """
        message, number = self._names(message_id, phone)
        facts = _zip_facts(Path(source))
        if expected_sha256 is not None and facts.sha256 != expected_sha256.lower():
            raise EvidenceError("downloaded file's sha256 differs from the client's")
        target = self.path_for(message, number)
        with self._locked():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._keep(Path(source), message, number, exc) from exc
            outcome: StoreOutcome = "stored"
            if target.exists():
                existing = self._existing_facts(target)
                if existing is not None and existing.sha256 == facts.sha256:
                    log.info(
                        "certificate_already_stored",
                        idmensaje=message,
                        phone=number,
                        sha256=facts.sha256,
                    )
                    metrics.CERTIFICATES_STORED.labels(outcome="identical").inc()
                    return StoredEvidence(
                        "identical",
                        target,
                        facts.sha256,
                        facts.size_bytes,
                        facts.members,
                        message,
                        number,
                        job_id,
                    )
                if existing is not None:
                    outcome = "conflict"
                    conflict = target.with_name(f"{number}.conflict-{facts.sha256[:8]}.zip")
                    log.warning(
                        "certificate_conflict_kept",
                        idmensaje=message,
                        phone=number,
                        existing_sha256=existing.sha256,
                        new_sha256=facts.sha256,
                        kept_as=conflict.name,
                    )
                    target = conflict
                    if target.exists():  # the same differing file came twice
                        metrics.CERTIFICATES_STORED.labels(outcome="conflict").inc()
                        return StoredEvidence(
                            "conflict",
                            target,
                            facts.sha256,
                            facts.size_bytes,
                            facts.members,
                            message,
                            number,
                            job_id,
                        )
            try:
                self._write_atomically(Path(source), target, facts)
            except OSError as exc:
                raise self._keep(Path(source), message, number, exc) from exc
            entry = {
                "path": str(target.relative_to(self.root)),
                "kind": "conflict" if outcome == "conflict" else "certificate",
                "sha256": facts.sha256,
                "size_bytes": facts.size_bytes,
                "members": list(facts.members),
                "stored_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "job_id": job_id,
                "message_id": message,
                "phone": number,
            }
            self._append_manifest(entry)
        metrics.CERTIFICATES_STORED.labels(outcome=outcome).inc()
        if outcome == "stored":
            log.info(
                "certificate_stored",
                idmensaje=message,
                phone=number,
                job_id=job_id,
                sha256=facts.sha256,
                size_bytes=facts.size_bytes,
            )
        return StoredEvidence(
            outcome, target, facts.sha256, facts.size_bytes, facts.members, message, number, job_id
        )

    # --- downloads the store could not take -------------------------------------------
    def kept_path(self, message_id: int | str, phone: str) -> Path:
        """Where a downloaded certificate waits when the store could not write it."""
        message, number = self._names(message_id, phone)
        return self.root / PENDING_DIR / f"{message}-{number}.zip"

    def kept_download(self, message_id: int | str, phone: str) -> Path | None:
        """The kept download of (message, phone) if there is a readable one, else None."""
        path = self.kept_path(message_id, phone)
        if not path.exists():
            return None
        try:
            _zip_facts(path)
        except EvidenceError:
            path.unlink(missing_ok=True)
            return None
        return path

    def _keep(self, source: Path, message: str, number: str, exc: OSError) -> EvidenceUnavailable:
        """Keep ``source`` (already on this disk: a rename needs no space) for a later store;
        the error to raise says why the store could not take it."""
        kept = self.kept_path(message, number)
        first = source.resolve() != kept.resolve()  # not a retry from the kept file
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            if first:
                os.replace(source, kept)
        except OSError:
            log.exception("certificate_download_not_kept", idmensaje=message, phone=number)
        reason = "no_space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "not_writable"
        metrics.EVIDENCE_UNAVAILABLE.labels(reason=reason).inc()
        (log.error if first else log.debug)(
            "certificate_store_failed_download_kept",
            message_id=message,
            phone=number,
            reason=reason,
            kept=str(kept.relative_to(self.root)),
        )
        return EvidenceUnavailable(
            f"certificate {message}/{number} downloaded but not stored ({exc.strerror or exc});"
            " kept for the next attempt",
            reason=reason,
            retry_after_s=self.backoff_s,
        )

    def _existing_facts(self, target: Path) -> _ZipFacts | None:
        """The facts of an existing file, or None after moving a damaged one aside."""
        try:
            return _zip_facts(target)
        except EvidenceError:
            sha, _ = _hash_file(target)
            aside = target.with_name(f"{target.stem}.damaged-{sha[:8]}.zip")
            os.replace(target, aside)
            log.warning("certificate_damaged_moved_aside", path=str(aside.name))
            return None

    @staticmethod
    def _write_atomically(source: Path, target: Path, facts: _ZipFacts) -> None:
        def same_as_source(copy: Path) -> None:
            if _zip_facts(copy).sha256 != facts.sha256:
                raise EvidenceError("the copy's sha256 differs from the source's")

        with source.open("rb") as src:
            chunks = iter(lambda: src.read(_CHUNK_BYTES), b"")
            atomic_write(target, chunks, check=same_as_source, mode=0o444)

    def _append_manifest(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        with self.manifest_path.open("a", encoding="utf-8") as manifest:
            manifest.write(line)
            manifest.flush()
            os.fsync(manifest.fileno())

    # --- reading -----------------------------------------------------------------------
    def entries(
        self, *, job_id: str | None = None, message_id: int | str | None = None
    ) -> list[dict[str, Any]]:
        """Manifest entries, optionally only those of a job or a message (oldest first)."""
        if not self.manifest_path.exists():
            return []
        found: list[dict[str, Any]] = []
        with self.manifest_path.open(encoding="utf-8") as manifest:
            for line in manifest:
                line = line.strip()
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("manifest_line_unreadable")
                    continue
                if job_id is not None and entry.get("job_id") != job_id:
                    continue
                if message_id is not None and entry.get("message_id") != str(message_id):
                    continue
                found.append(entry)
        return found

    def has(self, message_id: int | str, phone: str) -> bool:
        """Whether a certificate for (message, phone) is stored (file present)."""
        return self.path_for(message_id, phone).exists()

    def verify(self, job_id: str) -> list[EvidenceCheck]:
        """Re-hash every file the manifest lists for ``job_id``; one check per file."""
        checks: list[EvidenceCheck] = []
        for entry in self.entries(job_id=job_id):
            path = self.root / str(entry["path"])
            expected = str(entry["sha256"])
            actual: str | None = None
            problem: str | None = None
            if not path.exists():
                problem = "missing"
            else:
                actual, size = _hash_file(path)
                if actual != expected:
                    problem = "sha256 mismatch"
                elif size != int(entry["size_bytes"]):
                    problem = "size mismatch"
            checks.append(
                EvidenceCheck(
                    path=str(path),
                    kind=str(entry.get("kind", "certificate")),
                    message_id=str(entry["message_id"]),
                    phone=str(entry["phone"]),
                    expected_sha256=expected,
                    actual_sha256=actual,
                    size_bytes=int(entry["size_bytes"]),
                    stored_at=str(entry["stored_at"]),
                    ok=problem is None,
                    problem=problem,
                )
            )
        return checks


def evidence_lag_s(store: JobStore, *, now_s: float) -> float:
    """How long the oldest certified send has waited for its evidence (0 when none waits),
    also set as ``certsms_evidence_lag_seconds``.

    A send is ``certified`` from its last recipient's certified status until every
    certificate is stored (then ``evidence_stored``), so the oldest entry of that status
    is the evidence backlog's age. A lag that keeps growing under steady traffic means
    certificate downloads do not keep pace with sends: raise
    ``rate_limit_certificate_per_s`` (docs/guard.md, "Sizing for N sends a day").
    """
    oldest = store.entered_status(JobStatus.CERTIFIED, limit=1)
    lag_s = max(0.0, now_s - oldest[0][1]) if oldest else 0.0
    metrics.EVIDENCE_LAG.set(lag_s)
    return lag_s
