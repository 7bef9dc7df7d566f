"""Dead letters of every queue, the provider callbacks' included, in ``certsms dead``."""

from __future__ import annotations

from certsms.worker.deadletter import DeadLetters
from certsms.worker.dramatiq_keys import queue_key
from certsms.worker.jobs.contract import CALLBACKS_QUEUE, callback_message
from certsms.worker.runtime import Runtime


def test_dead_callbacks_are_listed_shown_and_retried(jobs_runtime: Runtime) -> None:
    """A callback message dead-lettered on certsms.callbacks is listed (with its queue),
    shown without its fields, and retried back onto its queue."""
    broker = jobs_runtime.broker
    broker.declare_queue(CALLBACKS_QUEUE)
    message = broker.enqueue(callback_message({"Telefono": "34600000001"}, "2026-01-01T00:00:00Z"))
    consumer = broker.consume(CALLBACKS_QUEUE, prefetch=1, timeout=1000)
    fetched = next(m for m in consumer if m is not None)
    consumer.nack(fetched)
    consumer.close()
    letters = DeadLetters(broker, jobs_runtime.settings)
    rows = [d.summary() for d in letters.list()]
    assert [(r["queue"], r["actor"]) for r in rows] == [(CALLBACKS_QUEUE, message.actor_name)]
    detail = letters.get(rows[0]["id"])
    assert detail is not None and "34600000001" not in str(detail.detail())
    letters.retry(rows[0]["id"])
    assert letters.list() == []
    assert broker.client.llen(queue_key(broker.namespace, CALLBACKS_QUEUE)) == 1
