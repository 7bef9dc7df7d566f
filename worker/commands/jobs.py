"""``certsms enqueue | status | jobs | dead | resolve``: the job system from a shell.

With ``--json`` every command prints one JSON document; bad input exits 2 naming
the field.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from certsms.worker.commands.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_OK,
    BadInput,
    NotFound,
    print_json,
)
from certsms.worker.commands.common import command_settings as _settings


def _read_payload(source: str) -> dict[str, Any]:
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise BadInput(f"FILE: cannot read {source}: {exc.strerror}") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise BadInput(f"FILE: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInput("FILE: the payload must be a JSON object")
    return data


def cmd_enqueue(args: argparse.Namespace) -> int:
    """Validate and queue one job."""
    from certsms.mensatek.errors import InvalidRequest
    from certsms.tasks.producer import enqueue, job_status
    from certsms.worker.errors import IdempotencyConflict

    payload = _read_payload(args.file)
    settings = _settings()
    try:
        job_id = enqueue(
            args.kind, payload, idempotency_key=args.idempotency_key, settings=settings
        )
    except InvalidRequest as exc:
        problems = [p.as_dict() for p in exc.problems]
        if args.json:
            print_json({"error": "invalid_request", "problems": problems})
        else:
            for problem in exc.problems:
                print(f"certsms: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except IdempotencyConflict as exc:
        if args.json:
            print_json({"error": "idempotency_conflict", "job_id": exc.job_id, "message": str(exc)})
        else:
            print(f"certsms: --idempotency-key: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    record = job_status(job_id, settings=settings)
    status = record.status.value if record else None
    if args.json:
        print_json({"id": job_id, "status": status})
    else:
        print(f"{job_id} {status}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Show one job record."""
    from certsms.tasks.producer import job_status

    record = job_status(args.job_id, settings=_settings())
    if record is None:
        if args.json:
            print_json({"error": "not_found", "job_id": args.job_id})
        else:
            print(f"certsms: no job {args.job_id}", file=sys.stderr)
        return EXIT_FAILURE
    document = record.to_dict()
    if args.json:
        print_json(document)
        return EXIT_OK
    for name in ("id", "kind", "status", "attempts", "idmensaje", "res", "reference", "reason"):
        if document.get(name) not in (None, ""):
            print(f"{name:>11}: {document[name]}")
    for name in ("created_at", "updated_at"):
        print(f"{name:>11}: {document.get(name)}")
    if record.error:
        error = record.error
        text = error.get("provider_text") or error.get("message") or ""
        print(f"{'error':>11}: {error.get('class')} Res={error.get('res')} {text}")
    for name in ("credits_needed", "credits_available", "not_sent", "not_sent_phones"):
        if document.get(name) not in (None, "", []):
            print(f"{name:>17}: {document[name]}")
    if document.get("last_unrecognised"):
        print(f"{'unrecognised':>11}: {document['last_unrecognised']}")
    for phone, entry in record.recipients.items():
        print(f"{'recipient':>11}: {phone} {entry.result_code} {entry.status_class}")
    return EXIT_OK


def _since(text: str | None) -> float | None:
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return (datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])).timestamp()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput("--since: use a duration (30m, 2h, 7d) or an ISO-8601 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def cmd_jobs(args: argparse.Namespace) -> int:
    """List jobs, newest first."""
    from certsms.worker.jobs.contract import KINDS
    from certsms.worker.jobs.store import JobStatus, JobStore
    from certsms.worker.runtime import setup

    status = None
    if args.status:
        try:
            status = JobStatus(args.status)
        except ValueError:
            raise BadInput(f"--status: one of {', '.join(s.value for s in JobStatus)}") from None
    if args.kind and args.kind not in KINDS:
        raise BadInput(f"--kind: one of {', '.join(KINDS)}")
    if args.limit < 1:
        raise BadInput("--limit: must be at least 1")
    since = _since(args.since)
    rt = setup(_settings())
    store = JobStore(rt.redis, rt.settings)
    rows = store.list_jobs(status=status, kind=args.kind, since=since, limit=args.limit)
    if args.json:
        print_json({"jobs": [row.to_dict() for row in rows], "counts": store.counts()})
        return EXIT_OK
    for row in rows:
        print(
            f"{row.id}  {row.kind:<11} {row.status:<15} {row.created_at}"
            f"  attempts={row.attempts} idmensaje={row.idmensaje or '-'}"
        )
        if row.status in ("uncertain", "in_flight", "failed", "dead"):
            error = row.error or {}
            print(
                f"    in_flight_at={row.in_flight_at or '-'}"
                f" worker={row.worker_id or '-'} error={error.get('class') or '-'}"
                f" reason={row.reason or '-'}"
            )
    return EXIT_OK


def cmd_dead(args: argparse.Namespace) -> int:
    """Dead letters: list, show, retry, purge."""
    from certsms.worker.deadletter import DeadLetters
    from certsms.worker.errors import JobError
    from certsms.worker.runtime import setup

    rt = setup(_settings())
    letters = DeadLetters(rt.broker, rt.settings)
    if args.dead_command == "list":
        rows = [d.summary() for d in letters.list(limit=args.limit)]
        if args.json:
            print_json({"dead_letters": rows})
        else:
            for row in rows:
                job = row["job_id"] or "-"
                print(f"{row['id']}  {row['dead_at']}  {row['queue']}  {row['actor']}  job={job}")
                print(f"    {row['reason']}")
        return EXIT_OK
    if args.dead_command == "show":
        letter = letters.get(args.id)
        if letter is None:
            raise BadInput(f"ID: no dead letter {args.id}")
        print_json(letter.detail()) if args.json else print(
            json.dumps(letter.detail(), indent=2, default=str)
        )
        return EXIT_OK
    if args.dead_command == "retry":
        try:
            result = letters.retry(args.id)
        except JobError as exc:
            raise BadInput(f"ID: {exc}") from None
        print_json(result) if args.json else print(
            f"retried {args.id} as message {result['message_id']}"
        )
        return EXIT_OK
    if args.dead_command == "purge":
        if not args.id and not args.all:
            raise BadInput("purge: give an ID or --all")
        older = args.older_than_days * 86400 if args.older_than_days is not None else None
        removed = letters.purge(args.id, older_than_s=older)
        print_json({"purged": removed}) if args.json else print(f"purged {removed}")
        return EXIT_OK
    raise BadInput("dead: list, show, retry or purge")


def cmd_resolve(args: argparse.Namespace) -> int:
    """Settle an uncertain send: it was sent (with its idMensaje), or send it again."""
    from certsms.worker.jobs.store import JobStatus, JobStore
    from certsms.worker.runtime import setup

    settings = _settings()
    rt = setup(settings)
    store = JobStore(rt.redis, rt.settings)
    current = store.status(args.job_id)
    if current is None:
        raise NotFound(f"JOB_ID: no job {args.job_id}")
    allowed = {JobStatus.UNCERTAIN, JobStatus.IN_FLIGHT}
    if current not in allowed:
        raise BadInput(
            f"JOB_ID: job is {current}; only uncertain (or stuck in_flight) jobs are resolved"
        )
    if args.resend and current == JobStatus.IN_FLIGHT and not args.force:
        raise BadInput(
            f"JOB_ID: job {args.job_id} is in_flight: a worker may still be waiting for the "
            "provider, and resending could post it twice. Wait for the sweeper to mark it "
            "uncertain, or pass --force if you know no worker holds it"
        )
    if args.sent is not None:
        if not args.sent.isdigit():
            raise BadInput("--sent: the provider's idMensaje (digits)")
        ok = store.transition(
            args.job_id,
            JobStatus.SENT,
            idmensaje=int(args.sent),
            reason="resolved by operator: sent",
            event="job_resolved",
        )
    else:
        resendable = allowed if args.force else {JobStatus.UNCERTAIN}
        ok = store.transition(
            args.job_id,
            JobStatus.QUEUED,
            force=True,
            expect=list(resendable),
            reason="resolved by operator: resend",
            event="job_resolved",
        )
        if ok:
            rt.producer.requeue(args.job_id)
    record = store.get(args.job_id)
    status = record.status.value if record else None
    document = {"job_id": args.job_id, "status": status, "resolved": bool(ok)}
    print_json(document) if args.json else print(f"{args.job_id} {status}")
    return EXIT_OK if ok else EXIT_FAILURE


def register(subparsers: Any) -> None:
    """Add ``enqueue``, ``status``, ``jobs``, ``dead`` and ``resolve``."""
    from certsms.worker.jobs.contract import KINDS

    p = subparsers.add_parser("enqueue", help="validate and queue a job from a JSON payload")
    p.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}")
    p.add_argument("file", metavar="FILE", help="JSON payload file, or - for stdin")
    p.add_argument("--idempotency-key", help="enqueue at most once per key")
    p.add_argument("--json", action="store_true", help="print {job_id, status} as JSON")
    p.set_defaults(func=cmd_enqueue)

    p = subparsers.add_parser("status", help="show a job")
    p.add_argument("job_id", metavar="JOB_ID", help="the job's id")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("jobs", help="list jobs (newest first)")
    p.add_argument("--status", help="only jobs in this status")
    p.add_argument("--kind", help="only jobs of this kind")
    p.add_argument("--since", help="only jobs since: 30m, 2h, 7d or an ISO-8601 time")
    p.add_argument("--limit", type=int, default=50, help="most jobs shown (default 50)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_jobs)

    p = subparsers.add_parser("dead", help="dead-lettered messages: list, show, retry, purge")
    dead = p.add_subparsers(dest="dead_command", metavar="ACTION", required=True)
    d = dead.add_parser("list", help="newest first")
    d.add_argument("--limit", type=int, default=100, help="most dead letters shown (default 100)")
    d.add_argument("--json", action="store_true", help="print one JSON document")
    for name, text in (("show", "one dead letter"), ("retry", "enqueue it again")):
        d = dead.add_parser(name, help=text)
        d.add_argument("id", metavar="ID", help="the dead letter's id (from `dead list`)")
        d.add_argument("--json", action="store_true", help="print one JSON document")
    d = dead.add_parser("purge", help="delete one, or --all")
    d.add_argument("id", metavar="ID", nargs="?", help="one dead letter's id")
    d.add_argument("--all", action="store_true", help="every dead letter")
    d.add_argument(
        "--older-than-days", type=float, help="with --all: only those dead longer than this"
    )
    d.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_dead)

    p = subparsers.add_parser("resolve", help="settle an uncertain send")
    p.add_argument("job_id", metavar="JOB_ID")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--sent", metavar="IDMENSAJE", help="it was sent: the provider's idMensaje")
    group.add_argument("--resend", action="store_true", help="it was not sent: post it again")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resend: also resend an in_flight job (only if no worker holds it)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_resolve)
