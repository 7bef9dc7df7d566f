"""``SandboxServer``: the sandbox on waitress in a background thread.

server = SandboxServer(SandboxConfig(port=0)).start()
server.base_url    # "http://127.0.0.1:PORT/v7/"  (MENSATEK_BASE_URL)
server.admin_url   # "http://127.0.0.1:PORT/_admin/"
server.stop()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from waitress.server import create_server

from certsms.sandbox.app import SandboxApp
from certsms.sandbox.arrival import StampingChannel, enable_kernel_stamps
from certsms.sandbox.clock import Clock
from certsms.sandbox.config import SandboxConfig
from certsms.sandbox.core import SandboxCore
from certsms.sandbox.progression import Progressor

__all__ = ["SandboxConfig", "SandboxServer"]


class SandboxServer:
    """A running sandbox: waitress (threaded) plus the progression and callback threads."""

    def __init__(
        self, config: SandboxConfig | None = None, *, clock: Callable[[], float] | None = None
    ) -> None:
        self.config = config or SandboxConfig()
        self.core = SandboxCore.create(self.config, Clock(clock))
        self.app = SandboxApp(self.core)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._progressor = Progressor(self.core)
        self.port = self.config.port

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self.config.host

    @property
    def root_url(self) -> str:
        """``http://host:port``."""
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The provider base URL, ``http://host:port/v7/``."""
        return f"{self.root_url}/v7/"

    @property
    def admin_url(self) -> str:
        """The admin API root, ``http://host:port/_admin/``."""
        return f"{self.root_url}/_admin/"

    def start(self) -> SandboxServer:
        """Bind (a free port when ``port`` is 0) and serve in a daemon thread."""
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self._server = create_server(
            self.app,
            host=self.config.host,
            port=self.config.port,
            threads=self.config.threads,
            connection_limit=2000,
            backlog=2048,
            channel_timeout=300,
            asyncore_use_poll=True,
            clear_untrusted_proxy_headers=True,
            ident="Mensatek-sandbox",
        )
        # requests are stamped when the kernel received them (sandbox.arrival)
        self._server.channel_class = StampingChannel
        listening = getattr(self._server, "socket", None)
        if listening is not None:
            enable_kernel_stamps(listening)
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._serve, name="sandbox-waitress", daemon=True)
        self._thread.start()
        self._progressor.start()
        return self

    def _serve(self) -> None:
        try:
            self._server.run()
        except OSError:
            if not self.core.stopping.is_set():
                raise

    def stop(self) -> None:
        """Stop serving, the progression thread and callback delivery."""
        self.core.stopping.set()
        self._progressor.stop()
        self.core.callbacks.stop()
        server = self._server
        if server is None:
            return
        logging.getLogger("waitress").setLevel(logging.CRITICAL)
        while server._map:
            for channel in list(server._map.values()):
                channel.handle_close()
        server.task_dispatcher.shutdown(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
