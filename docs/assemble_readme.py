"""Assemble README.md from docs/readme/*.md (in name order) and the generated
configuration table (``{{CONFIG_TABLE}}`` in a fragment). Run after editing a fragment:

    .venv/bin/python docs/assemble_readme.py
"""

from __future__ import annotations

from pathlib import Path

from config.table import markdown_table

ROOT = Path(__file__).resolve().parent.parent


def assemble() -> str:
    """The README text."""
    parts = [p.read_text().strip() for p in sorted((ROOT / "docs" / "readme").glob("*.md"))]
    text = "\n\n".join(parts) + "\n"
    return text.replace("{{CONFIG_TABLE}}", markdown_table())


if __name__ == "__main__":
    (ROOT / "README.md").write_text(assemble())
    print("README.md written")
