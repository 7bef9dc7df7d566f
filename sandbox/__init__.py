"""A faithful local simulator of the Mensatek v7 Certified SMS API.

Start it in-process with :class:`SandboxServer` or from the shell with
``certsms sandbox``; drive it like the provider (``POST /v7/<Function>``) and
inspect or steer it through ``/_admin/``.
"""

from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer

__all__ = [
    "SandboxConfig",
    "SandboxServer",
]
