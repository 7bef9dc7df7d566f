"""Job records, their store, idempotency keys, the message contract and the producer."""

from certsms.worker.jobs.idempotency import Claim, IdempotencyKeys, payload_hash
from certsms.worker.jobs.record import JobRecord, RecipientState
from certsms.worker.jobs.store import (
    RANK,
    SETTLED,
    JobStatus,
    JobStore,
    RecipientChange,
    TransitionResult,
    utc_now_iso,
)

__all__ = [  # noqa: RUF022 - grouped
    # store
    "RANK",
    "SETTLED",
    "JobStatus",
    "JobStore",
    "RecipientChange",
    "TransitionResult",
    "utc_now_iso",
    # record
    "JobRecord",
    "RecipientState",
    # idempotency
    "Claim",
    "IdempotencyKeys",
    "payload_hash",
]
