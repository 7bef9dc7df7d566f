"""Job records, their store, idempotency keys, the message contract and the producer."""

from worker.jobs.idempotency import Claim, IdempotencyKeys, payload_hash
from worker.jobs.record import JobRecord, RecipientState
from worker.jobs.store import (
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
