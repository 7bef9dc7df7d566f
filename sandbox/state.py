"""The sandbox's state: accounts, messages with per-recipient status, file library.

One :class:`SandboxState` per server, guarded by one re-entrant lock: every
function handler runs under it, so the state is consistent under load.

``GET /_admin/state`` shows, per message: ``report`` (the creating send had
``Report=1``), ``links`` (it had ``Links=1``), ``macros`` (found in the text,
base64 as a digest), ``macros_as_text`` (macros kept as plain text: no
``Links=1`` while ``links_need_flag`` is on), ``attachments`` (documents
registered: type, name, size, sha256) and ``not_sent`` (phones counted in
``NoEnviados`` with their reason); per recipient ``report`` (of the send that
added it) and ``sent`` (False for a recipient deemed not correct).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from certsms.sandbox.clock import Clock, to_provider
from certsms.sandbox.config import SandboxConfig
from certsms.sandbox.macros import Attachment, Macro
from certsms.sandbox.statuses import status_text

FIRST_MESSAGE_ID = 10_000_001
FIRST_REPORT_ID = 70_000_001


@dataclass
class Recipient:
    """One mobile of a message: its status path and Resultado history."""

    phone: str
    variables: dict[str, str]
    path: tuple[int, ...]
    id_report: int
    result: int
    step: int = -1  # index into path; -1 while scheduled (Resultado 1) or cancelled
    history: list[tuple[float, int]] = field(default_factory=list)  # (epoch_s, Resultado)
    sent_at: float | None = None
    scheduled_at: float | None = None  # epoch seconds of Fecha while scheduled
    report: bool = False  # the send that added it had Report=1 (status callbacks wanted)
    not_sent_reason: str | None = None  # set for a mobile deemed not correct (NoEnviados)

    @property
    def sent(self) -> bool:
        """False for a recipient that was counted in ``NoEnviados`` (never progresses)."""
        return self.not_sent_reason is None

    @property
    def changed_at(self) -> float:
        """When the current Resultado was reached (epoch seconds)."""
        return self.history[-1][0]

    @property
    def final(self) -> bool:
        """True when no further progression will happen."""
        return self.result == 29 or (self.step >= 0 and self.step >= len(self.path) - 1)


@dataclass
class Message:
    """A send (or a group of sends under one idMensaje)."""

    id: int
    user: str
    sender: str
    text: str
    reference: str
    contract_type: int
    created_at: float
    scheduled_at: float | None
    cost_per_recipient: float
    recipients: dict[str, Recipient] = field(default_factory=dict)
    report: bool = False  # the creating send had Report=1
    links: bool = False  # the creating send had Links=1
    macros: tuple[Macro, ...] = ()
    macros_as_text: bool = False  # macros present but not interpreted (no Links=1)
    attachments: tuple[Attachment, ...] = ()
    not_sent: list[dict[str, str]] = field(default_factory=list)  # {"phone", "reason"}

    @property
    def files(self) -> tuple[str, ...]:
        """Library files the text refers to via an interpreted ``(FILE:…)``."""
        return tuple(a.name for a in self.attachments if a.kind == "FILE")

    @property
    def inline_files(self) -> tuple[str, ...]:
        """Library names of the message's inline ``(BASE64:…)`` PDFs."""
        return tuple(a.name for a in self.attachments if a.kind == "BASE64")

    def sent_recipients(self) -> list[Recipient]:
        """The recipients that were sent (not counted in ``NoEnviados``)."""
        return [r for r in self.recipients.values() if r.sent]


@dataclass
class LibraryFile:
    """A file in an account's library."""

    name: str
    content: bytes
    uploaded_at: float
    auto_delete: bool
    inline: bool = False  # an inline (BASE64:…) PDF of a send: outside the quota

    @property
    def ext(self) -> str:
        """The upper-case extension, e.g. ``PDF``."""
        return self.name.rsplit(".", 1)[-1].upper() if "." in self.name else ""


@dataclass
class Account:
    """One credential's account."""

    user: str
    credits: float
    files: dict[str, LibraryFile] = field(default_factory=dict)
    last_range_download_at: float | None = None


class SandboxState:
    """All mutable state; ``lock`` guards every read-modify-write."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.messages: dict[int, Message] = {}
        self.next_message_id = FIRST_MESSAGE_ID
        self.next_report_id = FIRST_REPORT_ID
        self.reset_data()

    def reset_data(self) -> None:
        """Clear messages and files; every account back to its initial credits."""
        with self.lock:
            self.accounts = {
                user: Account(user, float(self.config.initial_credits))
                for user in self.config.accounts()
            }
            self.messages = {}
            self.next_message_id = FIRST_MESSAGE_ID
            self.next_report_id = FIRST_REPORT_ID

    def account(self, user: str) -> Account:
        """The account of ``user`` (created on first use, e.g. after a config change)."""
        with self.lock:
            if user not in self.accounts:
                self.accounts[user] = Account(user, float(self.config.initial_credits))
            return self.accounts[user]

    def new_message_id(self) -> int:
        """The next idMensaje."""
        with self.lock:
            value = self.next_message_id
            self.next_message_id += 1
            return value

    def new_report_id(self) -> int:
        """The next idReport (one per recipient)."""
        with self.lock:
            value = self.next_report_id
            self.next_report_id += 1
            return value

    def snapshot(self) -> dict[str, Any]:
        """Accounts, messages with per-recipient status, files: JSON-ready."""
        with self.lock:
            return {
                "now": to_provider(self.clock.now()),
                "clock_offset_s": self.clock.offset_s,
                "accounts": {
                    user: {
                        "credits": account.credits,
                        "files": [
                            {
                                "name": f.name,
                                "size_bytes": len(f.content),
                                "uploaded_at": to_provider(f.uploaded_at),
                                "auto_delete": f.auto_delete,
                                "inline": f.inline,
                            }
                            for f in account.files.values()
                        ],
                    }
                    for user, account in self.accounts.items()
                },
                "messages": [_message_dict(m) for m in self.messages.values()],
            }


def _message_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "user": message.user,
        "sender": message.sender,
        "text": message.text if len(message.text) <= 500 else message.text[:500] + "…",
        "reference": message.reference,
        "contract_type": message.contract_type,
        "report": message.report,
        "links": message.links,
        "macros": [m.public() for m in message.macros],
        "macros_as_text": message.macros_as_text,
        "attachments": [a.public() for a in message.attachments],
        "not_sent": list(message.not_sent),
        "created_at": to_provider(message.created_at),
        "scheduled_at": (
            to_provider(message.scheduled_at, seconds=False) if message.scheduled_at else None
        ),
        "recipients": [
            {
                "phone": r.phone,
                "result": r.result,
                "status": status_text(r.result),
                "id_report": r.id_report,
                "report": r.report,
                "sent": r.sent,
                "variables": dict(r.variables),
                "history": [{"at": to_provider(t), "result": code} for t, code in r.history],
            }
            for r in message.recipients.values()
        ],
    }
