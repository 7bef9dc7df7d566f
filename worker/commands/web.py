"""``certsms web``: serve callbacks, the intake API, /healthz, /metrics and /openapi.json
on the hardened edge (:mod:`worker.web.serving`)."""

from __future__ import annotations

import argparse
from typing import Any

import structlog

log = structlog.get_logger(__name__)

ROUTES = ("all", "callbacks", "intake")


def register(subparsers: Any) -> None:
    """Add ``web``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "web",
        help="serve provider callbacks and the HTTP intake API",
        description=(
            "Serve POST /callbacks/mensatek, the intake (/v1/jobs), the console, "
            "GET /healthz, GET /metrics and GET /openapi.json with waitress, hardened: "
            "credentials and per-route body caps are checked before a body is read, slow "
            "clients are cut off (CERTSMS_WEB_*_TIMEOUT_S). --routes callbacks and "
            "--routes intake put the two doors on separate ports (two processes)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument(
        "--routes",
        choices=ROUTES,
        default=None,
        help="what to serve: all, callbacks or intake (default CERTSMS_WEB_ROUTES, all)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the app from the environment and serve it until interrupted."""
    from certsms.config.settings import load_settings
    from certsms.worker.web.serving import create_edge_server
    from certsms.worker.web.wsgi import build

    settings = load_settings()
    if args.routes:
        settings = settings.model_copy(update={"web_routes": args.routes})
    app = build(settings)
    server = create_edge_server(app, settings, host=args.host, port=args.port, threads=args.threads)
    log.info(
        "web_started",
        host=args.host,
        port=server.effective_port,
        threads=args.threads,
        routes=settings.web_routes,
        connection_limit=settings.web_connection_limit,
        header_timeout_s=settings.web_header_timeout_s,
        body_timeout_s=settings.web_body_timeout_s,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
