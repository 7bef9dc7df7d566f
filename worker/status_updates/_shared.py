"""What every status update needs: the enqueue seam and finding the send job."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from worker.jobs.store import JobStore

Enqueue = Callable[[str, Mapping[str, Any], str | None], str]
"""``(kind, payload, idempotency_key) -> job id``: how a status update queues follow-up
work (certificate downloads, library-file deletions). The entry point that wires the
process hands one in: :meth:`worker.jobs.producer.Producer.enqueue_follow_up`."""


def find_job(store: JobStore, *, message_id: int | None, reference: str | None) -> str | None:
    """The send job of ``idMensaje``, else of ``Referencia``."""
    if message_id:
        job_id = store.find_by_message_id(message_id)
        if job_id:
            return job_id
    if reference:
        return store.find_by_reference(reference)
    return None
