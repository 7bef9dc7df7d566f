"""What the web app's views share: settings, Redis, and the two enqueue seams.

Kept in ``app.extensions["certsms"]``; views read it with :func:`web_context`. The
enqueue seams default to the real dramatiq producers (imported lazily, after the
entry point has set up the broker) and can be replaced when building the app.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app
from redis import Redis

from config.settings import Settings

if TYPE_CHECKING:
    from worker.jobs.store import JobStore

QueueCallback = Callable[[dict[str, str], str], str]
"""``(fields, received_at_iso) -> dramatiq message id``: durably queue one callback."""

EnqueueJob = Callable[[str, Mapping[str, Any], str | None], str]
"""``(kind, payload, idempotency_key) -> job id``: the producer API's generic enqueue."""


def default_queue_callback(fields: dict[str, str], received_at: str) -> str:
    """Send the callback to the ``process_callback`` actor (queue ``certsms.callbacks``)."""
    from tasks.callbacks import queue_callback

    return queue_callback(fields, received_at)


def default_enqueue_job(kind: str, payload: Mapping[str, Any], idempotency_key: str | None) -> str:
    """The producer API's ``tasks.enqueue`` (validates; raises InvalidRequest)."""
    from tasks import enqueue

    return str(enqueue(kind, payload, idempotency_key=idempotency_key))


@dataclass
class WebContext:
    """The app's collaborators (one per app)."""

    settings: Settings
    redis: Redis
    queue_callback: QueueCallback = default_queue_callback
    enqueue_job: EnqueueJob = default_enqueue_job
    _store: JobStore | None = field(default=None, repr=False)

    @property
    def store(self) -> JobStore:
        """The job store (created on first use: the jobs package is imported lazily)."""
        if self._store is None:
            from worker.jobs.store import JobStore

            self._store = JobStore(self.redis, self.settings)
        return self._store


def web_context() -> WebContext:
    """The current app's :class:`WebContext`."""
    context: WebContext = current_app.extensions["certsms"]
    return context
