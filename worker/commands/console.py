"""``certsms console hash-password``: a password hash for ``CERTSMS_CONSOLE_USERS``.

The password is read from the terminal without echo (or from stdin when piped), never
from the command line, where ``ps`` and shell history would show it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from certsms.worker.commands.common import EXIT_OK, BadInput, print_json


def register(subparsers: Any) -> None:
    """Add ``console hash-password``."""
    parser = subparsers.add_parser(
        "console",
        help="helpers for the web console (/console/)",
        description="Helpers for the web console at /console/ (see docs/console.md).",
    )
    sub = parser.add_subparsers(dest="console_command", metavar="ACTION", required=True)
    hashing = sub.add_parser(
        "hash-password",
        help="print a password hash for CERTSMS_CONSOLE_USERS",
        description="Read a password (without echo on a terminal, else one line of stdin) "
        "and print NAME=ROLE:HASH for CERTSMS_CONSOLE_USERS.",
    )
    hashing.add_argument("name", metavar="NAME", help="the user's name")
    hashing.add_argument(
        "--role",
        choices=("viewer", "operator"),
        default="viewer",
        help="viewer: may look, phones masked; operator: may act, sees phones (default viewer)",
    )
    hashing.add_argument("--json", action="store_true", help="print one JSON document")
    hashing.set_defaults(func=_hash_password)


def _hash_password(args: argparse.Namespace) -> int:
    from certsms.worker.web.console.users import hash_password

    if any(c in args.name for c in ",=:") or not args.name.strip():
        raise BadInput("NAME: must be non-empty, without ',', '=' or ':'")
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise BadInput("password: the two entries differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise BadInput("password: use at least 8 characters")
    entry = f"{args.name}={args.role}:{hash_password(password)}"
    if args.json:
        print_json({"name": args.name, "role": args.role, "entry": entry})
    else:
        print(entry)
    return EXIT_OK
