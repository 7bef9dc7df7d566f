"""Set up a process that runs actors: the runtime first, then the actor modules.

The broker must be set before an ``@dramatiq.actor`` decorator runs, so every entry
that runs jobs calls :func:`setup` (tests, ``certsms up``, the web process for its
callbacks actor) and the dramatiq CLI loads :func:`boot_worker_process` (``certsms
worker`` passes ``tasks.boot:boot_worker_process``), which reads the settings from
the environment and configures logging inside each worker process.
"""

from __future__ import annotations

import importlib

from certsms.config.logging import configure_logging
from certsms.config.settings import Settings, load_settings
from certsms.worker import runtime as process_runtime
from certsms.worker.runtime import Runtime

#: Modules declaring actors, imported after ``set_broker``.
ACTOR_MODULES: tuple[str, ...] = ("certsms.tasks.actors", "certsms.tasks.callbacks")


def setup(settings: Settings | None = None) -> Runtime:
    """The process runtime (:func:`worker.runtime.setup`) with every actor declared on it."""
    rt = process_runtime.setup(settings)
    for module in ACTOR_MODULES:
        importlib.import_module(module)  # same layer: the actors bind to rt.broker
    return rt


def boot_worker_process() -> None:
    """Entry for the dramatiq CLI in each worker process: settings, logging, broker, actors."""
    settings = load_settings()
    configure_logging(settings)
    rt = setup(settings)
    if settings.worker_metrics_port:
        # Under `certsms worker` only (it prepares the shared metrics directory):
        # dramatiq's middleware records per-process samples and serves them all.
        # Imported here: prometheus_client reads its multiprocess directory at import.
        from dramatiq.middleware.prometheus import Prometheus

        from certsms.worker.metrics import worker_prometheus_middleware

        if not any(isinstance(m, Prometheus) for m in rt.broker.middleware):
            rt.broker.add_middleware(worker_prometheus_middleware())
