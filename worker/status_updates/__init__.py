"""Recipient status updates: callbacks and the report poller both land here.

:func:`apply_recipient_status` is the one way a recipient's ``Resultado`` enters a job:

1. find the send job by ``idMensaje``, else by ``Referencia`` when the reference names
   one job with no other ``idMensaje`` (:func:`match_job`); a callback that matches no
   job, or a job that has not learned its ``idMensaje`` yet (``in_flight``), is kept
   (:class:`KeptCallbacks`) and applied by :func:`replay_kept` once the job is ``sent``
   or turns ``uncertain``; a phone that is not one of the job's recipients changes
   nothing (``recipient_status_anomaly``);
2. reconcile an ``uncertain`` send: the provider knows the message, so it was sent
   (→ ``sent`` with that ``idMensaje``);
3. record the recipient's code forward-only (:meth:`JobStore.update_recipient`:
   ``pending``/``unknown`` < ``delivered`` < final classes; a late, duplicate or
   out-of-order update changes nothing; a final class is never replaced);
4. derive the job's status from its recipients' per-class counts
   (:func:`derive_from_counts`, the same rule as :func:`derive_job_status`; a callback
   costs the same for 10 or 10,000 recipients) and move it forward (never back);
5. when the recipient is certified, enqueue exactly one certificate download for
   (message, phone), however many times and however concurrently the status arrives
   (``SET NX`` on ``<ns>:certificate-trigger:<idMensaje>:<phone>``).

Multi-recipient jobs (docs/status-tracking.md): a job is ``delivered`` when every
recipient is delivered or final; ``certified`` when every recipient is final and at
least one is certified; ``failed`` (or ``cancelled`` when all were cancelled) when
every recipient is final and none is certified; ``evidence_stored`` when it is
certified and every certified recipient's certificate is in the evidence store.
Recipients the job sent to but that have no status yet count as pending.

:func:`certificate_downloaded` is what the certificate actor calls with the ZIP the
client fetched: it stores it (:class:`~worker.evidence.EvidenceStore`), and completes
the job (``evidence_stored`` and, when asked, deletion of the library files the
message used) via :func:`complete_evidence`.

Modules: :mod:`~worker.status_updates.recipients` (apply a recipient status, derive
the job status), :mod:`~worker.status_updates.certificates` (certificate trigger,
evidence completion, library file deletion), :mod:`~worker.status_updates.replies`
(attachment events, replies, queued callback bodies, replaying kept ones),
:mod:`~worker.status_updates.kept` (callbacks kept until their job can take them).
"""

from certsms.worker.status_updates._shared import (
    Enqueue,
    Match,
    expected_phones,
    find_job,
    match_job,
)
from certsms.worker.status_updates.certificates import (
    certificate_downloaded,
    certificate_trigger_key,
    complete_evidence,
    delete_library_files,
    library_files_to_delete,
    trigger_certificate,
)
from certsms.worker.status_updates.kept import KeptCallbacks
from certsms.worker.status_updates.recipients import (
    FINAL_CLASSES,
    Outcome,
    apply_recipient_status,
    derive_from_counts,
    derive_job_status,
    refresh_job_status,
)
from certsms.worker.status_updates.replies import (
    apply_attachment_event,
    apply_reply,
    inbox,
    process_callback_fields,
    replay_kept,
)

__all__ = [
    "FINAL_CLASSES",
    "Enqueue",
    "KeptCallbacks",
    "Match",
    "Outcome",
    "apply_attachment_event",
    "apply_recipient_status",
    "apply_reply",
    "certificate_downloaded",
    "certificate_trigger_key",
    "complete_evidence",
    "delete_library_files",
    "derive_from_counts",
    "derive_job_status",
    "expected_phones",
    "find_job",
    "inbox",
    "library_files_to_delete",
    "match_job",
    "process_callback_fields",
    "refresh_job_status",
    "replay_kept",
    "trigger_certificate",
]
