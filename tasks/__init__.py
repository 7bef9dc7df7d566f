"""The producer API (``enqueue_*``, ``job_status``) and the message contract.

The dramatiq actors live in :mod:`tasks.actors`; importing this package does not
import them (a producer needs no actor).
"""

from certsms.tasks.producer import (
    enqueue,
    enqueue_cancel,
    enqueue_certificate,
    enqueue_credits,
    enqueue_delete_file,
    enqueue_list_files,
    enqueue_report,
    enqueue_reschedule,
    enqueue_send,
    enqueue_upload,
    job_status,
)
from certsms.worker.jobs.contract import ACTOR_OF, CONTRACT_VERSION, KINDS, QUEUE_OF, QUEUES

__all__ = [
    # contract
    "ACTOR_OF",
    "CONTRACT_VERSION",
    "KINDS",
    "QUEUES",
    "QUEUE_OF",
    # producer API
    "enqueue",
    "enqueue_cancel",
    "enqueue_certificate",
    "enqueue_credits",
    "enqueue_delete_file",
    "enqueue_list_files",
    "enqueue_report",
    "enqueue_reschedule",
    "enqueue_send",
    "enqueue_upload",
    "job_status",
]
