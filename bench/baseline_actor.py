"""The baseline: a bare dramatiq actor that posts the same send with ``requests``.

What a user would write without certsms: no validation, no job record, no guard, no
per-job log line. One ``requests.Session`` per worker thread (keep-alive, like the
certsms client), the same JSON body, Basic auth, a timeout, and the answer parsed.

The dramatiq CLI runs it as ``python -m dramatiq bench.baseline_actor`` with
``BENCH_REDIS_URL`` and ``BENCH_BASE_URL`` set; the benchmark process builds its own
broker with :func:`build` to enqueue.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dramatiq
import requests
from dramatiq.brokers.redis import RedisBroker

NAMESPACE = "bench-bare"
QUEUE = "bench.send"
ACTOR = "bare_send"
USER, TOKEN = "demo", "demo-token"
_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def bare_send(params: dict[str, Any]) -> None:
    """POST ``params`` to EnviarSMSCERTIFICADO and fail on anything but a positive Res."""
    url = os.environ["BENCH_BASE_URL"] + "EnviarSMSCERTIFICADO"
    response = _session().post(
        url, json={**params, "Resp": "JSON"}, auth=(USER, TOKEN), timeout=(5, 30)
    )
    response.raise_for_status()
    answer = response.json()
    first = answer[0] if isinstance(answer, list) else answer
    if int(first.get("Res", 0)) <= 0:
        raise RuntimeError(f"send refused: {first}")


def build(url: str) -> tuple[RedisBroker, dramatiq.Actor[Any, Any]]:
    """A plain RedisBroker (default middleware) and the actor declared on it."""
    broker = RedisBroker(url=url, namespace=NAMESPACE)
    declare = dramatiq.actor(broker=broker, actor_name=ACTOR, queue_name=QUEUE, max_retries=0)
    return broker, declare(bare_send)


if os.environ.get("BENCH_REDIS_URL"):  # loaded by the dramatiq CLI
    broker, actor = build(os.environ["BENCH_REDIS_URL"])
    dramatiq.set_broker(broker)
