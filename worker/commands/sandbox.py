"""``certsms sandbox``: run the local Mensatek v7 simulator in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from sandbox import SandboxConfig, SandboxServer


def register(subparsers: Any) -> None:
    """Add the ``sandbox`` command."""
    parser = subparsers.add_parser(
        "sandbox",
        help="run the local Mensatek v7 sandbox (foreground, Ctrl-C stops it)",
        description=(
            "Run a faithful local simulator of the Mensatek v7 Certified SMS API. "
            "Point MENSATEK_BASE_URL at the printed base URL. Everything below can "
            "also be changed at run time with POST /_admin/config."
        ),
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8765, help="port (0 = a free one; default 8765)")
    add("--user", default="demo", help="API user (default demo)")
    add("--token", default="demo-token", help="API token (default demo-token)")
    add("--credits", type=float, default=10_000.0, help="initial credits (default 10000)")
    add("--credits-per-message", type=float, default=9.0, help="credits per SMS part (9)")
    add(
        "--progression-interval-s",
        type=float,
        default=3.0,
        help="seconds between automatic status steps (0 = only POST /_admin/tick; default 3)",
    )
    add("--nested-format", choices=["single_quoted", "json"], default="single_quoted")
    add("--auth-failure-mode", choices=["res", "http401"], default="res")
    add("--callback-url", help="where to POST SMSCERTIFICADO/EVENTOS/SMSRECIBIDO callbacks")
    add("--callback-user", help="Basic auth user for callbacks")
    add("--callback-password", help="Basic auth password for callbacks")
    add("--callback-format", choices=["json", "form"], default="json")
    add("--callback-drop-rate", type=float, default=0.0, help="share of callbacks dropped")
    add("--latency-ms", type=int, default=0, help="latency added to every API call")
    add("--error-5xx-rate", type=float, default=0.0, help="share answered 500/503")
    add("--reset-rate", type=float, default=0.0, help="share of connections reset")
    add("--html-rate", type=float, default=0.0, help="share answered with an HTML error page")
    add("--accept-then-timeout-rate", type=float, default=0.0, help="share processed, then held")
    add("--timeout-hold-s", type=float, default=5.0, help="how long a held answer waits")
    add("--block-threshold", type=int, default=10, help="erroneous requests before a block")
    add("--block-window-s", type=float, default=60.0)
    add("--block-duration-s", type=float, default=300.0)
    add("--block-status", type=int, default=403)
    add("--range-download-interval-s", type=float, default=900.0)
    add("--fault-seed", type=int, default=None, help="seed for reproducible faults")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The sandbox config the flags describe."""
    return SandboxConfig(
        host=args.host,
        port=args.port,
        user=args.user,
        token=args.token,
        initial_credits=args.credits,
        credits_per_message=args.credits_per_message,
        progression_interval_s=args.progression_interval_s,
        nested_format=args.nested_format,
        auth_failure_mode=args.auth_failure_mode,
        callback_url=args.callback_url,
        callback_user=args.callback_user,
        callback_password=args.callback_password,
        callback_format=args.callback_format,
        callback_drop_rate=args.callback_drop_rate,
        latency_ms=args.latency_ms,
        error_5xx_rate=args.error_5xx_rate,
        reset_rate=args.reset_rate,
        html_rate=args.html_rate,
        accept_then_timeout_rate=args.accept_then_timeout_rate,
        timeout_hold_s=args.timeout_hold_s,
        block_threshold=args.block_threshold,
        block_window_s=args.block_window_s,
        block_duration_s=args.block_duration_s,
        block_status=args.block_status,
        range_download_interval_s=args.range_download_interval_s,
        fault_seed=args.fault_seed,
    )


def banner(server: SandboxServer) -> str:
    """The lines printed at start-up."""
    config = server.config
    lines = [
        "=" * 64,
        "  SANDBOX — local Mensatek v7 simulator (no real SMS is sent)",
        f"  base URL : {server.base_url}",
        f"  admin    : {server.admin_url}",
        f"  user     : {config.user}",
        f"  token    : {config.token}",
        f"  export MENSATEK_BASE_URL={server.base_url}",
        f"  export MENSATEK_API_USER={config.user} MENSATEK_API_TOKEN={config.token}",
    ]
    if config.callback_url:
        lines.append(f"  callbacks: {config.callback_url} ({config.callback_format})")
    lines += ["  Ctrl-C stops it.", "=" * 64]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or SIGTERM)."""
    server = SandboxServer(config_from_args(args)).start()
    print(banner(server), flush=True)
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
        print("SANDBOX stopped", flush=True)
    return 0
