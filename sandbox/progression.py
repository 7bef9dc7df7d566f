"""Status progression of recipients and the ``SMSCERTIFICADO`` callback of each change.

A certified recipient follows ``config.certified_path`` (1002 → 10 → 11 → 14), a
contract (``Tipocontrato`` ≠ 0) ``config.contract_path`` (… → 17); phones listed in
``config.failure_phones`` end in their failure code instead. Scheduled messages
(Resultado 1) start once the sandbox clock passes their ``Fecha``. One tick moves
every moving recipient one step; a recipient counted in ``NoEnviados`` (104)
never moves.

Callbacks: with ``report_gates_callbacks`` a status change of a recipient whose
send did not ask ``Report=1`` is not POSTed; it shows in ``/_admin/callbacks``
with outcome ``not_requested`` (when a callback URL is set). Library clean-up:
``Autoborrado`` files go once every sent recipient is certified, inline
``(BASE64:…)`` PDFs once every sent recipient is final.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from certsms.sandbox.clock import to_provider
from certsms.sandbox.state import Message, Recipient
from certsms.sandbox.statuses import CANCELLED, is_certified

if TYPE_CHECKING:
    from certsms.sandbox.core import SandboxCore


def path_for(core: SandboxCore, phone: str, contract_type: int) -> tuple[int, ...]:
    """The Resultado path a new recipient will follow."""
    config = core.config
    path = config.contract_path if contract_type else config.certified_path
    failure = config.failure_phones.get(phone)
    if failure is not None:
        path = (*path[:2], failure) if len(path) >= 2 else (failure,)
    return tuple(path)


def set_status(core: SandboxCore, message: Message, recipient: Recipient, code: int) -> None:
    """Record a new Resultado for a recipient and POST its callback."""
    now = core.clock.now()
    recipient.result = code
    recipient.history.append((now, code))
    payload = {
        "Servicio": "SMSCERTIFICADO",
        "Resultado": code,
        "Remitente": message.sender,
        "Movil": recipient.phone,
        "Fecha": to_provider(now),
        "Segundos": int(now - (recipient.sent_at or message.created_at)),
        "idMensaje": message.id,
        "Referencia": message.reference,
        "idReport": recipient.id_report,
    }
    if core.config.report_gates_callbacks and not recipient.report:
        core.callbacks.skip(payload, "Report=1 was not requested")
    else:
        core.callbacks.emit(payload)
    _clean_library(core, message)


def tick(core: SandboxCore, steps: int = 1) -> int:
    """Advance every message ``steps`` steps (due scheduled ones start); returns changes."""
    changed = 0
    with core.state.lock:
        for _ in range(max(0, steps)):
            now = core.clock.now()
            for message in list(core.state.messages.values()):
                for recipient in message.recipients.values():
                    if recipient.result == CANCELLED:
                        continue
                    if recipient.step < 0:
                        due = recipient.scheduled_at
                        if due is not None and due <= now:
                            recipient.step = 0
                            recipient.sent_at = now
                            set_status(core, message, recipient, recipient.path[0])
                            changed += 1
                        continue
                    if recipient.step < len(recipient.path) - 1:
                        recipient.step += 1
                        set_status(core, message, recipient, recipient.path[recipient.step])
                        changed += 1
    return changed


def _clean_library(core: SandboxCore, message: Message) -> None:
    """Remove ``Autoborrado`` files (all sent certified) and inline PDFs (all sent final)."""
    sent = message.sent_recipients()
    names: list[str] = []
    if all(r.final for r in sent):
        names += message.inline_files
    if all(is_certified(r.result) for r in sent):
        names += message.files
    account = core.state.account(message.user)
    for name in names:
        entry = account.files.get(name.lower())
        if entry is not None and entry.auto_delete:
            del account.files[name.lower()]


class Progressor:
    """A background thread that ticks every ``progression_interval_s`` (when > 0)."""

    def __init__(self, core: SandboxCore) -> None:
        self.core = core
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-progress", daemon=True)

    def start(self) -> None:
        """Start ticking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            interval_s = self.core.config.progression_interval_s
            if interval_s <= 0:
                self._stop.wait(0.2)
                continue
            if self._stop.wait(interval_s):
                return
            tick(self.core, 1)
