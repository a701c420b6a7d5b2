"""How reports are written: whole files only."""

from __future__ import annotations

from pathlib import Path

from dagster_project.files import atomic_write
from dagster_project.privacy.modes import dir_mode, make_dirs
from dagster_project.settings import DEFAULT_PUBLISHED_MODE


def write_report(page: str, path: Path, mode: int = DEFAULT_PUBLISHED_MODE) -> int:
    """Write the page through a temporary file renamed over `path`, so nobody opens half a report; returns the
    size in bytes."""
    make_dirs(path.parent, dir_mode(mode))
    # A report is for the BI readers the published mode names (CRM_PUBLISHED_MODE), whatever the umask.
    with atomic_write(path, "w", encoding="utf-8", permissions=mode) as out:
        out.write(page)
    return path.stat().st_size
