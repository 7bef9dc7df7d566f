"""Cancel and reschedule (docs/provider.md §2.2–2.3, §3.2–3.3); send is :mod:`sandbox.sending`.

Recipients counted in ``NoEnviados`` (Resultado 104) are ignored here: they are
neither scheduled nor cancellable, and do not stop a message from counting as
all cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from certsms.sandbox.clock import parse_provider
from certsms.sandbox.parsing import ParamError, ParsedRequest
from certsms.sandbox.progression import set_status
from certsms.sandbox.rendering import Answer
from certsms.sandbox.state import Message
from certsms.sandbox.statuses import CANCELLED, SCHEDULED

if TYPE_CHECKING:
    from certsms.sandbox.core import SandboxCore


def _error(res: int, text: str, credits: float) -> Answer:
    return Answer({"Res": res, "Error": text, "Cred": credits}, outcome="error")


def _own_message(core: SandboxCore, req: ParsedRequest, user: str) -> Message | None:
    message_id = req.integer("Idmensaje")
    message = core.state.messages.get(message_id) if message_id is not None else None
    return message if message is not None and message.user == user else None


def cancel(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """CancelarSMSCERTIFICADO: cancels the scheduled recipients (29), refunds credits."""
    account = core.state.account(user)
    try:
        message_id = req.integer("Idmensaje")
        message = _own_message(core, req, user)
    except ParamError as exc:
        return Answer({"Res": -3, "Error": str(exc), "CRED": account.credits}, outcome="error")
    if message_id is None:
        answer = {"Res": -3, "Error": "Required parameter is missing: Idmensaje"}
        return Answer({**answer, "CRED": account.credits}, outcome="error")
    if message is None:
        return Answer(
            {"Res": -2, "IDMENSAJE": message_id, "CRED": account.credits}, outcome="error"
        )
    recipients = message.sent_recipients()
    scheduled = [r for r in recipients if r.result == SCHEDULED and r.step < 0]
    if not scheduled:
        all_cancelled = all(r.result == CANCELLED for r in recipients)
        code = -5 if all_cancelled else -4
        return Answer(
            {"Res": code, "IDMENSAJE": message.id, "CRED": account.credits}, outcome="error"
        )
    for recipient in scheduled:
        set_status(core, message, recipient, CANCELLED)
    recovered = message.cost_per_recipient * len(scheduled)
    account.credits += recovered
    return Answer(
        {
            "Res": len(scheduled),
            "IDMENSAJE": message.id,
            "CRED": account.credits,
            "CREDR": recovered,
        }
    )


def reschedule(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """ReprogramarSMSCERTIFICADO: a new future Fecha for a scheduled message."""
    account = core.state.account(user)
    missing = [name for name in ("Idmensaje", "Fecha") if req.text(name) is None]
    if missing:
        return _error(-3, "Required parameter is missing: " + ", ".join(missing), account.credits)
    try:
        message = _own_message(core, req, user)
    except ParamError as exc:
        return _error(-3, str(exc), account.credits)
    if message is None:
        return Answer({"Res": -2, "Cred": account.credits}, outcome="error")
    recipients = message.sent_recipients()
    if all(r.result == CANCELLED for r in recipients):
        return Answer({"Res": -5, "Cred": account.credits}, outcome="error")
    scheduled = [r for r in recipients if r.result == SCHEDULED and r.step < 0]
    if not scheduled:
        return Answer({"Res": -4, "Cred": account.credits}, outcome="error")
    new_at = parse_provider(req.text("Fecha") or "")
    if new_at is None or new_at <= core.clock.now():
        return _error(-6, "Fecha must be a future YYYY-MM-DD HH:mm", account.credits)
    for recipient in scheduled:
        recipient.scheduled_at = new_at
    message.scheduled_at = new_at
    return Answer({"Res": 1, "Cred": account.credits})
