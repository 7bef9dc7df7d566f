"""Callback delivery: the sandbox POSTs status changes, events and replies (docs/provider.md §5).

Deliveries run on background threads so a slow receiver never holds an API
answer. Each callback is tried once plus ``callback_retries`` times with a
doubling delay; a share (``callback_drop_rate``) is dropped on purpose, the way a
lost callback looks to the receiver. Every outcome is kept for ``/_admin/state``:
``delivered``, ``failed``, ``dropped``, or ``not_requested`` (a status callback
held back because its send had no ``Report=1`` and ``report_gates_callbacks`` is on).
"""

from __future__ import annotations

import collections
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from certsms.sandbox.config import SandboxConfig

_STOP = object()


@dataclass
class _Job:
    seq: int
    payload: dict[str, str]
    url: str
    user: str | None
    password: str | None
    form: bool
    retries: int
    delay_s: float
    timeout_s: float


class CallbackDispatcher:
    """A queue of callbacks and the worker threads that deliver them."""

    def __init__(self, config: SandboxConfig, *, workers: int = 2) -> None:
        self.config = config
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._seq = 0
        self._rng = random.Random(config.fault_seed)
        self.deliveries: collections.deque[dict[str, Any]] = collections.deque(maxlen=5000)
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"sandbox-callbacks-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def emit(self, payload: dict[str, Any]) -> None:
        """Queue one callback (values become strings) if a callback URL is configured."""
        config = self.config
        if not config.callback_url:
            return
        body = {key: "" if value is None else str(value) for key, value in payload.items()}
        with self._lock:
            self._seq += 1
            seq = self._seq
            if self._rng.random() < config.callback_drop_rate:
                self.deliveries.append(_record(seq, body, "dropped", 0, None))
                return
            self._pending += 1
        self._queue.put(
            _Job(
                seq=seq,
                payload=body,
                url=config.callback_url,
                user=config.callback_user,
                password=config.callback_password,
                form=config.callback_format == "form",
                retries=max(0, config.callback_retries),
                delay_s=max(0.0, config.callback_retry_delay_s),
                timeout_s=config.callback_timeout_s,
            )
        )

    def skip(self, payload: dict[str, Any], why: str) -> None:
        """Record a callback not sent on purpose (outcome ``not_requested``), if a URL is set."""
        if not self.config.callback_url:
            return
        body = {key: "" if value is None else str(value) for key, value in payload.items()}
        with self._lock:
            self._seq += 1
            self.deliveries.append(_record(self._seq, body, "not_requested", 0, None, why))

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until every queued callback is delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def clear(self) -> None:
        """Forget the delivery log (queued callbacks still go out)."""
        with self._lock:
            self.deliveries.clear()
            self._rng = random.Random(self.config.fault_seed)

    def stop(self) -> None:
        """Stop the worker threads (queued callbacks are abandoned)."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(_STOP)

    def _run(self) -> None:
        session = requests.Session()
        while True:
            job = self._queue.get()
            if job is _STOP or not isinstance(job, _Job):
                return
            try:
                record = self._deliver(session, job)
            except Exception as exc:  # never let a worker die
                record = _record(job.seq, job.payload, "failed", 0, None, repr(exc))
            with self._idle:
                self.deliveries.append(record)
                self._pending -= 1
                self._idle.notify_all()

    def _deliver(self, session: requests.Session, job: _Job) -> dict[str, Any]:
        auth = (job.user, job.password or "") if job.user else None
        attempts = 0
        status: int | None = None
        error: str | None = None
        delay_s = job.delay_s
        while attempts <= job.retries and not self._stopping.is_set():
            attempts += 1
            try:
                if job.form:
                    response = session.post(
                        job.url, data=job.payload, auth=auth, timeout=job.timeout_s
                    )
                else:
                    response = session.post(
                        job.url, json=job.payload, auth=auth, timeout=job.timeout_s
                    )
                status = response.status_code
                error = None
                if 200 <= status < 300:
                    return _record(job.seq, job.payload, "delivered", attempts, status)
            except requests.RequestException as exc:
                status, error = None, type(exc).__name__
            if attempts <= job.retries:
                self._stopping.wait(delay_s)
                delay_s *= 2
        return _record(job.seq, job.payload, "failed", attempts, status, error)


def _record(
    seq: int,
    payload: dict[str, str],
    outcome: str,
    attempts: int,
    http_status: int | None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "service": payload.get("Servicio"),
        "payload": payload,
        "outcome": outcome,
        "attempts": attempts,
        "http_status": http_status,
        "error": error,
    }
