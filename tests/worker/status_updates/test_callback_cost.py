"""A callback costs the same Redis work for a 10-recipient send as for a 10,000-recipient one."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import redis

from certsms.config.settings import Settings
from certsms.mensatek.status import StatusClass
from certsms.worker.jobs.producer import Producer
from certsms.worker.jobs.store import JobStatus, JobStore
from certsms.worker.status_updates import (
    derive_from_counts,
    derive_job_status,
    process_callback_fields,
)
from tests.fixtures.maintenance import SEND_PAYLOAD
from tests.worker.status_updates.test_matching import Recorder, Sink, status_body


def _phones(count: int, *, prefix: str) -> list[str]:
    return [f"346{prefix}{n:07d}" for n in range(count)]


def _sent_job(producer: Producer, store: JobStore, phones: list[str], msg: int) -> str:
    payload: dict[str, Any] = {**SEND_PAYLOAD, "Destinatarios": [{"Movil": p} for p in phones]}
    job = producer.enqueue("send", payload)
    for step in (JobStatus.RUNNING, JobStatus.IN_FLIGHT):
        store.transition(job, step)
    store.transition(job, JobStatus.SENT, idmensaje=msg)
    return job


def _cost(client: redis.Redis, store: JobStore, body: dict[str, str]) -> tuple[int, int]:
    """(commands, bytes Redis sent back) to process one callback body."""
    before = client.info("stats")
    process_callback_fields(store, body, enqueue=Recorder())
    after = client.info("stats")
    commands = after["total_commands_processed"] - before["total_commands_processed"]
    sent = after["total_net_output_bytes"] - before["total_net_output_bytes"]
    return commands, sent


def test_callback_cost_does_not_grow_with_recipients(
    redis_client: redis.Redis, settings: Settings
) -> None:
    """The same number of Redis commands, and about the same bytes read, per delivered
    callback for a 10- and a 10,000-recipient job (nothing reads every recipient)."""
    store = JobStore(redis_client, settings)
    producer = Producer(redis_client, settings, broker=Sink(), store=store)
    costs = []
    for size, msg, prefix in ((10, 501, "1"), (10_000, 502, "2")):
        phones = _phones(size, prefix=prefix)
        job = _sent_job(producer, store, phones, msg)
        # a first callback warms nothing up that a later one would not need; measure the second
        process_callback_fields(
            store, status_body(phones[0], 11, reference=None, msg=msg), enqueue=Recorder()
        )
        costs.append(
            _cost(redis_client, store, status_body(phones[1], 11, reference=None, msg=msg))
        )
        record = store.head(job)
        assert record is not None and record.recipients_total == size
    (small_commands, small_bytes), (big_commands, big_bytes) = costs
    assert big_commands == small_commands
    assert big_bytes < small_bytes + 1024  # the job's 10,000 phones are never sent back


def test_derive_from_counts_agrees_with_derive_job_status() -> None:
    """Counting classes gives the job status that reading every recipient gives, for
    every mix of up to three recipients of every class (and unrecorded ones)."""
    classes = [c.value for c in StatusClass]
    for size in range(1, 4):
        for mix in itertools.product([*classes, None], repeat=size):
            recorded = [c for c in mix if c is not None]
            counts = dict(Counter(recorded))
            every = [StatusClass(c) if c else StatusClass.PENDING for c in mix]
            assert derive_from_counts(counts, size) == derive_job_status(every), mix
