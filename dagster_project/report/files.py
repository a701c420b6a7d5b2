"""Where reports go and how they are written: whole files only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def default_report_path(warehouse: Path, lang: str) -> Path:
    """<warehouse dir>/reports/crm_report.html, and crm_report.zh.html for Chinese."""
    return Path(warehouse).parent / "reports" / ("crm_report.html" if lang == "en" else f"crm_report.{lang}.html")


def write_report(page: str, path: Path) -> int:
    """Write the page through a temporary file renamed over `path`, so nobody opens half a report; returns the
    size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
        # mkstemp makes the file private; a report is for everyone who may read the folder.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path.stat().st_size
