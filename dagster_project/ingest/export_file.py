"""A delivered export file: its path confined to the exports folder, the names the log and messages give it, and the
error that stops its load."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster_project.contract import Entity


class IngestError(Exception):
    """A file that cannot be loaded; the message names the file and the problem on one line."""


@dataclass(frozen=True)
class ExportFile:
    path: Path  # resolved, inside the exports folder
    source_file: str  # as delivered, relative to the exports folder
    display: str  # for messages: exports folder name + source_file
    # The entity its name says (through mapping.yml's files, or as named): its mapping section's, whatever entity its
    # rows go to by grain. None for a file named after no entity.
    named: Entity | None = None

    @classmethod
    def locate(cls, exports_dir: Path, path: Path, named: Entity | None = None) -> ExportFile:
        root = exports_dir.resolve()
        resolved = path.resolve()  # follows symlinks too, so a link pointing outside is caught
        if not resolved.is_relative_to(root):
            raise IngestError(f"{path}: path is outside the exports folder {exports_dir}")
        # The delivered name is the lexical path ('..' collapsed), unless only the resolved one lies inside.
        lexical = Path(os.path.relpath(os.path.normpath(path.absolute()), os.path.normpath(exports_dir.absolute())))
        relative = resolved.relative_to(root) if lexical.parts[:1] == ("..",) else lexical
        return cls(resolved, relative.as_posix(), f"{exports_dir.name}/{relative.as_posix()}", named)
