"""Certificate ZIPs: a real (small) PDF per certified recipient plus a CSV.

The bytes depend only on the state (no wall-clock timestamps, fixed ZIP member
dates derived from the certification time), so the same request gives the same
ZIP and a test can compare its sha256 with ``GET /_admin/certificate/<id>/<phone>``.
File names and CSV columns are unknown at the provider (docs/provider.md §6); ours:
``certificado_<idMensaje>_<phone>.pdf`` and ``informe_<idMensaje>.csv``
(``;``-separated: idMensaje, Telefono, Resultado, Estado, Fecha, Remitente, Referencia).

Each PDF names the message's attachments (``Documento adjunto <FILE|BASE64>: <name>
sha256=…``); a message whose macros were plain text (no ``Links=1``) has none.

By Idmensaje + Telefono the docs say both "the PDF file with the certificate …
is obtained" and "a zip file is downloaded": ``certificate_phone_format``
``"zip"`` (default) serves the ZIP, ``"pdf"`` the bare PDF
(``application/pdf``, body ``%PDF-…``). By Idmensaje alone or by dates: always a ZIP.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import datetime

from certsms.sandbox.clock import MADRID, to_provider
from certsms.sandbox.state import Message, Recipient
from certsms.sandbox.statuses import status_text

CSV_HEADER = "idMensaje;Telefono;Resultado;Estado;Fecha;Remitente;Referencia"
ZIP_TYPE = "application/zip"
PDF_TYPE = "application/pdf"


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def certificate_pdf(message: Message, recipient: Recipient) -> bytes:
    """A one-page PDF 1.4 certifying the delivery of ``message`` to ``recipient``."""
    lines = [
        "CERTIFICADO DE ENTREGA - SMS CERTIFICADO (SANDBOX)",
        f"idMensaje: {message.id}",
        f"idReport: {recipient.id_report}",
        f"Remitente: {message.sender}",
        f"Destinatario: {recipient.phone}",
        f"Referencia: {message.reference}",
        f"Resultado: {recipient.result} - {status_text(recipient.result)}",
    ]
    lines += [f"{to_provider(at)}  {code} {status_text(code)}" for at, code in recipient.history]
    lines += [
        f"Documento adjunto {a.kind}: {a.name} sha256={a.sha256[:32]}" for a in message.attachments
    ]
    lines.append("Documento generado por el sandbox de certsms: sin validez legal.")
    stream_lines = ["BT", "/F1 10 Tf", "50 790 Td", "14 TL"]
    stream_lines += [f"({_pdf_escape(line)}) '" for line in lines]
    stream_lines.append("ET")
    stream = "\n".join(stream_lines).encode("cp1252", errors="replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref_at)
    return out.getvalue()


def _csv_row(message: Message, recipient: Recipient) -> str:
    fields = [
        str(message.id),
        recipient.phone,
        str(recipient.result),
        status_text(recipient.result),
        to_provider(recipient.changed_at),
        message.sender,
        message.reference.replace(";", ","),
    ]
    return ";".join(fields)


def _zip_time(epoch_s: float) -> tuple[int, int, int, int, int, int]:
    moment = datetime.fromtimestamp(epoch_s, MADRID)
    year = max(1980, moment.year)
    return (
        year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second - moment.second % 2,
    )


def build_zip(items: list[tuple[Message, Recipient]], *, csv_name: str) -> bytes:
    """The ZIP of the PDFs of ``items`` (certified recipients) plus one CSV."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for message, recipient in items:
            info = zipfile.ZipInfo(
                f"certificado_{message.id}_{recipient.phone}.pdf",
                date_time=_zip_time(recipient.changed_at),
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, certificate_pdf(message, recipient))
        rows = [CSV_HEADER] + [_csv_row(m, r) for m, r in items]
        latest = max(r.changed_at for _, r in items)
        info = zipfile.ZipInfo(csv_name, date_time=_zip_time(latest))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        archive.writestr(info, ("\r\n".join(rows) + "\r\n").encode("utf-8"))
    return buffer.getvalue()


def zip_summary(data: bytes) -> dict[str, object]:
    """sha256, size and member names of a ZIP (for the admin endpoint and the log)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.namelist()
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "members": members,
        "content_type": ZIP_TYPE,
    }


def certificate_document(
    items: list[tuple[Message, Recipient]], *, message_id: int, phone: str | None, bare_pdf: bool
) -> tuple[bytes, str, dict[str, object]]:
    """What GetSMSCERTIFICADO serves for a message (and phone): body, Content-Type, summary.

    ``bare_pdf`` (``certificate_phone_format == "pdf"``) applies only when a phone is given.
    """
    if phone is not None and bare_pdf and len(items) == 1:
        data = certificate_pdf(*items[0])
        summary: dict[str, object] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
            "members": [],
            "content_type": PDF_TYPE,
        }
        return data, PDF_TYPE, summary
    suffix = f"_{phone}" if phone else ""
    data = build_zip(items, csv_name=f"informe_{message_id}{suffix}.csv")
    return data, ZIP_TYPE, zip_summary(data)
