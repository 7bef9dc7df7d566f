"""The public producer API: ``enqueue_*`` and ``job_status``.

Each ``enqueue_*`` validates locally, records the job and queues its message
through the process's :class:`~worker.jobs.producer.Producer` (see there for
idempotency keys, references and local cancel/reschedule), and returns the job id.
Invalid input raises :class:`~mensatek.errors.InvalidRequest` listing every problem.
``settings`` selects another Redis/namespace than the environment's (tests, tools).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from certsms.config.settings import Settings
from certsms.worker import runtime as process_runtime
from certsms.worker.jobs.record import JobRecord
from certsms.worker.runtime import Runtime


def _runtime(settings: Settings | None) -> Runtime:
    if settings is not None:
        return process_runtime.setup(settings)
    return process_runtime.runtime()


def enqueue(
    kind: str,
    payload: Mapping[str, Any] | Any,
    *,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Validate, record and queue a job of ``kind``; returns its id."""
    producer = _runtime(settings).producer
    return producer.enqueue(kind, payload, idempotency_key=idempotency_key)


def job_status(job_id: str, *, settings: Settings | None = None) -> JobRecord | None:
    """The typed job record (``.status``, ``.idmensaje``, ``.attempts``, ``.error``,
    ``.recipients`` …; ``.to_dict()`` for JSON) or None."""
    return _runtime(settings).store.get(job_id)


def _kind_enqueuer(kind: str) -> Any:
    def enqueue_kind(
        payload: Mapping[str, Any] | Any | None = None,
        *,
        idempotency_key: str | None = None,
        settings: Settings | None = None,
        **fields: Any,
    ) -> str:
        data = dict(payload or {}) if isinstance(payload, Mapping) or payload is None else payload
        if fields:
            data = {**data, **fields}
        return enqueue(kind, data, idempotency_key=idempotency_key, settings=settings)

    enqueue_kind.__name__ = f"enqueue_{kind}"
    enqueue_kind.__doc__ = (
        f"Validate and queue a ``{kind}`` job (payload in provider or Python names, or as "
        "keyword arguments); returns the job id."
    )
    return enqueue_kind


enqueue_send = _kind_enqueuer("send")
enqueue_cancel = _kind_enqueuer("cancel")
enqueue_reschedule = _kind_enqueuer("reschedule")
enqueue_certificate = _kind_enqueuer("certificate")
enqueue_report = _kind_enqueuer("report")
enqueue_upload = _kind_enqueuer("upload")
enqueue_delete_file = _kind_enqueuer("delete_file")
enqueue_credits = _kind_enqueuer("credits")
enqueue_list_files = _kind_enqueuer("list_files")
