"""Job records and idempotency keys in Redis."""

from worker.jobs.idempotency import Claim, IdempotencyKeys, payload_hash
from worker.jobs.store import (
    RANK,
    SETTLED,
    JobStatus,
    JobStore,
    RecipientChange,
    TransitionResult,
    utc_now_iso,
)

__all__ = [
    # store
    "RANK",
    "SETTLED",
    # idempotency
    "Claim",
    "IdempotencyKeys",
    "JobStatus",
    "JobStore",
    "RecipientChange",
    "TransitionResult",
    "payload_hash",
    "utc_now_iso",
]
