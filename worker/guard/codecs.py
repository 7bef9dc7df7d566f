"""How provider answers are kept in the guard's query cache (shared by every caller).

Report jobs and the report poller cache the same answer under the same key, so an
identical report query within ``report_cache_ttl_s`` is never repeated at the
provider (which counts that as spam).
"""

from __future__ import annotations

import json
from datetime import datetime

from certsms.mensatek.results import ReportEntry, ReportResult
from certsms.worker.guard.cache import Codec


def report_cache_key(message_id: int | str) -> str:
    """The cache key of a report of ``message_id``."""
    return f"report:{message_id}"


def _dump_report(result: ReportResult) -> str:
    entries = [
        {
            "phone": e.phone,
            "result_code": e.result_code,
            "status_text": e.status_text,
            "reported_at": e.reported_at.isoformat() if e.reported_at else None,
            "delivery_s": e.delivery_s,
        }
        for e in result.recipients
    ]
    return json.dumps(
        {"count": result.recipient_count, "recipients": entries, "credits": result.credits}
    )


def _load_report(text: str) -> ReportResult:
    data = json.loads(text)
    entries = tuple(
        ReportEntry(
            phone=str(e["phone"]),
            result_code=e["result_code"],
            status_text=e.get("status_text"),
            reported_at=datetime.fromisoformat(e["reported_at"]) if e.get("reported_at") else None,
            delivery_s=e.get("delivery_s"),
        )
        for e in data["recipients"]
    )
    return ReportResult(recipient_count=data["count"], recipients=entries, credits=data["credits"])


#: How a report answer is kept in the guard's query cache.
REPORT_CODEC: Codec[ReportResult] = Codec(dumps=_dump_report, loads=_load_report)
