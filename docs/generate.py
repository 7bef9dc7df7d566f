"""Write the generated documentation pages (today: docs/configuration.md).

Run from the repository root after changing a setting or its description:

    .venv/bin/python docs/generate.py          # rewrite the pages
    .venv/bin/python docs/generate.py --check  # exit 1 if a page is out of date

The text comes from :func:`config.table.configuration_page`; ``tests/test_docs.py``
fails when the committed page differs from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a fresh clone: import the packages here
    sys.path.insert(0, str(ROOT))

from certsms.config.table import PAGE_PATH, configuration_page  # noqa: E402


def main(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) every generated page; the exit code."""
    check = "--check" in argv
    path = ROOT / PAGE_PATH
    text = configuration_page()
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == text:
        print(f"{PAGE_PATH} is up to date")
        return 0
    if check:
        print(f"{PAGE_PATH} is out of date: run .venv/bin/python docs/generate.py")
        return 1
    path.write_text(text, encoding="utf-8")
    print(f"{PAGE_PATH} written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
