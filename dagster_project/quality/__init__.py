"""Data quality: Great Expectations suites (files in ``expectations/``) validated against the warehouse, results
appended to ``quality.quality_results`` and shown as an HTML report. The Dagster asset checks that run them inside
the refresh are in ``dagster_project.defs.assets.checks``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from dagster_project.quality import new_loads
from dagster_project.quality.applicability import delivered_columns
from dagster_project.as_of import resolved_as_of
from dagster_project.quality.report import write_report
from dagster_project.quality.results import (
    RunContext,
    SuiteValidation,
    append_results,
    database_file,
    previous_row_counts,
)
from dagster_project.quality.suites import Suite, row_count_parameters
from dagster_project.settings import DEFAULT_PUBLISHED_MODE

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


def check_suites(connect: Connect, suites: Sequence[Suite], run_id: str, report: Path,
                 built_marts: bool, report_mode: int = DEFAULT_PUBLISHED_MODE, code_version: str | None = None,
                 every_row: bool = False) -> tuple[list[SuiteValidation], dict[str, new_loads.Scope]]:
    """Validate `suites` against the database `connect` opens, append the results and rewrite the report. Returns
    the validations and, per raw suite, which rows its row-by-row rules checked.

    `built_marts`: the suites run after dbt, so the as-of date it resolved applies (raw suites run before it).
    Rules on columns the export never delivered (per the ingest log) are recorded as not applicable, not run.
    With `code_version` (raw suites), row-by-row rules check only the rows of loads no passing validation under that
    version checked, unless `every_row` (dagster_project.quality.new_loads)."""
    with connect() as con:
        database = database_file(con)
        as_of = resolved_as_of(con) if built_marts else None
        previous = previous_row_counts(con, [s.name for s in suites], run_id, as_of)
        delivered = delivered_columns(con)
        scopes = {} if built_marts or code_version is None else new_loads.scopes(con, suites, code_version, every_row)
    # Imported here: Great Expectations takes seconds to import, which only a check run should pay.
    from dagster_project.quality import gx

    validations = gx.validate(database, suites, {s.name: row_count_parameters(s, previous.get(s.name)) for s in suites},
                              delivered, {name: scope.row_filter for name, scope in scopes.items()
                                          if scope.row_filter is not None})
    with connect() as con:
        append_results(con, RunContext(run_id, datetime.now(timezone.utc).replace(tzinfo=None), as_of), validations)
        if scopes:
            new_loads.record(con, validations, scopes, code_version, run_id)
        write_report(con, report, run_id, report_mode)
    return validations, scopes
