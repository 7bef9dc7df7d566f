"""The ``certsms`` command line: one console script, a module per command group.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds
its sub-commands; each sub-command sets ``func(args) -> int`` on its parser.
Exit codes: 0 ok, 2 bad input (the field named), 1 any other failure.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from config.errors import CertsmsError, ConfigError
from config.settings import Settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

COMMAND_MODULES = (
    "worker.commands.sandbox",
    "worker.commands.up",
    "worker.commands.worker",
    "worker.commands.web",
    "worker.commands.jobs",
    "worker.commands.control",
    "worker.commands.guard",
    "worker.commands.credits",
    "worker.commands.evidence",
    "worker.commands.demo",
)


class BadInput(CertsmsError):
    """Raised by a command when its input is invalid (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every command group that is installed."""
    parser = argparse.ArgumentParser(
        prog="certsms",
        description="Certified SMS and Contract SMS through the Mensatek API v7.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a command group not built yet
            raise
        module.register(subparsers)
    return parser


def command_settings() -> Settings:
    """Settings for a one-shot command; its logs go to stderr (stdout is the command's)."""
    from config.logging import configure_logging
    from config.settings import load_settings

    settings = load_settings()
    configure_logging(settings, stream=sys.stderr)
    return settings


def print_json(document: object) -> None:
    """Print one JSON document (the ``--json`` output of every command)."""
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
