"""Whole files only: a file is written to a temporary beside it and renamed over it, so a reader sees the old file or
the new one, never half of one, and a failure leaves the old one as it was."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: Path, mode: str = "wb", *, permissions: int | None = None, **open_args) -> Iterator[IO]:
    """The file to write `path`'s new content to (`mode` "w" or "wb", `open_args` as for open()); when the block ends
    without error it is flushed to disk and renamed over `path`, and the rename made durable.

    Created with the default permissions (the umask), unlike mkstemp's owner-only ones, unless `permissions` says.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, mode.replace("w", "x"), **open_args) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if permissions is not None:
            os.chmod(temporary, permissions)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    sync_path(path.parent)


def sync_path(path: Path) -> None:
    """Flush a file, or a folder's entries (which makes a rename in it durable), to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def walk(root: Path, skip: Iterable[str] = ()) -> Iterator[Path]:
    """Every folder under `root` and every file in them, not entering folders named in `skip`.

    Other processes create and delete folders here while we walk (dbt's per-invocation target folders): a folder that
    vanishes is passed over, where Path.rglob would raise FileNotFoundError half-way.
    """
    skipped = set(skip)
    for folder, folders, names in os.walk(root):  # os.walk ignores folders it can no longer list
        folders[:] = [name for name in folders if name not in skipped]
        yield from (Path(folder, name) for name in folders)
        yield from (Path(folder, name) for name in names)


def file_identity(stat: os.stat_result) -> str:
    """Size, modification and status-change times (ns) and inode of a file. Any write moves the status-change time,
    and no tool sets it back (unlike the modification time, which `touch` or `cp -p` can restore), so a file with the
    identity it had when it was hashed still has that content (to the file system's tick: a nanosecond on ext4, XFS and
    APFS); a copy, a move or a `chmod` only costs a re-read."""
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"
