"""How reports are written: whole files only."""

from __future__ import annotations

from pathlib import Path

from dagster_project.files import atomic_write


def write_report(page: str, path: Path) -> int:
    """Write the page through a temporary file renamed over `path`, so nobody opens half a report; returns the
    size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A report is for everyone who may read the folder, whatever the umask.
    with atomic_write(path, "w", encoding="utf-8", permissions=0o644) as out:
        out.write(page)
    return path.stat().st_size
