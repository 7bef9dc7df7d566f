"""certsms: Certified SMS and Contract SMS through the Mensatek API v7.

The producer API, importable by one unambiguous name::

    from certsms import enqueue_send, job_status
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

__all__ = [
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
