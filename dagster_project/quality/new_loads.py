"""Which rows of a raw table the row-by-row rules check: those of the loads no passing validation has checked yet.

A load is one file loaded once (``_source_file`` and ``_loaded_at``, as in dbt/macros/incremental.sql); its rows never
change after it lands (a file delivered again with other content is a new load). So a daily refresh checks the day's
drop row by row, not every row ever loaded again: at 60M raw rows that was most of the raw suites' time. It is also
what the rules are for: 3% unreadable amounts in today's file show, where over ten years of orders they drowned.

The rules on the whole table still run on the whole table: its columns and their types, its row count against the
previous refresh, the reconciliation with the ingest log (`suites.checks_rows` tells them apart).

After a suite's validation no stop rule failed, every load of its table is recorded as checked, with the version of
the code and suites that checked it (``refresh_state.code_version``): a changed suite or rule checks every row again,
and so does a refresh asked to rebuild everything. A failed stop rule records nothing, so the same rows are checked
again by the next refresh.

Rows a table's row-by-row rules never check: the customer versions the retention blanked (dagster_project.privacy.
retention). Their personal values are gone by design, so checking every row again would count them in the e-mail
and phone null rates; they no longer count in the warehouse and were checked when they were loaded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from dagster_project.privacy import retention
from dagster_project.quality.results import SuiteValidation
from dagster_project.quality.suites import Suite
from dagster_project.sql import literal, qualified, table_columns, table_exists

CHECKED = ("meta", "raw_loads_checked")

Load = tuple[str, datetime]


@dataclass(frozen=True)
class Scope:
    """The loads of a raw table now, and those no passing validation under this version checked (None: every row is
    to be checked, as on the first refresh)."""

    loads: tuple[Load, ...]
    unchecked: tuple[Load, ...] | None
    left_out: str | None = None  # a SQL condition on the rows no row-by-row rule checks (see the module)

    @property
    def row_filter(self) -> str | None:
        """A SQL condition on the table's rows selecting the unchecked loads' rows, or None for every row."""
        kept = f"not ({self.left_out})" if self.left_out else None
        if self.unchecked is None:
            return kept
        if not self.unchecked:
            return "false"
        # Literals, not a join: Great Expectations reads through its own read-only connection. By load time alone:
        # a file name in the SQL text could hold what SQLAlchemy reads as a parameter (":name"), and a checked load
        # loaded at the same instant only adds its rows to those checked.
        times = ", ".join(f"timestamp {literal(t.isoformat(sep=' '))}" for t in sorted({t for _, t in self.unchecked}))
        return " and ".join(filter(None, (f"_loaded_at in ({times})", kept)))


def scopes(con: duckdb.DuckDBPyConnection, suites: Sequence[Suite], version: str,
           every_row: bool) -> dict[str, Scope]:
    """Each raw suite's scope (a table without load columns, or missing, is checked whole by GE as before)."""
    left_out = {("raw", "customers"): retention.blanked_versions_condition(con)}
    found = {}
    for suite in suites:
        if not {"_source_file", "_loaded_at"} <= table_columns(con, suite.schema, suite.table):
            continue
        loads = tuple(con.execute(f"select _source_file, _loaded_at from {qualified(suite.schema, suite.table)} "
                                  "group by all order by all").fetchall())
        checked = set() if every_row else _checked(con, suite.name, version)
        found[suite.name] = Scope(loads, tuple(load for load in loads if load not in checked) if checked else None,
                                  left_out.get((suite.schema, suite.table)))
    return found


def _checked(con: duckdb.DuckDBPyConnection, suite: str, version: str) -> set[Load]:
    if not table_exists(con, *CHECKED):
        return set()
    return set(con.execute(f"select source_file, loaded_at from {qualified(*CHECKED)} where suite = ? "
                           "and code_version = ?",
                           [suite, version]).fetchall())


def record(con: duckdb.DuckDBPyConnection, validations: Iterable[SuiteValidation], found: Mapping[str, Scope],
           version: str, run_id: str) -> None:
    """Record every load of each suite that passed its stop rules as checked (see the module)."""
    con.execute("create schema if not exists meta")
    con.execute(f"create table if not exists {qualified(*CHECKED)} (suite varchar, source_file varchar, "
                "loaded_at timestamp, code_version varchar, run_id varchar)")
    for validation in validations:
        scope = found.get(validation.suite.name)
        if scope is None or validation.stops:
            continue
        con.execute(f"delete from {qualified(*CHECKED)} where suite = ?", [validation.suite.name])
        if scope.loads:
            con.executemany(f"insert into {qualified(*CHECKED)} values (?, ?, ?, ?, ?)",
                            [(validation.suite.name, name, loaded_at, version, run_id)
                             for name, loaded_at in scope.loads])
