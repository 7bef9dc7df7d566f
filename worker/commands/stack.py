"""The web process, a worker and the sandbox wired together in one process.

``certsms demo`` and the end-to-end tests run the same stack: the web app served by
waitress on a free port (callbacks and intake), an in-process dramatiq worker with
every actor, and a sandbox that POSTs its callbacks to that web app with the
stack's Basic-auth credentials. Redis and the sandbox server are the caller's
(the demo starts embedded ones, the tests use their session Redis and per-test
sandbox); :func:`running_stack` starts and stops the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import dramatiq
import requests

from certsms.config.settings import Settings
from certsms.sandbox import SandboxServer
from certsms.tasks.boot import setup
from certsms.worker.jobs.store import JobStore
from certsms.worker.runtime import Runtime
from certsms.worker.web import create_app
from certsms.worker.web.serving import create_edge_server

CALLBACK_PATH = "/callbacks/mensatek"


@dataclass
class Stack:
    """A running stack and how to reach it."""

    settings: Settings
    runtime: Runtime
    sandbox: SandboxServer
    web: Any
    worker: dramatiq.Worker
    web_url: str

    @property
    def redis(self) -> Any:
        """The runtime's Redis client."""
        return self.runtime.redis

    @property
    def store(self) -> JobStore:
        """The job store."""
        return self.runtime.store

    @property
    def admin_url(self) -> str:
        """The sandbox's admin API root."""
        return str(self.sandbox.admin_url)

    def sandbox_config(self, **changes: Any) -> dict[str, Any]:
        """Change the sandbox at run time through its admin API (as an operator would)."""
        response = requests.post(self.admin_url + "config", json=changes, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def sandbox_requests(self) -> list[dict[str, Any]]:
        """The sandbox's request log."""
        response = requests.get(self.admin_url + "requests", timeout=10)
        response.raise_for_status()
        return list(response.json())


@contextmanager
def running_stack(
    settings: Settings,
    sandbox: SandboxServer,
    *,
    worker_threads: int = 4,
    web_threads: int = 4,
) -> Iterator[Stack]:
    """Web and worker up on ``settings`` for the ``with`` block, the sandbox calling back
    to the web with ``settings.callback_user``/``callback_password``; stopped after."""
    runtime = setup(settings)
    server = create_edge_server(
        create_app(settings, runtime.redis),
        settings,
        host="127.0.0.1",
        port=0,
        threads=web_threads,
        ident="certsms-stack",
    )
    web_url = f"http://127.0.0.1:{server.effective_port}"
    threading.Thread(target=server.run, name="stack-web", daemon=True).start()
    worker = dramatiq.Worker(runtime.broker, worker_threads=worker_threads, worker_timeout=50)
    stack = Stack(settings, runtime, sandbox, server, worker, web_url)
    password = settings.callback_password.get_secret_value() if settings.callback_password else ""
    try:
        stack.sandbox_config(
            callback_url=web_url + CALLBACK_PATH,
            callback_user=settings.callback_user or "",
            callback_password=password,
        )
        worker.start()
        yield stack
    finally:
        with suppress(Exception):  # best effort: keep stopping the rest
            worker.stop(timeout=10_000)
        server.close()
        server.task_dispatcher.shutdown()
