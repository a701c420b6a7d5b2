"""The results history: ``quality.quality_results`` in the working database, one row per expectation per run,
appended by every refresh and never rewritten. It is also where the row-count bounds come from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.quality.suites import SQL_RULE, Suite

SCHEMA, TABLE = "quality", "quality_results"
RESULTS = f"{SCHEMA}.{TABLE}"
ROW_COUNT_EXPECTATION = "expect_table_row_count_to_be_between"

COLUMNS = (
    ("run_id", "VARCHAR"),
    ("checked_at", "TIMESTAMP"),
    # The as-of date the marts were built for (null for raw suites, which run before dbt resolves it).
    ("as_of_date", "DATE"),
    ("suite", "VARCHAR"),
    ("asset_key", "VARCHAR"),
    ("expectation_type", "VARCHAR"),
    ("column_name", "VARCHAR"),
    ("kwargs", "JSON"),
    ("observed_value", "JSON"),
    ("unexpected_count", "BIGINT"),
    ("unexpected_percent", "DOUBLE"),
    ("success", "BOOLEAN"),
    # What a failure does: 'warn' (recorded, shown) or 'stop' (blocks everything downstream of the table).
    ("severity", "VARCHAR"),
    ("details", "JSON"),
    ("description", "VARCHAR"),
    # 'passed', 'failed' or 'not_applicable' (a rule on a column the export never delivered: not run, success null,
    # the reason in details). Added after the first release: older rows are filled from success.
    ("status", "VARCHAR"),
    # Rows GE checked for a column expectation (the 120 of "3 of 120 rows fail"); null for other rules.
    ("element_count", "BIGINT"),
)
PASSED, FAILED, NOT_APPLICABLE = "passed", "failed", "not_applicable"


@dataclass(frozen=True)
class RunContext:
    run_id: str
    checked_at: datetime
    as_of_date: date | None


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation_type: str
    column: str | None
    kwargs: dict[str, Any]
    observed_value: Any
    unexpected_count: int | None
    unexpected_percent: float | None
    # None when the rule was not applicable (not run).
    success: bool | None
    # What a failure does: "warn" or "stop" (the suite's on_failure or the expectation's own).
    severity: str
    # A sample of unexpected values or rows (personal values withheld), the error GE met while computing the
    # expectation, or why it was not applicable.
    details: Any
    description: str | None
    # Rows GE checked (column expectations); the "120" of "3 of 120 rows fail".
    element_count: int | None = None
    # Why the rule does not apply to this export (dagster_project.quality.applicability); None when it was run.
    not_applicable: str | None = None

    @property
    def status(self) -> str:
        if self.not_applicable:
            return NOT_APPLICABLE
        return PASSED if self.success else FAILED

    @property
    def label(self) -> str:
        if self.column and self.expectation_type != SQL_RULE:
            return f"{self.expectation_type}({self.column})"
        # A SQL expectation is known by what it checks.
        return f"{self.expectation_type}: {self.description}" if self.description else self.expectation_type


@dataclass(frozen=True)
class SuiteValidation:
    suite: Suite
    expectations: list[ExpectationOutcome]
    seconds: float

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if e.status == FAILED]

    @property
    def not_applicable(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if e.status == NOT_APPLICABLE]

    @property
    def stops(self) -> bool:
        """A failed expectation whose on_failure is 'stop': the check fails with ERROR severity and blocks."""
        return any(e.severity == "stop" for e in self.failures)


def database_file(con: duckdb.DuckDBPyConnection) -> Path:
    """The file behind a connection: whatever database the Warehouse resource hands out is the one validated."""
    return Path(con.execute(
        "select path from duckdb_databases() where database_name = current_database()").fetchone()[0])



def ensure_results_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(f"create table if not exists {RESULTS} ({', '.join(f'{c} {t}' for c, t in COLUMNS)})")
    existing = {row[0] for row in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [SCHEMA, TABLE]).fetchall()}
    for column, column_type in COLUMNS:
        if column not in existing:  # a results table of an earlier release
            con.execute(f"alter table {RESULTS} add column {column} {column_type}")
            if column == "status":
                con.execute(f"update {RESULTS} set status = case when success then '{PASSED}' else '{FAILED}' end")


def append_results(con: duckdb.DuckDBPyConnection, run: RunContext, validations: Iterable[SuiteValidation]) -> int:
    rows = [_row(run, v, e) for v in validations for e in v.expectations]
    ensure_results_table(con)
    con.executemany(f"insert into {RESULTS} ({', '.join(c for c, _ in COLUMNS)}) "
                    f"values ({', '.join('?' for _ in COLUMNS)})", rows)
    return len(rows)


def _row(run: RunContext, validation: SuiteValidation, e: ExpectationOutcome) -> tuple:
    suite = validation.suite
    return (run.run_id, run.checked_at, None if suite.schema == "raw" else run.as_of_date, suite.name,
            "/".join(suite.asset_path), e.expectation_type, e.column, _json(e.kwargs), _json(e.observed_value),
            e.unexpected_count, e.unexpected_percent, e.success, e.severity, _json(e.details), e.description,
            e.status, e.element_count)


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


def previous_row_counts(con: duckdb.DuckDBPyConnection, suites: Sequence[str], run_id: str,
                        as_of: date | None) -> dict[str, int]:
    """Each suite's row count at its latest earlier run that passed (no failed 'stop' expectation).

    With an as-of date, only runs built for that date or an earlier one count: replaying an earlier date on the same
    warehouse legitimately shrinks the marts and must not be measured against a later state."""
    if not suites or not _results_table_exists(con):
        return {}
    rows = con.execute(f"""
        with runs as (
            select suite, run_id, max(checked_at) as checked_at,
                   bool_and(success or severity = 'warn') as passed
            from {RESULTS}
            where suite in (select unnest($suites)) and run_id <> $run_id
              and ($as_of is null or as_of_date is null or as_of_date <= $as_of)
            group by suite, run_id
        )
        select r.suite, arg_max(cast(r.observed_value as bigint), runs.checked_at)
        from {RESULTS} r join runs using (suite, run_id)
        where runs.passed and r.expectation_type = '{ROW_COUNT_EXPECTATION}'
        group by r.suite
    """, {"suites": list(suites), "run_id": run_id, "as_of": as_of}).fetchall()
    return dict(rows)


def latest_results(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """Every result row of one run, as dicts, suites in name order; in a suite failures first, rules not applicable
    last."""
    cursor = con.execute(f"select * from {RESULTS} where run_id = ? order by suite, "
                         f"case status when '{FAILED}' then 0 when '{PASSED}' then 1 else 2 end, expectation_type, "
                         "column_name", [run_id])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def suite_history(con: duckdb.DuckDBPyConnection, runs: int) -> list[tuple]:
    """(run_id, checked_at, suites, expectations, failed stop, failed warn, not applicable) for the latest `runs`
    runs."""
    return con.execute(f"""
        select run_id, max(checked_at) as checked_at, count(distinct suite), count(*),
               count(*) filter (where status = '{FAILED}' and severity = 'stop'),
               count(*) filter (where status = '{FAILED}' and severity = 'warn'),
               count(*) filter (where status = '{NOT_APPLICABLE}')
        from {RESULTS} group by run_id order by checked_at desc limit ?
    """, [runs]).fetchall()


def _results_table_exists(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                       [SCHEMA, TABLE]).fetchone()[0] > 0
