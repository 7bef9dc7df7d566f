"""``certsms cancel | reschedule TARGET``: by our job id or by the provider's idMensaje.

``TARGET`` is a send job's id when such a job exists, else an ``idMensaje``
(digits). Everything is checked against what certsms knows before any request, so a
mistyped id never reaches the provider (and never spends a rejection): the target
must be a send certsms made (exit 1 otherwise: a message sent outside certsms is
cancelled in the provider's panel), and still be queued or scheduled (exit 2 naming
TARGET otherwise: a delivered message cannot be cancelled). A send that has not
reached the provider is cancelled or moved at once, with no provider request; one at
the provider gets one request (a job).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from certsms.worker.commands.common import EXIT_BAD_INPUT, EXIT_OK, BadInput, NotFound, print_json

CHANGEABLE = frozenset({"queued", "scheduled"})
"""The statuses a send can still be cancelled or moved from."""


def _payload(store: Any, target: str, *, job: bool, message: bool, kind: str) -> dict[str, Any]:
    """The cancel/reschedule payload for ``target``, checked locally (no request made)."""
    job_id: str | None = None
    if not message:
        job_id = target if store.get(target) is not None else None
        if job_id is None and job:
            raise NotFound(f"TARGET: no job {target!r}")
    if job_id is None:
        if not target.isdigit():
            raise BadInput(f"TARGET: no job {target!r}, and not an idMensaje (digits)")
        job_id = store.find_by_message_id(target)
        if job_id is None:
            raise NotFound(
                f"TARGET: no send with idMensaje {target} is known to certsms "
                "(check the number; a message sent elsewhere is changed in the provider's panel)"
            )
    record = store.get(job_id)
    if record is None:
        raise NotFound(f"TARGET: no job {job_id!r}")
    if record.kind != "send":
        raise BadInput(f"TARGET: job {job_id} is a {record.kind} job, not a send")
    if str(record.status) not in CHANGEABLE:
        raise BadInput(
            f"TARGET: send {job_id} is {record.status}; only a queued or scheduled send "
            f"can be {'cancelled' if kind == 'cancel' else 'rescheduled'}"
        )
    return {"job_id": job_id}


def _run(kind: str, args: argparse.Namespace) -> int:
    from certsms.mensatek.errors import InvalidRequest
    from certsms.tasks.producer import enqueue, job_status
    from certsms.worker.commands.jobs import _settings
    from certsms.worker.jobs.store import JobStore
    from certsms.worker.runtime import setup

    rt = setup(_settings())
    store = JobStore(rt.redis, rt.settings)
    payload = _payload(store, args.target, job=args.job, message=args.message, kind=kind)
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
        if document["local"]:
            print(f"{kind} job {job_id}: {status}, done locally (no provider request)")
        else:
            print(f"{kind} job {job_id}: {status} (one provider request, when its turn comes)")
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
        p = subparsers.add_parser(name, help=text, description=text + " (checked locally first)")
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
        p.add_argument("--json", action="store_true", help="print one JSON document")
        p.set_defaults(func=func)
