"""What every command shares: exit codes, the errors that map to them, settings, JSON output.

Exit codes, the same for every command (docs/operating.md#exit-codes):

- 0 done;
- 1 not found (no such job, dead letter, file), or a check that failed (evidence mismatch);
- 2 invalid input (the field or argument named), including a configuration error;
- 3 unavailable: Redis (or the provider) could not be reached; try again later;
- 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import re
import sys

from certsms.config.errors import CertsmsError
from certsms.config.logging import configure_logging
from certsms.config.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3


class BadInput(CertsmsError):
    """Raised by a command when its input is invalid (exit code 2)."""


class NotFound(CertsmsError):
    """Raised by a command when what it was asked about does not exist (exit code 1)."""


CLI_REDIS_RETRY_WINDOW_S = 3.0
"""How long a one-shot command retries Redis on a broken connection unless
``CERTSMS_REDIS_RETRY_WINDOW_S`` is set: a person at a terminal wants "Redis
unavailable" in seconds, and can run the command again; a worker's job cannot, so
workers keep the long default (30 s) that rides out a restart or failover."""


def command_settings() -> Settings:
    """Settings for a one-shot command; its logs go to stderr (stdout is the command's).

    The Redis retry window is :data:`CLI_REDIS_RETRY_WINDOW_S` unless set explicitly.
    """
    settings = load_settings()
    if "redis_retry_window_s" not in settings.model_fields_set:
        window_s = min(settings.redis_retry_window_s, CLI_REDIS_RETRY_WINDOW_S)
        settings = settings.model_copy(update={"redis_retry_window_s": window_s})
    configure_logging(settings, stream=sys.stderr)
    return settings


def print_json(document: object) -> None:
    """Print one JSON document (the ``--json`` output of every command)."""
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def description(doc: str | None) -> str:
    """A module docstring as a ``--help`` description: no leading ``certsms X:`` and no
    reStructuredText double backticks (help is read in a terminal, not rendered)."""
    text = re.sub(r"^``certsms [^`]+``:\s*", "", (doc or "").strip())
    text = text.replace("``", "")
    return text[:1].upper() + text[1:]
