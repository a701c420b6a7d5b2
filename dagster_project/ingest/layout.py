"""A file's header and columns: the delimiter its header line uses, the header's cells, and how its columns map
onto the entity's raw table (the contract's names and synonyms, the mapping file's columns, required columns, and
unknown columns kept as extra columns)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass

from dagster_project.contract import Entity, match_columns, normalise_header
from dagster_project.ingest.export_file import ExportFile, IngestError
from dagster_project.ingest.mapping import EntityMapping

DELIMITERS = (",", ";", "\t", "|")
WHITESPACE = "whitespace"
# Lines looked at to recognise columns aligned with spaces.
SNIFF_LINES = 20
MAX_HEADER_BYTES = 1 << 20


def detect_delimiter(header_line: str, following: Iterable[str] = ()) -> str:
    """The candidate occurring most often outside quotes; ties (and a one-column file) prefer the comma. A header
    with none of them whose lines all split on runs of spaces into the same number (two or more) of fields is
    aligned with spaces (an old transaction log)."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    best = max(DELIMITERS, key=unquoted.count)
    if unquoted.count(best):
        return best
    width = len(header_line.split())
    if width >= 2 and all(len(line.split()) == width for line in following if line.strip()):
        return WHITESPACE
    return best


def split_header(line: str, delimiter: str) -> list[str]:
    if delimiter == WHITESPACE:
        return line.split()
    return [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter, quotechar='"'))]


def explicit_columns(entity: Entity, mapping: EntityMapping) -> dict[str, str]:
    """The mapping's columns for a file whose rows go to `entity`: an order amount, in a file of order lines, is the
    line's amount."""
    if entity.name != "order_items":
        return mapping.columns
    return {name: "line_amount" if column == "amount" else column for name, column in mapping.columns.items()}


@dataclass(frozen=True)
class Layout:
    """How a file's columns map onto its raw table."""

    header: list[str]  # cells as delivered (trimmed)
    names: list[str]  # the same, blank cells named column_<n>
    mapping: dict[int, str]  # position -> canonical column
    extras: list[str]  # names of unmapped columns, in file order
    extra_positions: list[int]

    @classmethod
    def of(cls, file: ExportFile, entity: Entity, header: list[str], mapping: EntityMapping,
           title_lines: int = 0) -> Layout:
        """The layout of a file with this header; `title_lines`: how many lines above a header the rows agree with
        the file seems to have (named in the message if required columns are missing)."""
        names = [cell or f"column_{i + 1}" for i, cell in enumerate(header)]
        seen: set[str] = set()
        for name in names:
            key = normalise_header(name)
            if key in seen:
                raise IngestError(f"{file.display}: duplicated header column '{name}'")
            seen.add(key)
        folded = {normalise_header(name) for name in names}
        unmatched = [name for name in mapping.columns if name not in folded]
        if unmatched:
            raise IngestError(
                f"{file.display}: mapping.yml maps {', '.join(repr(n) for n in unmatched)}, which the file does not "
                f"have (columns: {', '.join(names)})")
        positions, extras = match_columns(entity, names, explicit_columns(entity, mapping))
        named = file.named or entity
        # A file named as orders needs an order's columns whatever its grain.
        required = [*entity.required, *(c for c in named.required if c not in entity.required)]
        missing = [c for c in required if c not in positions.values()]
        if missing and any("\x00" in name for name in names):
            # UTF-16 text without its byte order mark: every other byte of ASCII text is NUL.
            raise IngestError(f"{file.display}: the header has NUL bytes between its letters: the file looks like "
                              "UTF-16 without a byte order mark; save it as UTF-8, or as UTF-16 with one (Excel's "
                              "\"Unicode text\")")
        if missing:
            plural = "s" if len(missing) > 1 else ""
            hint = (f"; the rows' header seems to be line {title_lines + 1}: if the lines above it are a title, set "
                    f"skip_rows: {title_lines} for {named.name} in mapping.yml"
                    if title_lines else
                    "; only one column: is the delimiter one of , ; tab | or whitespace? (set delimiter in mapping.yml)"
                    if len(names) == 1 else
                    f"; if the file calls it otherwise, say so in mapping.yml, e.g. {named.name}: columns: "
                    f"{{<name in the file>: {missing[0]}}}")
            raise IngestError(
                f"{file.display}: missing required column{plural} {', '.join(repr(c) for c in missing)} "
                f"(found: {', '.join(names)}{hint})"
            )
        mapped = set(positions.values())
        if entity.name == "order_items" and mapped & {"customer_id", "order_date"} and not mapped & {
                "unit_price", "line_amount"}:
            raise IngestError(f"{file.display}: a file of order lines with no unit price and no line amount cannot "
                              f"price its lines (found: {', '.join(names)}); map one in mapping.yml, or, if each "
                              f"row is a whole order, set grain: order for {named.name}")
        extra_positions = [i for i in range(len(names)) if i not in positions]
        kept_aside = {normalise_header(names[i]) for i in extra_positions}
        for override in mapping.status_overrides:
            if override not in folded:
                raise IngestError(f"{file.display}: mapping.yml's status_overrides names '{override}', which the file "
                                  f"does not have (columns: {', '.join(names)})")
            if override not in kept_aside:
                raise IngestError(f"{file.display}: mapping.yml's status_overrides names '{override}', which is read "
                                  f"as a column of {entity.name}; an override is a status column kept aside")
        return cls(header, names, positions, extras, extra_positions)

    @property
    def column_map(self) -> dict[str, str]:
        return {self.names[pos]: col for pos, col in sorted(self.mapping.items())}

    def extra_column(self, folded: str) -> str:
        """The file's name of the extra column whose folded header is `folded`."""
        return next(self.names[p] for p in self.extra_positions if normalise_header(self.names[p]) == folded)

    def file_column(self, column: str) -> str:
        """The file's name of the column mapped to `column`."""
        return next(self.names[p] for p, c in self.mapping.items() if c == column)

    def without(self, column: str) -> Layout:
        """The same layout with `column`'s file column kept as an extra column instead."""
        (position,) = [pos for pos, col in self.mapping.items() if col == column]
        mapping = {pos: col for pos, col in self.mapping.items() if pos != position}
        extra_positions = sorted([*self.extra_positions, position])
        return Layout(self.header, self.names, mapping, [self.names[p] for p in extra_positions], extra_positions)
