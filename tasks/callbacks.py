"""The ``process_callback`` actor: applies provider callbacks queued by the web process.

Message contract (v1)::

    queue_name  "certsms.callbacks"
    actor_name  "certsms.process_callback"
    args        []
    kwargs      {"v": 1, "fields": {<the callback body, values as strings>},
                 "received_at": "<ISO-8601 UTC>"}

The web answers the provider only after this message is in Redis. Processing is
idempotent (status only moves forward; one certificate download per message and
phone), so redelivery and provider retries are harmless. A status for a job that is
not known yet, or whose send has not recorded its ``idMensaje`` yet (the callback
overtook the worker), is kept (:mod:`worker.status_updates.kept`) and applied when
the send is ``sent`` or turns ``uncertain``: the message is done, never retried
into the dead letters.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog

from certsms.mensatek.callbacks import CallbackInvalid
from certsms.worker.jobs.contract import CALLBACK_ACTOR, CALLBACK_CONTRACT_VERSION, CALLBACKS_QUEUE
from certsms.worker.jobs.store import JobStatus
from certsms.worker.runtime import runtime
from certsms.worker.status_updates import Outcome, process_callback_fields

log = structlog.get_logger(__name__)

#: Attempts for a callback whose job is unknown or not yet recorded as sent.
UNSETTLED_RETRIES = 5
UNSETTLED_DELAY_MS = 3_000
_PRE_SENT = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.IN_FLIGHT})


class CallbackNotSettled(dramatiq.Retry):
    """Raised when a callback's job is unknown or not yet sent; processed again later."""


def _retry_when(retries: int, exc: BaseException) -> bool:
    if isinstance(exc, CallbackInvalid):
        return False
    if isinstance(exc, CallbackNotSettled):
        return retries < UNSETTLED_RETRIES
    return retries < 10


@dramatiq.actor(
    actor_name=CALLBACK_ACTOR,
    queue_name=CALLBACKS_QUEUE,
    retry_when=_retry_when,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=60_000,
)
def process_callback(v: int, fields: dict[str, str], received_at: str) -> None:
    """Apply one queued provider callback (see the module docstring)."""
    if v != CALLBACK_CONTRACT_VERSION:
        log.error("callback_message_version_unknown", v=v)
        return
    rt = runtime()
    outcome: Any = process_callback_fields(rt.store, fields, enqueue=rt.producer.enqueue_follow_up)
    if isinstance(outcome, Outcome) and not outcome.kept and outcome.job_status in _PRE_SENT:
        # applied to a send that has no idMensaje yet: look again shortly
        raise CallbackNotSettled("the job's send is not recorded yet", delay=UNSETTLED_DELAY_MS)
    log.info("callback_processed", received_at=received_at)
