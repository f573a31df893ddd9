"""docs/lcm.md's file table names every module of vnfm/, and only files that exist."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "lcm.md"
SECTION = "## Blocks and files"


def _table_rows() -> dict[str, str]:
    """First column (a `path` or `glob`) -> second column, of the section's table."""
    text = DOC.read_text()
    section = text[text.index(SECTION) :].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| `([^`]+)` \| (.+) \|", line.strip())
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def _modules() -> list[str]:
    return sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "vnfm").rglob("*.py")
        if path.name != "__init__.py" or path.stat().st_size > 0
    )


def test_every_vnfm_module_is_in_the_table() -> None:
    rows = _table_rows()
    missing = [m for m in _modules() if not any(fnmatch(m, entry) for entry in rows)]
    assert missing == []
    assert all(purpose.strip() for purpose in rows.values())


def test_every_row_names_something_that_exists() -> None:
    stale = [entry for entry in _table_rows() if not any(REPO.glob(entry.rstrip("/")))]
    assert stale == []
