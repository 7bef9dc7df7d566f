"""What every status update needs: the enqueue seam and finding the send job."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from worker.jobs.store import JobStore

Enqueue = Callable[[str, Mapping[str, Any], str | None], str]
"""``(kind, payload, idempotency_key) -> job id``: the producer API's generic enqueue."""


def default_enqueue(kind: str, payload: Mapping[str, Any], idempotency_key: str | None) -> str:
    """Enqueue through the producer API (:func:`tasks.enqueue`)."""
    from tasks import enqueue

    return str(enqueue(kind, payload, idempotency_key=idempotency_key))


def find_job(store: JobStore, *, message_id: int | None, reference: str | None) -> str | None:
    """The send job of ``idMensaje``, else of ``Referencia``."""
    if message_id:
        job_id = store.find_by_message_id(message_id)
        if job_id:
            return job_id
    if reference:
        return store.find_by_reference(reference)
    return None


def lower_keys(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping with its keys lower-cased (provider names are case-insensitive)."""
    return {str(k).lower(): v for k, v in payload.items()}
