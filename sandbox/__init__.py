"""A faithful local simulator of the Mensatek v7 Certified SMS API.

Start it in-process with :class:`SandboxServer` or from the shell with
``certsms sandbox``; drive it like the provider (``POST /v7/<Function>``) and
inspect or steer it through ``/_admin/``.

It follows the provider's v7 docs, not our client: where they disagree it can
hold us to the docs (``report_gates_callbacks``, ``links_need_flag``, ``strict``
in :mod:`sandbox.config`). Map: :mod:`sandbox.parsing` (bodies, wire shapes),
:mod:`sandbox.strict`, :mod:`sandbox.sending` (send, NoEnviados, credits),
:mod:`sandbox.macros` (Links, attachments), :mod:`sandbox.messages` (cancel,
reschedule), :mod:`sandbox.queries` and :mod:`sandbox.certificates` (report,
credits, ZIP or bare PDF), :mod:`sandbox.library`, :mod:`sandbox.progression`
and :mod:`sandbox.callbacks` (statuses, Report), :mod:`sandbox.requestlog`,
:mod:`sandbox.admin`.
"""

from certsms.sandbox.config import SandboxConfig
from certsms.sandbox.server import SandboxServer

__all__ = [
    "SandboxConfig",
    "SandboxServer",
]
