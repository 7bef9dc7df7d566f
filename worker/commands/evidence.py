"""``certsms evidence JOB_ID [--json]``: list a job's stored certificates, check their hashes."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``evidence``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "evidence",
        help="list a job's stored certificates and verify their sha256",
        description=(
            "Re-hash every file the evidence manifest lists for JOB_ID and compare it with "
            "the manifest. Exit 1 when a file is missing or differs."
        ),
    )
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Verify and print; 0 when every file matches (or none is stored yet), 1 when one
    does not or there is no such job, 3 when Redis is down."""
    from redis import Redis

    from certsms.worker.commands.common import (
        EXIT_FAILURE,
        EXIT_OK,
        NotFound,
        command_settings,
        print_json,
    )
    from certsms.worker.evidence import EvidenceStore
    from certsms.worker.jobs.store import JobStore

    settings = command_settings()
    store = EvidenceStore(settings)
    # nothing stored: a known job just has no evidence yet; an unknown id is an error
    jobs = JobStore(Redis.from_url(settings.redis_url), settings)
    if not store.entries(job_id=args.job_id) and jobs.get(args.job_id) is None:
        raise NotFound(f"JOB_ID: no job {args.job_id!r}")
    checks = store.verify(args.job_id)
    ok = all(check.ok for check in checks)
    if args.json:
        print_json(
            {
                "job_id": args.job_id,
                "cert_dir": str(store.root),
                "ok": ok,
                "files": [check.as_dict() for check in checks],
            }
        )
    elif not checks:
        print(f"no certificates stored for job {args.job_id} (under {store.root})")
    else:
        for check in checks:
            state = "ok" if check.ok else f"FAILED ({check.problem})"
            print(
                f"{state:<22} {check.kind:<11} {check.size_bytes:>9} B  "
                f"sha256={check.expected_sha256[:16]}…  {check.path}"
            )
        print(f"{len(checks)} file(s), {'all match' if ok else 'MISMATCH'}")
    return EXIT_OK if ok else EXIT_FAILURE
