"""``certsms cancel | reschedule TARGET``: by our job id or by the provider's idMensaje.

``TARGET`` is a send job's id when such a job exists, else an ``idMensaje``
(digits). A send that has not reached the provider is cancelled or moved at once,
with no provider request; one at the provider gets one request (a job). Exit 2
names the field when the input is bad.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.commands.common import EXIT_BAD_INPUT, EXIT_OK, BadInput, print_json


def _payload(store: Any, target: str, *, job: bool, message: bool) -> dict[str, Any]:
    if message or (not job and store.get(target) is None):
        if not target.isdigit():
            raise BadInput(f"TARGET: no job {target!r}, and not an idMensaje (digits)")
        return {"Idmensaje": int(target)}
    return {"job_id": target}


def _run(kind: str, args: argparse.Namespace) -> int:
    from mensatek.errors import InvalidRequest
    from tasks.producer import enqueue, job_status
    from worker.commands.jobs import _settings
    from worker.jobs.store import JobStore
    from worker.runtime import setup

    rt = setup(_settings())
    store = JobStore(rt.redis, rt.settings)
    payload = _payload(store, args.target, job=args.job, message=args.message)
    if kind == "reschedule":
        payload["Fecha"] = args.fecha
    try:
        job_id = enqueue(kind, payload, settings=rt.settings)
    except InvalidRequest as exc:
        if args.json:
            print_json(
                {"error": "invalid_request", "problems": [p.as_dict() for p in exc.problems]}
            )
        else:
            for problem in exc.problems:
                print(f"certsms: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    record = job_status(job_id, settings=rt.settings)
    raw_result = record.result if record else None
    result: dict[str, Any] = raw_result if isinstance(raw_result, dict) else {}
    status = record.status.value if record else None
    document = {
        "job_id": job_id,
        "status": status,
        "local": bool(result.get("local")),
        "target": payload,
    }
    if args.json:
        print_json(document)
    else:
        where = "done locally (no provider request)" if document["local"] else "queued"
        print(f"{job_id} {status} {where}")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a send (ours by job id, or the provider's by idMensaje)."""
    return _run("cancel", args)


def cmd_reschedule(args: argparse.Namespace) -> int:
    """Move a scheduled send to a new ``Fecha``."""
    return _run("reschedule", args)


def register(subparsers: Any) -> None:
    """Add ``cancel`` and ``reschedule``."""
    for name, func, text in (
        ("cancel", cmd_cancel, "cancel a send by job id or idMensaje"),
        ("reschedule", cmd_reschedule, "move a scheduled send by job id or idMensaje"),
    ):
        p = subparsers.add_parser(name, help=text)
        p.add_argument("target", metavar="TARGET", help="a send job id, or an idMensaje")
        if name == "reschedule":
            p.add_argument(
                "fecha",
                metavar="FECHA",
                help='new time: ISO-8601 with offset or "YYYY-MM-DD HH:MM"',
            )
        which = p.add_mutually_exclusive_group()
        which.add_argument("--job", action="store_true", help="TARGET is a job id")
        which.add_argument("--message", action="store_true", help="TARGET is an idMensaje")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
