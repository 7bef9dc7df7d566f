"""``certsms sandbox``: run the local Mensatek v7 simulator in the foreground.

Every :class:`~sandbox.config.SandboxConfig` field can come from the environment
as ``CERTSMS_SANDBOX_<FIELD>`` (e.g. ``CERTSMS_SANDBOX_STRICT=1``,
``CERTSMS_SANDBOX_INVALID_PHONES=34600000009``); a flag given on the command line
wins over the environment, which wins over the command's defaults (port 8765,
a status step every 3 s) and the config's own defaults.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from certsms.sandbox import SandboxConfig, SandboxServer
from certsms.sandbox.config import ENV_PREFIX, ConfigUpdateError

# The command's defaults where they differ from SandboxConfig's (a server for people).
CLI_DEFAULTS: dict[str, Any] = {"port": 8765, "progression_interval_s": 3.0}

# flag dest -> SandboxConfig field, where the names differ
_FIELD_OF = {"credits": "initial_credits", "invalid_phone": "invalid_phones"}


def register(subparsers: Any) -> None:
    """Add the ``sandbox`` command."""
    parser = subparsers.add_parser(
        "sandbox",
        help="run the local Mensatek v7 sandbox (foreground, Ctrl-C stops it)",
        description=(
            "Run a faithful local simulator of the Mensatek v7 Certified SMS API. "
            "Point MENSATEK_BASE_URL at the printed base URL. Every option can also be "
            f"set as {ENV_PREFIX}<FIELD> and changed at run time with POST /_admin/config."
        ),
        argument_default=argparse.SUPPRESS,  # only flags given override the environment
    )
    add = parser.add_argument
    flag = argparse.BooleanOptionalAction
    add("--host", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, help="port (0 = a free one; default 8765)")
    add("--user", help="API user (default demo)")
    add("--token", help="API token (default demo-token)")
    add("--credits", type=float, help="initial credits (default 10000)")
    add("--credits-per-message", type=float, help="credits per SMS part (9)")
    add("--no-credit-res", type=int, help="Res of a send refused for lack of credits (-2)")
    add(
        "--progression-interval-s",
        type=float,
        help="seconds between automatic status steps (0 = only POST /_admin/tick; default 3)",
    )
    add(
        "--nested-format",
        choices=["single_quoted", "json"],
        help="how nested answer values are written (the provider uses single_quoted)",
    )
    add(
        "--auth-failure-mode",
        choices=["res", "http401"],
        help="answer bad credentials with a Res code or HTTP 401",
    )
    add(
        "--certificate-phone-format",
        choices=["zip", "pdf"],
        help="GetSMSCERTIFICADO by Idmensaje+Telefono: a ZIP (default) or the bare PDF",
    )
    add(
        "--report-gates-callbacks",
        action=flag,
        help="status callbacks only for sends with Report=1",
    )
    add("--links-need-flag", action=flag, help="macros are plain text unless Links=1")
    add("--strict", action=flag, help="refuse what the real API may refuse (see sandbox.strict)")
    add(
        "--invalid-phone",
        action="append",
        help="a mobile deemed not correct: not sent, counted in NoEnviados (repeatable)",
    )
    add("--callback-url", help="where to POST SMSCERTIFICADO/EVENTOS/SMSRECIBIDO callbacks")
    add("--callback-user", help="Basic auth user for callbacks")
    add(
        "--callback-password",
        help="Basic auth password for callbacks (prefer CERTSMS_SANDBOX_CALLBACK_PASSWORD: "
        "a command line is visible to every user of the host in ps)",
    )
    add(
        "--callback-format",
        choices=["json", "form"],
        help="body format of the callbacks the sandbox posts",
    )
    add("--callback-drop-rate", type=float, help="share of callbacks dropped")
    add("--latency-ms", type=int, help="latency added to every API call")
    add("--error-5xx-rate", type=float, help="share answered 500/503")
    add("--reset-rate", type=float, help="share of connections reset")
    add("--html-rate", type=float, help="share answered with an HTML error page")
    add("--accept-then-timeout-rate", type=float, help="share processed, then held")
    add("--timeout-hold-s", type=float, help="how long a held answer waits (5)")
    add("--block-threshold", type=int, help="erroneous requests before a block (10)")
    add(
        "--block-window-s",
        type=float,
        help="window in which repeated bad requests count towards a block",
    )
    add("--block-duration-s", type=float, help="how long a spam block lasts")
    add("--block-status", type=int, help="HTTP status answered while blocked")
    add(
        "--range-download-interval-s",
        type=float,
        help="minimum spacing of date-range certificate downloads",
    )
    add("--fault-seed", type=int, help="seed for reproducible faults")
    parser.set_defaults(func=run)


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> SandboxConfig:
    """The sandbox config the flags given and the environment describe."""
    given = {k: v for k, v in vars(args).items() if k not in {"func", "command"}}
    overrides = {_FIELD_OF.get(name, name): value for name, value in given.items()}
    environ = os.environ if environ is None else environ
    return SandboxConfig.from_env(environ, defaults=CLI_DEFAULTS, overrides=overrides)


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
    rules = {
        "strict": config.strict,
        "report_gates_callbacks": config.report_gates_callbacks,
        "links_need_flag": config.links_need_flag,
    }
    switches = " ".join(f"{name}={'on' if on else 'off'}" for name, on in rules.items())
    lines.append(f"  rules    : {switches}")
    lines += ["  Ctrl-C stops it.", "=" * 64]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or SIGTERM); a bad ``CERTSMS_SANDBOX_*`` value exits 2, named."""
    try:
        config = config_from_args(args)
    except ConfigUpdateError as exc:
        print(f"certsms sandbox: {exc}", file=sys.stderr)
        return 2
    server = SandboxServer(config).start()
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
