"""``certsms worker``: the dramatiq worker with the project's broker and middleware.

It runs dramatiq's own CLI (process supervision, signals, log piping) with
``tasks.boot:boot_worker_process`` as the broker entry, which reads the settings
from the environment, configures logging inside each worker process and sets up
the broker before the actor modules are imported. When one worker process dies,
dramatiq stops the others and exits 1: run it under a supervisor that restarts it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from certsms.worker.jobs.contract import QUEUES

BROKER_ENTRY = "certsms.tasks.boot:boot_worker_process"


def dramatiq_argv(args: argparse.Namespace) -> list[str]:
    """The argument list handed to dramatiq's CLI."""
    argv = [
        BROKER_ENTRY,
        "certsms.tasks.actors",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--skip-logging",
        "--use-spawn",  # fresh interpreters: no forked threads, metrics env read at import
        "--worker-shutdown-timeout",
        str(int(args.shutdown_timeout_s * 1000)),
    ]
    if args.queues:
        argv += ["--queues", *args.queues]
    return argv


def prepare_metrics_dir(host: str, port: int) -> Path:
    """A fresh prometheus multiprocess directory shared by this worker's processes.

    Set in the environment before dramatiq starts (and before its Prometheus
    middleware is imported): every worker process writes its samples there and this
    command's main process serves them all (:func:`worker.metrics.serve_metrics`, from
    ``port`` up to the first free port).
    """
    directory = Path(tempfile.gettempdir()) / f"certsms-metrics-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    os.environ["dramatiq_prom_db"] = str(directory)  # noqa: SIM112 - dramatiq's names
    os.environ["dramatiq_prom_host"] = host  # noqa: SIM112
    os.environ["dramatiq_prom_port"] = str(port)  # noqa: SIM112
    return directory


def run(args: argparse.Namespace) -> int:
    """Start the worker processes and supervise them until a signal."""
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from certsms.config.settings import load_settings

    settings = load_settings()
    settings.require_provider_credentials()
    try:
        from certsms.config.logging import configure_logging

        configure_logging(settings)
    except ImportError:  # pragma: no cover
        pass
    from certsms.worker.redis_client import ensure_durable, redis_client

    ensure_durable(redis_client(settings, retry_window_s=0), settings, process="worker")
    if settings.worker_metrics_port:
        prepare_metrics_dir(settings.worker_metrics_host, settings.worker_metrics_port)
        from redis import Redis

        from certsms.worker.metrics import QueueStateCollector, serve_metrics

        serve_metrics(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            QueueStateCollector(Redis.from_url(settings.redis_url), settings),
        )
    parsed = make_argument_parser().parse_args(dramatiq_argv(args))
    return int(dramatiq_main(parsed) or 0)


def register(subparsers: Any) -> None:
    """Add ``worker``."""
    parser = subparsers.add_parser("worker", help="run the job workers (dramatiq)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=8, help="threads per process (default 8)")
    parser.add_argument(
        "--queues",
        nargs="+",
        metavar="QUEUE",
        help=f"only these queues (default: all declared, e.g. {', '.join(QUEUES)})",
    )
    parser.add_argument(
        "--shutdown-timeout-s",
        type=float,
        default=60.0,
        help="how long a graceful stop waits for running jobs (default 60)",
    )
    parser.set_defaults(func=run)
