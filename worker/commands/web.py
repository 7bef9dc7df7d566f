"""``certsms web``: serve callbacks, the intake API, /healthz and /openapi.json (waitress)."""

from __future__ import annotations

import argparse
from typing import Any

import structlog

log = structlog.get_logger(__name__)


def register(subparsers: Any) -> None:
    """Add ``web``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "web",
        help="serve provider callbacks and the HTTP intake API",
        description=(
            "Serve POST /callbacks/mensatek, POST /v1/jobs/<kind>, GET /v1/jobs/<id>, "
            "GET /healthz and GET /openapi.json with waitress. In production the Procfile "
            "runs the same app under gunicorn ('worker.web.wsgi:app')."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the app from the environment and serve it until interrupted."""
    import waitress

    from config.settings import load_settings
    from worker.web.serving import waitress_options
    from worker.web.wsgi import build

    settings = load_settings()
    app = build(settings)
    options = waitress_options(settings)
    log.info("web_started", host=args.host, port=args.port, threads=args.threads, **options)
    waitress.serve(
        app, host=args.host, port=args.port, threads=args.threads, ident="certsms", **options
    )
    return 0
