"""The documentation stays true: the generated page is current, the README stays a
short front door, links resolve, the names the docs use exist, and nothing points
outside the repository."""

from __future__ import annotations

import argparse
import re
import unicodedata
from pathlib import Path

from certsms.config.settings import Settings, variable_name
from certsms.config.table import PAGE_PATH, REGENERATE, configuration_page

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PROVIDER = DOCS / "provider.md"
README_MAX_BYTES = 12_288
FIRST_SCREEN_LINES = 60

CODE_DIRS = ("config", "mensatek", "worker", "tasks", "sandbox", "bench", "tests", "docs")
TEXT_FILES = ("README.md", "Makefile", "Procfile", "pyproject.toml", ".ci/run")
OUTSIDE_PATTERNS = (
    r"\.\./shared",
    r"shared/reference",
    r"mensatek-api\.md",
    r"mensatek-v7-certified",
    r"dramatiq-2-notes",
    r"DESIGN\.md",
    r"STYLE\.md",
    r"internals\.md",
    r"\breference[\s,]*§",
)

_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$", re.MULTILINE)
_SECTION = re.compile(r"^#{2,3} §(\d+(?:\.\d+)?) ", re.MULTILINE)
_CITATION = re.compile(r"docs/provider\.md([^\n)]*)")
_CITED = re.compile(r"§(\d+(?:\.\d+)?)(?:[–-](\d+(?:\.\d+)?))?")
_SETTING = re.compile(r"\b(?:CERTSMS|MENSATEK)_[A-Z0-9_]*")
_COMMAND = re.compile(r"(?:^|[\s(`$])(?<!from )(?<!import )(?:\.venv/bin/)?certsms ([a-z][a-z-]*)")


def _markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _without_code(text: str) -> str:
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def _code_of(text: str) -> list[str]:
    blocks = [m.group(0) for m in _FENCE.finditer(text)]
    spans = [m.group(0).strip("`") for m in _INLINE_CODE.finditer(_FENCE.sub("", text))]
    return blocks + spans


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    kept = "".join(c for c in heading.lower() if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for match in _HEADING.finditer(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _repository_files() -> list[Path]:
    files = [ROOT / name for name in TEXT_FILES if (ROOT / name).exists()]
    for folder in CODE_DIRS:
        files += sorted((ROOT / folder).rglob("*.py"))
    files += sorted(DOCS.glob("*.md"))
    files += sorted(p for p in (ROOT / "examples").glob("*") if p.suffix in (".json", ".md"))
    return [f for f in files if f.resolve() != Path(__file__).resolve()]


def test_docs_configuration_page_is_generated() -> None:
    """docs/configuration.md is exactly what the generator writes from the settings."""
    committed = (ROOT / PAGE_PATH).read_text(encoding="utf-8")
    assert committed == configuration_page(), (
        f"{PAGE_PATH} is out of date with config/settings.py and config/table.py: "
        f"run `{REGENERATE}` and commit the result"
    )


def test_docs_readme_fits_the_front_door_budget() -> None:
    """README.md stays a short front door (at most 12 KiB); the rest lives in docs/."""
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/"


def test_docs_readme_walks_through_a_first_job_on_the_first_screen() -> None:
    """The first screen of the README starts the stack, enqueues, watches and checks evidence."""
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN_LINES])
    for step in (
        "make run",
        "certsms enqueue send",
        "enqueue_send",
        "certsms status",
        "certsms evidence",
    ):
        assert step in first_screen, f"{step!r} is not in the README's first screen"


def test_docs_readme_links_every_docs_page() -> None:
    """Every page under docs/ is reachable from the README."""
    links = {
        (README.parent / target.split("#")[0]).resolve()
        for target in _LINK.findall(_without_code(README.read_text(encoding="utf-8")))
    }
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in links]
    assert unlinked == []


def test_docs_relative_links_resolve() -> None:
    """Every relative link in README.md and docs/*.md names a file (and heading) that exists."""
    broken = []
    for page in _markdown_pages():
        for target in _LINK.findall(_without_code(page.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s), mailto
            path_part, _, anchor = target.partition("#")
            path = (page.parent / path_part).resolve() if path_part else page.resolve()
            where = f"{page.relative_to(ROOT)}: {target}"
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{where} (no such heading)")
    assert broken == []


def test_docs_no_reference_outside_the_repository() -> None:
    """No doc, code file, Makefile or example refers to a path outside the repository."""
    found = []
    for path in _repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for pattern in OUTSIDE_PATTERNS:
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_docs_provider_citations_name_existing_sections() -> None:
    """Every ``docs/provider.md §N`` cited in the code names a section of that page."""
    sections = set(_SECTION.findall(PROVIDER.read_text(encoding="utf-8")))
    wrong = []
    for path in _repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for citation in _CITATION.finditer(text):
            for first, last in _CITED.findall(citation.group(1)):
                for number in filter(None, (first, last)):
                    if number not in sections:
                        wrong.append(f"{path.relative_to(ROOT)}: §{number}")
    assert wrong == []


def test_docs_name_only_real_settings() -> None:
    """Every CERTSMS_* or MENSATEK_* variable the docs name is one the settings read."""
    known = {variable_name(field) for field in Settings.model_fields}
    unknown = set()
    for page in _markdown_pages():
        text = page.read_text(encoding="utf-8")
        for match in _SETTING.finditer(text):
            if text[match.end() : match.end() + 1] in ("<", "*"):
                continue  # a family: CERTSMS_FUNCTION_<NAME>, CERTSMS_*
            name = match.group(0).rstrip("_")
            if name not in known:
                unknown.add(f"{page.relative_to(ROOT)}: {name}")
    assert sorted(unknown) == []


def test_docs_name_only_real_cli_commands() -> None:
    """Every ``certsms COMMAND`` in the docs' code is a command of the CLI."""
    from certsms.worker.cli import build_parser

    parser = build_parser()
    commands: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands.update(action.choices)
    unknown = set()
    for page in _markdown_pages():
        for code in _code_of(page.read_text(encoding="utf-8")):
            for command in _COMMAND.findall(code):
                if command not in commands:
                    unknown.add(f"{page.relative_to(ROOT)}: certsms {command}")
    assert sorted(unknown) == []
