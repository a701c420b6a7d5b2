"""File modes: what holds personal data or secrets is readable by its owner only, whatever the umask; what BI readers
get (the published warehouse, its exports, the report, the quality page) has the configured published mode.

Two mechanisms, because the refresh's files are created by several programs (DuckDB's database, WAL and spill files,
dbt's target folders, Dagster's storage): every entry point sets the umask to 077 (dagster_project.process_environment),
so whatever any of them creates is owner-only; what is meant for readers is then given its mode explicitly, before it
is renamed into place. `harden` tightens files an earlier version of this tool left readable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dagster_project.files import walk
from dagster_project.warehouse_files import PRIVATE, access_of

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700


def dir_mode(file_mode: int) -> int:
    """A folder's mode for files of `file_mode`: whoever may read the files may list and enter the folder
    (0644 -> 0755, 0640 -> 0750, 0600 -> 0700)."""
    return file_mode | (file_mode & 0o444) >> 2 | 0o700


def make_dirs(path: Path, mode: int) -> Path:
    """Create `path` and its missing parents with `mode` (not masked by the umask); existing folders keep theirs."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:  # created meanwhile by a parallel process: its mode stands
            continue
        os.chmod(folder, mode)
    return Path(missing[0]) if missing else path


def private_dir(path: Path) -> Path:
    """A folder only its owner may enter: created so, or tightened if it exists."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, OWNER_ONLY_DIR)
    return path


def publish_tree(path: Path, file_mode: int) -> None:
    """Give a folder of published files (an export version) and everything in it the published mode."""
    for folder, _, files in os.walk(path):
        os.chmod(folder, dir_mode(file_mode))
        for name in files:
            os.chmod(Path(folder, name), file_mode)


def harden(warehouse: Path, more: tuple[Path, ...] = ()) -> list[Path]:
    """Make every private file and folder of the warehouse folder (the table of dagster_project.warehouse_files) and
    everything under `more` owner-only; returns what was tightened. Links are left alone."""
    tightened = []
    folder = Path(warehouse).parent
    candidates = [p for p in folder.iterdir() if access_of(warehouse, p) == PRIVATE] if folder.is_dir() else []
    for root in [*candidates, *(Path(p) for p in more if Path(p).exists())]:
        paths = [root] if not root.is_dir() or root.is_symlink() else [root, *walk(root)]
        for path in paths:
            if path.is_symlink():
                continue
            try:
                mode = OWNER_ONLY_DIR if path.is_dir() else OWNER_ONLY_FILE
                current = stat.S_IMODE(path.lstat().st_mode)
                if current & 0o077:
                    os.chmod(path, current & ~0o077 | (mode & 0o700))
                    tightened.append(path)
            except FileNotFoundError:  # removed meanwhile (another process's parse folder)
                continue
    return tightened
