"""Report, credits and certificate download (docs/provider.md §2.4, §2.5, §2.9).

The report lists every recipient of the message, a recipient counted in
``NoEnviados`` as Resultado 104 (see :mod:`sandbox.sending`); such a recipient
has no certificate (``Res -4``). By Idmensaje + Telefono the certificate is a
ZIP or, with ``certificate_phone_format="pdf"``, the bare PDF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from certsms.sandbox.certificates import ZIP_TYPE, build_zip, certificate_document, zip_summary
from certsms.sandbox.clock import parse_provider, to_provider
from certsms.sandbox.parsing import ParamError, ParsedRequest, normalize_phone
from certsms.sandbox.rendering import Answer
from certsms.sandbox.state import Message, Recipient
from certsms.sandbox.statuses import is_certified, status_text

if TYPE_CHECKING:
    from certsms.sandbox.core import SandboxCore


def credits(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """GetCreditos."""
    return Answer({"Res": 1, "Cred": core.state.account(user).credits})


def report(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """GetReportSMSCERTIFICADO: one Informe row per recipient."""
    account = core.state.account(user)
    try:
        message_id = req.integer("Idmensaje")
    except ParamError as exc:
        return Answer({"Res": -3, "Error": str(exc), "Cred": account.credits}, outcome="error")
    if message_id is None:
        text = "Required parameter is missing: Idmensaje"
        return Answer({"Res": -3, "Error": text, "Cred": account.credits}, outcome="error")
    message = core.state.messages.get(message_id)
    if message is None or message.user != user:
        return Answer({"Res": -4, "Cred": account.credits}, outcome="error")
    rows = [
        {
            "Fecha": to_provider(r.changed_at),
            "Tiempo": int(r.changed_at - r.sent_at) if r.sent_at else 0,
            "Telefono": int(r.phone),
            "Resultado": r.result,
            "Estado": status_text(r.result),
        }
        for r in message.recipients.values()
    ]
    return Answer({"Res": 1, "Destinatarios": len(rows), "Cred": account.credits, "Informe": rows})


def _zip_answer(items: list[tuple[Message, Recipient]], csv_name: str) -> Answer:
    data = build_zip(items, csv_name=csv_name)
    summary = zip_summary(data)
    return Answer({"zip": summary}, body=data, content_type=ZIP_TYPE)


def certificate_items(
    core: SandboxCore, user: str, message_id: int, phone: str | None
) -> list[tuple[Message, Recipient]] | str:
    """The certified (message, recipient) pairs asked for, or the reason there are none."""
    message = core.state.messages.get(message_id)
    if message is None or message.user != user:
        return "No data for this Idmensaje"
    if phone is not None:
        recipient = message.recipients.get(phone)
        if recipient is None:
            return "The Telefono is not a recipient of this message"
        if not recipient.sent:
            return "The Telefono was not sent (NoEnviados): the mobile is not correct"
        if not is_certified(recipient.result):
            return "The recipient is not certified yet"
        return [(message, recipient)]
    items = [(message, r) for r in message.recipients.values() if is_certified(r.result)]
    return items or "No recipient of this message is certified yet"


def certificate(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """GetSMSCERTIFICADO: a ZIP by message+phone, by message, or by date range."""
    account = core.state.account(user)

    def error(res: int, text: str) -> Answer:
        return Answer({"Res": res, "Error": text, "Cred": account.credits}, outcome="error")

    try:
        message_id = req.integer("Idmensaje")
    except ParamError as exc:
        return error(-3, str(exc))
    raw_phone = req.text("Telefono")
    phone = normalize_phone(raw_phone) if raw_phone else None
    if raw_phone and phone is None:
        return error(-3, f"Invalid Telefono: {raw_phone!r}")
    if message_id is not None:
        found = certificate_items(core, user, message_id, phone)
        if isinstance(found, str):
            return error(-4, found)
        bare_pdf = core.config.certificate_phone_format == "pdf"
        data, content_type, summary = certificate_document(
            found, message_id=message_id, phone=phone, bare_pdf=bare_pdf
        )
        key = "pdf" if content_type != ZIP_TYPE else "zip"
        return Answer({key: summary}, body=data, content_type=content_type)
    start_text, end_text = req.text("Fechainicio"), req.text("Fechafin")
    if start_text is None or end_text is None:
        return error(-3, "Required parameter is missing: Idmensaje or Fechainicio and Fechafin")
    start, end = parse_provider(start_text), parse_provider(end_text)
    if start is None or end is None or end < start:
        return error(-3, "Fechainicio/Fechafin must be YYYY-MM-DD HH:mm, start before end")
    # the interval is judged between arrivals, as the provider sees them (not when a
    # busy sandbox thread got round to each request)
    now = req.arrived_s if req.arrived_s is not None else core.clock.now()
    interval_s = core.config.range_download_interval_s
    last = account.last_range_download_at
    if last is not None and now - last < interval_s:
        return error(-4, f"Date-range downloads are allowed once every {interval_s:g} s")
    account.last_range_download_at = now
    items = [
        (m, r)
        for m in core.state.messages.values()
        if m.user == user and start <= m.created_at <= end + 59
        for r in m.recipients.values()
        if is_certified(r.result)
    ]
    if not items:
        return error(-4, "No certified messages in this date range")
    return _zip_answer(items, "informe.csv")
