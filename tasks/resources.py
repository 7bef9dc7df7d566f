"""What the actors use: settings, job store, producer, the thread's client and the guard.

The settings and Redis come from the process runtime (:func:`worker.runtime.runtime`);
a :class:`~mensatek.client.MensatekClient` is kept per worker thread (its HTTP
session is not shared) and rebuilt when the settings change (tests); one
:class:`~worker.guard.ProviderGuard` is kept per settings object.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from certsms.config.settings import Settings
from certsms.mensatek.client import MensatekClient
from certsms.worker.guard import ProviderGuard
from certsms.worker.jobs.producer import Producer
from certsms.worker.jobs.store import JobStore
from certsms.worker.runtime import runtime

_local = threading.local()
_guard_lock = threading.Lock()
_guards: dict[int, ProviderGuard] = {}


def settings() -> Settings:
    """The process settings."""
    return runtime().settings


def job_store() -> JobStore:
    """A job store on the process Redis."""
    return runtime().store


def producer() -> Producer:
    """The process's producer (follow-up jobs: certificate downloads, library deletions)."""
    return runtime().producer


def client() -> Any:
    """This thread's provider client (rebuilt when the settings changed)."""
    current = settings()
    found = getattr(_local, "client", None)
    if found is None or getattr(_local, "settings", None) is not current:
        if found is not None:
            found.close()
        found = MensatekClient(current)
        _local.client, _local.settings = found, current
    return found


def guard() -> ProviderGuard:
    """The process's provider guard for the current settings."""
    rt = runtime()
    with _guard_lock:
        found = _guards.get(id(rt.settings))
        if found is None:
            _guards.clear()
            found = _guards[id(rt.settings)] = ProviderGuard(rt.redis, rt.settings)
        return found


def worker_id() -> str:
    """``host:pid:thread``, recorded on a job when this thread claims it."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"
