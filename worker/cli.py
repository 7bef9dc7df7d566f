"""The ``certsms`` command line: one console script, a module per command group.

Each module in :data:`COMMAND_MODULES` (``worker/commands/``) exposes
``register(subparsers)``, which adds its sub-commands; each sub-command sets
``func(args) -> int`` on its parser.
Exit codes are the same for every command (:mod:`worker.commands.common`): 0 done,
1 not found, 2 invalid input, 3 unavailable (Redis down), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from certsms.config.errors import ConfigError
from certsms.worker.commands import (
    cancel_reschedule,
    console,
    credits,
    demo,
    evidence,
    guard,
    jobs,
    sandbox,
    up,
    web,
    worker,
)
from certsms.worker.commands.common import (
    EXIT_BAD_INPUT,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    BadInput,
    NotFound,
    print_json,
)

COMMAND_MODULES = (
    sandbox,
    up,
    worker,
    web,
    jobs,
    cancel_reschedule,
    guard,
    credits,
    evidence,
    console,
    demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every command group that is installed."""
    parser = argparse.ArgumentParser(
        prog="certsms",
        description="Certified SMS and Contract SMS through the Mensatek API v7.",
        epilog="Exit codes (every command): 0 done, 1 not found, 2 invalid input, "
        "3 unavailable (Redis down), 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"certsms {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def _version() -> str:
    try:
        return metadata.version("certsms")
    except metadata.PackageNotFoundError:  # running from a source tree, not installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    as_json = bool(getattr(args, "json", False))
    try:
        return int(func(args) or EXIT_OK)
    except ConfigError as exc:
        print(f"certsms: configuration error: {exc}", file=sys.stderr)
        if as_json:
            print_json({"error": "configuration", "variable": exc.variable, "message": str(exc)})
        return EXIT_BAD_INPUT
    except BadInput as exc:
        print(f"certsms: {exc}", file=sys.stderr)
        if as_json:
            print_json({"error": "bad_input", "message": str(exc)})
        return EXIT_BAD_INPUT
    except NotFound as exc:
        print(f"certsms: {exc}", file=sys.stderr)
        if as_json:
            print_json({"error": "not_found", "message": str(exc)})
        return EXIT_NOT_FOUND
    except (RedisConnectionError, RedisTimeoutError) as exc:
        print(
            f"certsms: Redis unavailable ({type(exc).__name__}): check REDIS_URL", file=sys.stderr
        )
        if as_json:
            print_json({"error": "unavailable", "service": "redis", "message": str(exc)})
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
