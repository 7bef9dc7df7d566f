"""docs/logging.md lists every log event and every field the code logs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("worker", "tasks", "mensatek", "config", "sandbox")
LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
NOT_FIELDS = frozenset({"exc_info", "stack_info"})


def _log_calls() -> dict[str, set[str]]:
    """Every ``log.<level>("event", field=...)`` in the code: event → fields."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                target = node.func.value
                if node.func.attr not in LEVELS or not isinstance(target, ast.Name):
                    continue
                if target.id not in ("log", "logger") or not node.args:
                    continue
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names = {k.arg for k in node.keywords if k.arg and k.arg not in NOT_FIELDS}
                    found.setdefault(first.value, set()).update(names)
    return found


def test_logging_doc_lists_every_event() -> None:
    """Each event name logged in the code has a row in docs/logging.md."""
    page = (ROOT / "docs" / "logging.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z0-9_]+)` \|", page, flags=re.M))
    calls = _log_calls()
    assert len(calls) > 50  # the scan found the log calls
    assert sorted(set(calls) - listed) == []


def test_logging_doc_explains_every_field() -> None:
    """Each field name logged in the code is in the page's field table."""
    page = (ROOT / "docs" / "logging.md").read_text(encoding="utf-8")
    fields_part = page.split("## Every field", 1)[1]
    explained = set(re.findall(r"^\| `([a-z0-9_]+)` \|", fields_part, flags=re.M))
    used = set().union(*_log_calls().values())
    assert sorted(used - explained) == []


def test_logging_doc_message_id_means_dramatiq_everywhere() -> None:
    """Only the enqueue line logs ``message_id`` (dramatiq's); the provider's is ``idmensaje``."""
    with_message_id = {e for e, fields in _log_calls().items() if "message_id" in fields}
    assert with_message_id == {"job_enqueued"}
