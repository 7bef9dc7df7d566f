"""What every command shares: exit codes, the bad-input error, settings and JSON output.

Exit codes: 0 ok, 2 bad input (the field named), 1 any other failure.
"""

from __future__ import annotations

import json
import sys

from config.errors import CertsmsError
from config.logging import configure_logging
from config.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class BadInput(CertsmsError):
    """Raised by a command when its input is invalid (exit code 2)."""


def command_settings() -> Settings:
    """Settings for a one-shot command; its logs go to stderr (stdout is the command's)."""
    settings = load_settings()
    configure_logging(settings, stream=sys.stderr)
    return settings


def print_json(document: object) -> None:
    """Print one JSON document (the ``--json`` output of every command)."""
    print(json.dumps(document, indent=2, sort_keys=True, default=str))
