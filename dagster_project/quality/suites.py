"""Expectation suites as files: ``expectations/<suite>.json``, each a Great Expectations 1.x ExpectationSuite in JSON
with our settings in the suite's ``meta``:

- ``table``: the ``schema.table`` it validates (also the Dagster asset it checks: ``schema/table``);
- ``on_failure``: ``warn`` or ``stop``, what a failed expectation does unless its own ``meta.on_failure`` says
  otherwise (``warn`` records and shows the failure, ``stop`` fails the check with ERROR severity, which blocks every
  asset downstream of the table);
- ``row_count_bounds`` (optional): how far the row count may move from the previous passing refresh, used by an
  ``expect_table_row_count_to_be_between`` expectation whose bounds are the suite parameters ``row_count_min`` and
  ``row_count_max``.

And in an expectation's ``meta``, besides its own ``on_failure``:

- ``source_column`` (mart suites): ``entity.column``, the raw export column the checked mart column comes straight
  from; the rule is *not applicable* when no file of that entity delivered it
  (``dagster_project.quality.applicability``);
- ``column``: the column a rule without a ``column`` argument (an ``unexpected_rows_expectation``) is about.

Reading a suite needs no Great Expectations import (that costs seconds); the runner builds the GE objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.contract import ENTITIES_BY_NAME
from dagster_project.settings import PROJECT_ROOT

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
ON_FAILURE = ("warn", "stop")
# The suite parameters the runner fills from the results history.
ROW_COUNT_MIN, ROW_COUNT_MAX = "row_count_min", "row_count_max"
# Rules about the table as a whole (its columns, their types, its row count): run on every row of it, whatever rows the
# row-by-row rules check (dagster_project.quality.new_loads).
TABLE_RULES = frozenset({"expect_table_columns_to_match_set", "expect_table_row_count_to_be_between",
                         "expect_column_values_to_be_of_type"})
SQL_RULE = "unexpected_rows_expectation"


class SuiteError(ValueError):
    """A suite file is unusable; the message names the file."""


@dataclass(frozen=True)
class RowCountBounds:
    """This refresh's row count must lie within [min_ratio, max_ratio] x the previous passing refresh's count.

    Ratios on tiny tables are noise (3 rows becoming 40 is ordinary growth), so there is no bound until the previous
    count reaches ``min_previous_rows``; the first refresh has no previous count and so no bound either."""

    min_ratio: float = 0.5
    max_ratio: float = 10.0
    min_previous_rows: int = 100

    def limits(self, previous: int | None) -> tuple[int, int | None]:
        """(min, max) for this refresh; (0, None) means unbounded."""
        if previous is None or previous < self.min_previous_rows:
            return 0, None
        return math.ceil(previous * self.min_ratio), math.floor(previous * self.max_ratio)


@dataclass(frozen=True)
class Suite:
    name: str
    schema: str
    table: str
    on_failure: str
    row_count: RowCountBounds | None
    # The file's JSON as read: what Great Expectations parses.
    document: Mapping[str, Any] = field(repr=False)

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def asset_path(self) -> list[str]:
        return [self.schema, self.table]

    def on_failure_of(self, expectation_meta: Mapping[str, Any] | None) -> str:
        return (expectation_meta or {}).get("on_failure", self.on_failure)


def load_suite(path: Path) -> Suite:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SuiteError(f"{path.name}: not a readable JSON file ({error})") from None
    meta = document.get("meta") or {}
    name = document.get("name")
    if name != path.stem:
        raise SuiteError(f"{path.name}: suite name {name!r} must equal the file name without .json")
    schema, dot, table = str(meta.get("table", "")).partition(".")
    if not (schema and dot and table):
        raise SuiteError(f"{path.name}: meta.table must be 'schema.table', got {meta.get('table')!r}")
    on_failure = meta.get("on_failure")
    if on_failure not in ON_FAILURE:
        raise SuiteError(f"{path.name}: meta.on_failure must be one of {ON_FAILURE}, got {on_failure!r}")
    for index, expectation in enumerate(document.get("expectations") or []):
        override = (expectation.get("meta") or {}).get("on_failure", on_failure)
        if override not in ON_FAILURE:
            raise SuiteError(f"{path.name}: expectation {index} ({expectation.get('type')}) has meta.on_failure "
                             f"{override!r}, not one of {ON_FAILURE}")
        scope = (expectation.get("meta") or {}).get("scope")
        if scope is not None and (scope not in ("rows", "table") or expectation.get("type") != SQL_RULE):
            raise SuiteError(f"{path.name}: expectation {index} ({expectation.get('type')}) has meta.scope {scope!r}: "
                             f"only an {SQL_RULE} takes one, \"rows\" or \"table\"")
        source = source_column(expectation)
        if source is not None:
            entity = ENTITIES_BY_NAME.get(source[0])
            if entity is None or source[1] not in entity.column_names:
                raise SuiteError(f"{path.name}: expectation {index} ({expectation.get('type')}) has meta.source_column "
                                 f"{(expectation.get('meta') or {}).get('source_column')!r}, not 'entity.column' of a "
                                 "column of the export contract")
    bounds = meta.get("row_count_bounds")
    try:
        row_count = RowCountBounds(**bounds) if bounds is not None else None
    except TypeError as error:
        raise SuiteError(f"{path.name}: meta.row_count_bounds: {error}") from None
    return Suite(name=name, schema=schema, table=table, on_failure=on_failure, row_count=row_count, document=document)


def expectation_column(expectation: Mapping[str, Any]) -> str | None:
    """The column an expectation (as in the suite file) is about: its `column` argument, else `meta.column`."""
    kwargs = expectation.get("kwargs") or {}
    return kwargs.get("column") or (expectation.get("meta") or {}).get("column") or None


def checks_rows(expectation: Mapping[str, Any]) -> bool:
    """Whether a rule judges rows one by one, so that new rows can be checked apart from the rows checked before.
    A SQL rule may compare the whole table with something else (the ingest log): it is whole-table unless its
    `meta.scope` is "rows"."""
    kind = expectation.get("type")
    if kind in TABLE_RULES:
        return False
    if kind == SQL_RULE:
        return (expectation.get("meta") or {}).get("scope") == "rows"
    return True


def source_column(expectation: Mapping[str, Any]) -> tuple[str, str] | None:
    """`meta.source_column` as (entity, column); ('', '') when it is not of the form 'entity.column'."""
    value = (expectation.get("meta") or {}).get("source_column")
    if value is None:
        return None
    entity, dot, column = str(value).partition(".")
    return (entity, column) if dot and entity and column else ("", "")


def load_suites(directory: Path = EXPECTATIONS_DIR) -> list[Suite]:
    suites = [load_suite(path) for path in sorted(directory.glob("*.json"))]
    tables = [suite.relation for suite in suites]
    duplicated = sorted({t for t in tables if tables.count(t) > 1})
    if duplicated:
        raise SuiteError(f"{directory}: more than one suite validates {', '.join(duplicated)}")
    return suites


def row_count_parameters(suite: Suite, previous: int | None) -> dict[str, int | None]:
    """The suite parameters of the row-count expectation for this refresh."""
    low, high = (suite.row_count or RowCountBounds()).limits(previous)
    return {ROW_COUNT_MIN: low, ROW_COUNT_MAX: high}
