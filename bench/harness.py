"""What every benchmark needs: Redis, a sandbox process, worker processes, statistics.

The sandbox runs in its own process (``certsms sandbox``) so it does not share a GIL
with the measuring process; Redis is :class:`~worker.embedded_redis.EmbeddedRedis`;
workers are real ``certsms worker`` / ``dramatiq`` subprocesses. Times of provider
requests come from the sandbox's request log (``epoch_s``, taken when a request
arrives, millisecond resolution).
"""

from __future__ import annotations

import bisect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

from certsms.worker.dramatiq_keys import messages_key
from certsms.worker.embedded_redis import free_port

SEND_FUNCTION = "EnviarSMSCERTIFICADO"
CERTSMS_NAMESPACE = "certsms-bench"


# --- the sandbox process ---------------------------------------------------------------
class SandboxProcess:
    """``certsms sandbox`` on a free port: no progression, no blocking, ample credits."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_path = log_dir / "sandbox.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v7/"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/_admin/"

    def start(self) -> SandboxProcess:
        """Start and wait until it listens."""
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "certsms.worker.cli",
                    "sandbox",
                    "--port",
                    str(self.port),
                    "--progression-interval-s",
                    "0",
                    "--credits",
                    "1000000000",
                    "--block-threshold",
                    "1000000000",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_listening(self.port)
        except RuntimeError:
            self.stop()
            raise RuntimeError(
                f"sandbox did not start: {self.log_path.read_text()[-2000:]}"
            ) from None
        return self

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is not None:
            stop_tree(self.process)

    def reset(self, **config: Any) -> None:
        """Clear messages and the request log; then apply ``config`` (e.g. latency_ms)."""
        self.http.post(self.admin_url + "reset", timeout=30).raise_for_status()
        if config:
            self.http.post(self.admin_url + "config", json=config, timeout=30).raise_for_status()

    def sends(self) -> list[dict[str, Any]]:
        """The request log of the send function."""
        response = self.http.get(
            self.admin_url + "requests", params={"function": SEND_FUNCTION}, timeout=60
        )
        response.raise_for_status()
        return list(response.json())


def wait_listening(port: int, timeout_s: float = 20.0) -> None:
    """Wait until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def stop_tree(process: subprocess.Popen[bytes], *, timeout_s: float = 20.0) -> None:
    """SIGTERM the process (dramatiq forwards it to its workers); SIGKILL its group after."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- worker processes --------------------------------------------------------------------
@dataclass
class Workers:
    """A running worker command (certsms or bare dramatiq) and its log."""

    process: subprocess.Popen[bytes]
    log_path: Path
    processes: int

    def worker_pids(self) -> list[int]:
        """The dramatiq worker processes: the first ``processes`` children started.

        dramatiq starts its worker processes first (forked, or spawned when the start
        method is spawn); multiprocessing's resource tracker and any later fork process
        (dramatiq's ``--fork-function``) are left out.
        """
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        spawned = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                    child.cmdline()
                ):
                    spawned.append(child)
            except psutil.Error:
                continue
        spawned.sort(key=lambda c: c.create_time())
        return [c.pid for c in spawned[: self.processes]]

    def rss_mib(self) -> list[float]:
        """Resident memory of each worker process, MiB."""
        sizes = []
        for pid in self.worker_pids():
            try:
                sizes.append(psutil.Process(pid).memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                continue
        return sorted(sizes)

    def stop(self) -> None:
        stop_tree(self.process)


def certsms_env(redis_url: str, sandbox: SandboxProcess, **settings: object) -> dict[str, str]:
    """The environment of ``certsms worker`` for the bench (``settings`` as CERTSMS_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTSMS_", "MENSATEK_"))}
    env.update(
        REDIS_URL=redis_url,
        MENSATEK_BASE_URL=sandbox.base_url,
        MENSATEK_API_USER="demo",
        MENSATEK_API_TOKEN="demo-token",
        CERTSMS_NAMESPACE=CERTSMS_NAMESPACE,
        CERTSMS_LOG_FORMAT="json",
        CERTSMS_WORKER_METRICS_PORT=str(free_port()),  # metrics on, as deployed
        PYTHONUNBUFFERED="1",
    )
    env.update({f"CERTSMS_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def start_certsms(
    env: dict[str, str], *, processes: int, threads: int, log_dir: Path, name: str
) -> Workers:
    """``certsms worker --processes P --threads T`` (every queue, as deployed)."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "certsms.worker.cli",
                "worker",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Workers(process, log_path, processes)


def start_bare(
    redis_url: str, sandbox: SandboxProcess, *, processes: int, threads: int, log_dir: Path
) -> Workers:
    """``dramatiq bench.baseline_actor --processes P --threads T``."""
    env = dict(os.environ, BENCH_REDIS_URL=redis_url, BENCH_BASE_URL=sandbox.base_url)
    log_path = log_dir / "bare.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dramatiq",
                "bench.baseline_actor",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Workers(process, log_path, processes)


# --- waiting and statistics ---------------------------------------------------------------
def wait_until(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms; RuntimeError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.05)


def pending(client: redis.Redis, namespace: str, queue: str) -> int:
    """Messages of ``queue`` not yet acknowledged (queued or being processed)."""
    return int(client.hlen(messages_key(namespace, queue)))


def steady_rate(times_s: Sequence[float], *, start: float = 0.1, end: float = 0.9) -> float:
    """Requests per second between the ``start`` and ``end`` quantiles of the arrivals.

    Leaves out the ramp-up (processes still booting) and the tail (threads running out
    of work), so the figure is the steady-state rate.
    """
    times = sorted(times_s)
    first, last = int(len(times) * start), int(len(times) * end) - 1
    span_s = times[last] - times[first]
    return (last - first) / span_s if span_s > 0 else float("nan")


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def windows_over(
    times_s: Sequence[float], limit: float, *, window_s: float = 1.0
) -> dict[str, Any]:
    """Sliding 1 s windows (one starting at each request) holding more than ``limit``."""
    times = sorted(times_s)
    counts = [bisect.bisect_left(times, t + window_s) - i for i, t in enumerate(times)]
    allowed = int(limit + 1e-9)
    aligned: dict[int, int] = {}
    for t in times:
        aligned[int(t)] = aligned.get(int(t), 0) + 1
    return {
        "max_in_any_1s": max(counts) if counts else 0,
        "sliding_windows_over_limit": sum(1 for c in counts if c > allowed),
        "aligned_seconds_over_limit": sum(1 for c in aligned.values() if c > allowed),
    }
