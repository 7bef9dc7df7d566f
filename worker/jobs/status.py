"""Job statuses and their forward-only order.

A transition must go to a strictly higher :data:`RANK` unless it names the statuses
it expects (a worker releasing its own claim) or is forced (an operator action).
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is; see docs/jobs.md "Job states"."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING_CREDIT = "waiting_credit"
    IN_FLIGHT = "in_flight"
    UNCERTAIN = "uncertain"
    SCHEDULED = "scheduled"
    SENT = "sent"
    DELIVERED = "delivered"
    CERTIFIED = "certified"
    EVIDENCE_STORED = "evidence_stored"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"


#: Forward-only order: a transition must go to a strictly higher rank.
RANK: dict[JobStatus, int] = {
    JobStatus.QUEUED: 0,
    JobStatus.RUNNING: 10,
    JobStatus.WAITING_CREDIT: 15,  # a send refused for lack of credit; goes out after a top-up
    JobStatus.IN_FLIGHT: 20,
    JobStatus.UNCERTAIN: 30,
    JobStatus.SCHEDULED: 40,
    JobStatus.SENT: 50,
    JobStatus.DELIVERED: 60,
    JobStatus.CERTIFIED: 70,
    JobStatus.EVIDENCE_STORED: 80,
    JobStatus.SUCCEEDED: 80,
    JobStatus.REJECTED: 90,
    JobStatus.FAILED: 90,
    JobStatus.DEAD: 90,
    JobStatus.CANCELLED: 90,
}

#: States in which the job's own message has nothing left to do.
SETTLED: frozenset[JobStatus] = frozenset(
    s for s, r in RANK.items() if r >= RANK[JobStatus.UNCERTAIN]
)
