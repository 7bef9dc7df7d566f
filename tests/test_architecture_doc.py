"""docs/architecture.md names only code that exists: every dotted hop imports."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
_HOP = re.compile(r"`((?:config|mensatek|worker|tasks|sandbox)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")


def hops() -> list[str]:
    """Every backquoted dotted name in the page that starts with one of our packages."""
    return sorted(set(_HOP.findall(DOC.read_text())))


def resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted`` (by its installed name,
    ``certsms.<layer>…``) and walk the rest as attributes."""
    parts = ["certsms", *dotted.split(".")]
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ModuleNotFoundError(dotted)


def test_architecture_doc_names_many_hops() -> None:
    """The two walks name the code they walk through (not a page of prose only)."""
    assert len(hops()) >= 30


@pytest.mark.parametrize("dotted", hops())
def test_architecture_doc_hop_exists(dotted: str) -> None:
    """Each module, class, function or method the page names can be imported."""
    assert resolve(dotted) is not None


def test_architecture_doc_resolver_fails_on_a_missing_hop() -> None:
    """A name that does not exist is caught (the check above can fail)."""
    with pytest.raises(AttributeError):
        resolve("worker.jobs.producer.Producer.no_such_method")
