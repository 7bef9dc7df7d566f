"""``certsms up``: every process in one foreground tree, with labelled interleaved logs.

``certsms up --sandbox`` (what ``make run`` runs) starts an embedded Redis, the
sandbox of the provider with its callbacks pointed at the web process, the worker
and the web process, on free local ports with throw-away credentials. It writes
``var/sandbox.env`` so another shell can ``source`` it and use the CLI against the
same Redis. Ctrl-C stops everything it started (honcho's process manager does the
supervising: it is made for exactly this, so we do not write our own). Its Redis
keeps an append-only file under ``var/redis`` (``appendfsync everysec``): jobs,
queued messages and idempotency keys survive a restart of ``make run``, a crash of
Redis included (delete ``var/redis`` to start from nothing).

Without ``--sandbox`` it runs the worker and the web process against the configured
Redis and provider, and refuses to start unless real credentials are configured,
so nothing can silently run against the sandbox in production.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from certsms.config.errors import CertsmsError
from certsms.config.settings import DEFAULT_BASE_URL, load_settings
from certsms.worker.commands.common import description
from certsms.worker.embedded_redis import free_port, redis_server_argv, redis_server_binary

SANDBOX_USER = "demo"
SANDBOX_TOKEN = "demo-token"
#: honcho kills what is still running 5 s after it asked; the worker stops before that.
WORKER_SHUTDOWN_TIMEOUT_S = 4.0
ENV_FILE = "sandbox.env"


class UpError(CertsmsError):
    """Raised when a process ``up`` must start first (Redis) does not come up."""


@dataclass
class Plan:
    """What ``up`` will start: named shell commands and the environment they share.

    ``redis_argv`` (sandbox mode) is started before the others and stopped after
    them, in its own session, so the worker and web never see Redis go away first.
    """

    env: dict[str, str]
    processes: dict[str, str] = field(default_factory=dict)
    banner: list[str] = field(default_factory=list)
    redis_argv: list[str] | None = None
    redis_port: int | None = None


def _certsms() -> str:
    return shlex.quote(sys.executable) + " -m certsms.worker.cli"


def worker_command(args: argparse.Namespace) -> str:
    """``certsms worker`` with a graceful stop that ends before honcho's 5 s kill."""
    return (
        f"{_certsms()} worker --processes {args.processes} --threads {args.threads}"
        f" --shutdown-timeout-s {WORKER_SHUTDOWN_TIMEOUT_S:g}"
    )


def sandbox_plan(args: argparse.Namespace, *, var_dir: Path) -> Plan:
    """The sandbox-mode plan: Redis, sandbox, worker and web on free ports."""
    redis_port = args.redis_port or free_port()
    sandbox_port = args.sandbox_port or free_port()
    web_port = args.web_port or free_port()
    metrics_port = free_port()
    callback_user = "mensatek"
    callback_password = secrets.token_urlsafe(16)
    intake_token = secrets.token_urlsafe(24)
    web_url = f"http://127.0.0.1:{web_port}"
    cert_dir = (var_dir / "certificates").resolve()
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "MENSATEK_BASE_URL": f"http://127.0.0.1:{sandbox_port}/v7/",
        "MENSATEK_API_USER": SANDBOX_USER,
        "MENSATEK_API_TOKEN": SANDBOX_TOKEN,
        "CERTSMS_CALLBACK_USER": callback_user,
        "CERTSMS_CALLBACK_PASSWORD": callback_password,
        # the sandbox reads its callback password from the environment, never from its
        # command line (which any user on the host can read with ps)
        "CERTSMS_SANDBOX_CALLBACK_PASSWORD": callback_password,
        "CERTSMS_INTAKE_TOKEN": intake_token,
        "CERTSMS_CERT_DIR": str(cert_dir),
        "CERTSMS_WORKER_METRICS_PORT": str(metrics_port),
        "CERTSMS_LOG_FORMAT": os.environ.get("CERTSMS_LOG_FORMAT", "console"),
    }
    plan = Plan(env=env, redis_port=redis_port)
    # durable: an AOF (appendfsync everysec) under var/redis, so stopping or killing
    # `make run` and starting it again loses no job, message or idempotency key
    redis_dir = (var_dir / "redis").resolve()
    redis_dir.mkdir(parents=True, exist_ok=True)
    plan.redis_argv = redis_server_argv(
        redis_server_binary(), port=redis_port, data_dir=redis_dir, durable=True
    )
    plan.processes["sandbox"] = (
        f"{_certsms()} sandbox --port {sandbox_port}"
        f" --callback-url {web_url}/callbacks/mensatek"
        f" --callback-user {callback_user}"
        f" --progression-interval-s {args.progression_interval_s}"
        " --credits 1000000"
    )
    plan.processes["worker"] = worker_command(args)
    plan.processes["web"] = f"{_certsms()} web --host 127.0.0.1 --port {web_port}"
    env_file = var_dir / ENV_FILE
    plan.banner = [
        "=" * 72,
        "  certsms  ·  SANDBOX MODE  ·  local simulator, no real SMS is sent",
        "=" * 72,
        f"  redis     {env['REDIS_URL']}",
        f"  sandbox   {env['MENSATEK_BASE_URL']}  (user {SANDBOX_USER}, token {SANDBOX_TOKEN})",
        f"  sandbox   admin log: http://127.0.0.1:{sandbox_port}/_admin/requests",
        f"  web       {web_url}  (/healthz, /metrics, /openapi.json)",
        f"  callbacks {web_url}/callbacks/mensatek  (Basic {callback_user}:…)",
        f"  intake    POST {web_url}/v1/jobs/send  (Bearer $CERTSMS_INTAKE_TOKEN)",
        f"  worker    {args.processes} process(es) × {args.threads} threads"
        f"  (metrics http://127.0.0.1:{metrics_port}/metrics)",
        f"  evidence  {cert_dir}",
        f"  env       {env_file}",
        "",
        "  In another shell:",
        f"    source {env_file}",
        "    .venv/bin/certsms enqueue send examples/send.json --json",
        "    .venv/bin/certsms status JOB_ID",
        "    .venv/bin/certsms evidence JOB_ID",
        "  Ctrl-C stops everything.",
        "=" * 72,
    ]
    return plan


def production_plan(args: argparse.Namespace) -> Plan:
    """Worker and web against the configured Redis and provider (credentials required)."""
    settings = load_settings()
    settings.require_provider_credentials()
    plan = Plan(env={})
    plan.processes["worker"] = worker_command(args)
    plan.processes["web"] = f"{_certsms()} web --host {args.host} --port {args.web_port or 8080}"
    target = settings.mensatek_base_url
    label = "PRODUCTION" if target == DEFAULT_BASE_URL else f"provider at {target}"
    plan.banner = [f"certsms up · {label} · redis {settings.redis_url.split('@')[-1]}"]
    return plan


def write_env_file(plan: Plan, path: Path) -> None:
    """Write ``export NAME=value`` lines so another shell can join the sandbox."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export {name}={shlex.quote(value)}" for name, value in sorted(plan.env.items())]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a file written by :func:`write_env_file`."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
            name, _, value = parts[1].partition("=")
            env[name] = value
    return env


def start_redis(argv: list[str], port: int, *, timeout_s: float = 10.0) -> subprocess.Popen[bytes]:
    """Start ``redis-server`` in its own session (Ctrl-C reaches only ``up``); wait for PING."""
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UpError(f"redis-server exited with {process.returncode} (port {port} taken?)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process
        except OSError:
            time.sleep(0.05)
    stop_process(process)
    raise UpError(f"redis-server did not answer on port {port}")


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(args: argparse.Namespace) -> int:
    """Start the plan under honcho and wait until Ctrl-C or a process exits."""
    from honcho.manager import Manager

    var_dir = Path(args.var_dir)
    if args.sandbox:
        var_dir.mkdir(parents=True, exist_ok=True)
        plan = sandbox_plan(args, var_dir=var_dir)
        write_env_file(plan, var_dir / ENV_FILE)
    else:
        plan = production_plan(args)
    print("\n".join(plan.banner), flush=True)
    # the same prefix as honcho's own lines: time, "system" padded to the longest name
    system = time.strftime("%H:%M:%S") + " " + "system".ljust(max(map(len, plan.processes)))
    redis_process = None
    if plan.redis_argv is not None and plan.redis_port is not None:
        redis_process = start_redis(plan.redis_argv, plan.redis_port)
        print(
            f"{system} | redis ready on port {plan.redis_port} (pid={redis_process.pid})",
            flush=True,
        )
    env = {**os.environ, **plan.env, "PYTHONUNBUFFERED": "1"}
    try:
        manager = Manager()
        for name, command in plan.processes.items():
            manager.add_process(name, command, env=env)
        manager.loop()
    finally:
        if redis_process is not None:
            stop_process(redis_process)
            system = time.strftime("%H:%M:%S") + system[8:]
            print(f"{system} | redis stopped", flush=True)
    return int(manager.returncode or 0)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``certsms up``."""
    parser = subparsers.add_parser(
        "up",
        help="run everything in the foreground (with --sandbox: on embedded defaults)",
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="embedded Redis and the local provider sandbox (what `make run` uses)",
    )
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--host", default="127.0.0.1", help="web host without --sandbox")
    parser.add_argument("--web-port", type=int, default=0, help="web port (default: free port)")
    parser.add_argument("--sandbox-port", type=int, default=0, help="sandbox port (default: free)")
    parser.add_argument("--redis-port", type=int, default=0, help="Redis port (default: free)")
    parser.add_argument(
        "--progression-interval-s",
        type=float,
        default=2.0,
        help="sandbox: seconds between status steps of a message (default 2)",
    )
    parser.add_argument("--var-dir", default="var", help="runtime files (default ./var)")
    parser.set_defaults(func=run)
