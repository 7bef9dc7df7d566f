"""What the web app's views share: settings, Redis, the job store and the two enqueue seams.

Kept in ``app.extensions["certsms"]``; views read it with :func:`web_context`. The
enqueue seams default to a :class:`~worker.jobs.producer.Producer` on dramatiq's
broker (the entry point sets it up before serving) and can be replaced when
building the app (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
from flask import current_app
from redis import Redis

from certsms.config.settings import Settings
from certsms.worker.jobs.producer import Producer
from certsms.worker.jobs.store import JobStore

QueueCallback = Callable[[dict[str, str], str], str]
"""``(fields, received_at_iso) -> dramatiq message id``: durably queue one callback."""

EnqueueJob = Callable[[str, Mapping[str, Any], str | None], str]
"""``(kind, payload, idempotency_key) -> job id``: the producer API's generic enqueue."""


class WebContext:
    """The app's collaborators (one per app)."""

    def __init__(
        self,
        *,
        settings: Settings,
        redis: Redis,
        queue_callback: QueueCallback | None = None,
        enqueue_job: EnqueueJob | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.store = JobStore(redis, settings)
        self._producer: Producer | None = None
        self.queue_callback: QueueCallback = queue_callback or self._queue_callback
        self.enqueue_job: EnqueueJob = enqueue_job or self._enqueue_job

    @property
    def producer(self) -> Producer:
        """The producer on dramatiq's broker (created on first use, after the entry point
        has set the broker up)."""
        if self._producer is None:
            self._producer = Producer(
                self.redis, self.settings, broker=dramatiq.get_broker(), store=self.store
            )
        return self._producer

    def _queue_callback(self, fields: dict[str, str], received_at: str) -> str:
        return self.producer.queue_callback(fields, received_at)

    def _enqueue_job(self, kind: str, payload: Mapping[str, Any], key: str | None) -> str:
        return self.producer.enqueue(kind, payload, idempotency_key=key)


def web_context() -> WebContext:
    """The current app's :class:`WebContext`."""
    context: WebContext = current_app.extensions["certsms"]
    return context
