"""Great Expectations against the DuckDB warehouse, through GE's SQL execution engine (SQLAlchemy + duckdb-engine).

Every metric is a SQL query DuckDB answers where the data is; no table is copied into pandas. One ephemeral GE
context (in memory, no files, no network), one SQL data source, one batch per suite's table.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from sqlalchemy.dialects import registry

from dagster_project.quality.applicability import Delivered, not_applicable_reason
from dagster_project.quality.messages import redact_observed, redact_rows, redact_values
from dagster_project.quality.results import ExpectationOutcome, SuiteValidation
from dagster_project.quality.suites import SQL_RULE as SQL_EXPECTATION
from dagster_project.quality.suites import Suite, SuiteError, checks_rows, expectation_column
from dagster_project.sql import qualified

# GE knows no DuckDB type module and logs so for every type expectation; it then compares with SQLAlchemy's own
# types, which is what the dialect below reflects DuckDB's columns as.
logging.getLogger("great_expectations.expectations.type_comparison").setLevel(logging.ERROR)

# Unexpected values kept per column expectation (in quality_results.details and the report).
PARTIAL_UNEXPECTED = 10


class ValidationDuckDBDialect(DuckDBDialect):
    """duckdb-engine fitted to what GE needs for read-only validation.

    - No SQLAlchemy BEGIN / COMMIT / ROLLBACK: duckdb-engine runs them on the DuckDB connection that holds a query's
      pending result, and DuckDB drops the pending rows on the next statement. GE fetches a metric's rows after
      handing the connection back to the pool, which rolls back first, so every metric came back empty
      (great_expectations#11579, duckdb_engine#734). Reads need no more than DuckDB's per-statement autocommit.
    - Columns reflected from DuckDB's information_schema, under DuckDB's own type names: duckdb-engine goes through
      its emulation of PostgreSQL's catalog, which queries the catalog once per table and fails under SQLAlchemy 2.1
      (no pg_collation). There are no primary keys to reflect (GE only records them).
    """

    supports_statement_cache = False

    def do_begin(self, dbapi_connection) -> None:
        pass

    def do_commit(self, dbapi_connection) -> None:
        pass

    def do_rollback(self, dbapi_connection) -> None:
        pass

    def get_pk_constraint(self, connection, table_name, schema=None, **kw) -> dict:
        return {"constrained_columns": [], "name": None}

    def get_columns(self, connection, table_name, schema=None, **kw) -> list[dict]:
        rows = connection.execute(sa.text(
            "select column_name, data_type, is_nullable = 'YES' from information_schema.columns "
            "where table_catalog = current_database() and table_schema = :schema and table_name = :table "
            "order by ordinal_position"), {"schema": schema or "main", "table": str(table_name)}).fetchall()
        if not rows:
            raise sa.exc.NoSuchTableError(f"{schema}.{table_name}")
        return [{"name": name, "type": duckdb_type(data_type), "nullable": nullable, "default": None}
                for name, data_type, nullable in rows]


# DuckDB's type names -> the SQLAlchemy types of the same name, which GE's type expectations compare with
# (`"type_": "DOUBLE"` matches a DOUBLE column). Types not listed reflect as NullType and match no name.
DUCKDB_TYPES = {
    "VARCHAR": sa.VARCHAR, "BOOLEAN": sa.BOOLEAN, "DATE": sa.DATE, "TIME": sa.TIME, "TIMESTAMP": sa.TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": sa.TIMESTAMP, "SMALLINT": sa.SMALLINT, "INTEGER": sa.INTEGER, "BIGINT": sa.BIGINT,
    "FLOAT": sa.FLOAT, "DOUBLE": sa.DOUBLE, "DECIMAL": sa.DECIMAL, "JSON": sa.JSON, "BLOB": sa.BLOB,
}


def duckdb_type(name: str) -> sa.types.TypeEngine:
    return DUCKDB_TYPES.get(name.split("(")[0].strip(), sa.types.NullType)()


registry.register("duckdb.validation", __name__, ValidationDuckDBDialect.__name__)


def _release_duckdb_type_constants() -> None:
    """With Great Expectations and duckdb-engine both imported, the interpreter tears DuckDB's extension down
    before the modules holding its type constants (duckdb.sqltypes.BIGINT, ...), and nanobind then prints a
    harmless but alarming 'leaked instances' report to stderr at exit: after every refresh, and under the
    one-line error of a failed one. Dropping those module references at exit lets them go first."""
    for module in ("duckdb.value.constant", "duckdb.sqltypes", "_duckdb._sqltypes"):
        namespace = getattr(sys.modules.get(module), "__dict__", {})
        for name in [name for name, value in namespace.items() if isinstance(value, duckdb.sqltypes.DuckDBPyType)]:
            del namespace[name]


atexit.register(_release_duckdb_type_constants)


def validate(database: Path, suites: Sequence[Suite], parameters: Mapping[str, Mapping[str, Any]],
             delivered: Delivered | None = None, row_filters: Mapping[str, str] | None = None) -> list[SuiteValidation]:
    """Validate each suite against its table in the DuckDB file `database`; `parameters[suite.name]` fills the
    suite's parameters (the row-count bounds). Rules on columns the export never `delivered` are not run: their
    outcome says they are not applicable (dagster_project.quality.applicability). With `row_filters[suite.name]` (a
    SQL condition), the suite's row-by-row rules check only the rows it selects (dagster_project.quality.new_loads);
    its rules on the whole table still read every row."""
    context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    ))
    # The path goes to DuckDB as an argument, not inside the URL, where a '?' or '#' in a file name would be read as
    # URL syntax. Read-only: validation never writes.
    source = context.data_sources.add_sql(
        name="warehouse", connection_string="duckdb+validation:///", create_temp_table=False,
        kwargs={"connect_args": {"database": str(database), "config": {"access_mode": "read_only"}}})
    try:
        return [_validate_suite(source, suite, parameters.get(suite.name, {}), delivered,
                                (row_filters or {}).get(suite.name)) for suite in suites]
    finally:
        # Close DuckDB's file before the caller reopens it to store the results (DuckDB refuses a second connection
        # to a file with another configuration in the same process). The execution engine has its own SQLAlchemy
        # engine besides the data source's.
        source.get_execution_engine().close()
        source.get_engine().dispose()


def _validate_suite(source, suite: Suite, parameters: Mapping[str, Any], delivered: Delivered | None,
                    row_filter: str | None) -> SuiteValidation:
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # GE 1.14+ deprecates schema_name in favour of a schema in the connection configuration, which the
            # generic SQL data source has no field for; one data source reads tables of several schemas anyway.
            warnings.filterwarnings("ignore", message="`schema_name` is deprecated", category=DeprecationWarning)
            asset = source.add_table_asset(name=suite.name, table_name=suite.table, schema_name=suite.schema)
        batch = asset.add_batch_definition_whole_table("whole table").get_batch()
        rows_batch = batch
        if row_filter is not None:
            query = f"select * from {qualified(suite.schema, suite.table)} where {row_filter}"
            rows_batch = source.add_query_asset(name=f"{suite.name} rows", query=query) \
                .add_batch_definition_whole_table("rows").get_batch()
    except Exception as error:  # GE wraps a missing table in several exception types
        raise SuiteError(f"suite {suite.name}: cannot read table {suite.relation}: {error}") from error
    expectations, outcomes = [], []
    for expectation in suite.document.get("expectations", []):
        reason = not_applicable_reason(suite, expectation, delivered)
        if reason:
            outcomes.append(_not_applicable(suite, expectation, reason))
        else:
            expectations.append(expectation)
    by_batch = [(batch, expectations)] if row_filter is None else [
        (batch, [e for e in expectations if not checks_rows(e)]),
        (rows_batch, [e for e in expectations if checks_rows(e)]),
    ]
    # Column and table expectations: counts plus a few unexpected values (COMPLETE would fetch every one).
    # SQL expectations: the offending rows, which GE has fetched anyway (up to 200) to count them.
    for part_batch, batch_expectations in by_batch:
        for result_format, sql in (("BASIC", False), ("COMPLETE", True)):
            part_expectations = [e for e in batch_expectations if (e.get("type") == SQL_EXPECTATION) == sql]
            if not part_expectations:
                continue
            part = gx.ExpectationSuite(**{**suite.document, "expectations": part_expectations})
            result = part_batch.validate(part, expectation_parameters=dict(parameters),
                                         result_format={"result_format": result_format,
                                                        "partial_unexpected_count": PARTIAL_UNEXPECTED})
            outcomes += [_outcome(suite, r) for r in result.results]
    return SuiteValidation(suite=suite, expectations=outcomes, seconds=time.perf_counter() - started)


def _outcome(suite: Suite, result) -> ExpectationOutcome:
    """One GE result as we keep it. The counts and the sample are GE's (`unexpected_count`, `element_count`,
    `partial_unexpected_list`, the rows of an unexpected_rows_expectation); values of personal columns are withheld
    here, before anything stores or shows them."""
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "result_format"}}
    column = (kwargs.get("column") or ", ".join(kwargs.get("column_list") or [])
              or (config.meta or {}).get("column") or None)
    found = result.result or {}
    ge_details = found.get("details") or {}
    values = found.get("partial_unexpected_list")
    details: Any = redact_values(column, values) if values else redact_rows(ge_details.get("unexpected_rows"))
    if not any(value is not None for value in details or []):
        details = None  # nothing unexpected, or only nulls (a null-rate expectation): nothing worth showing
    if details is None and ge_details.get("mismatched"):
        details = {"mismatched": ge_details["mismatched"]}  # a column set: the columns unexpected and missing
    error = _error_message(result.exception_info or {})
    return ExpectationOutcome(
        expectation_type=config.type,
        column=column,
        kwargs=_plain(kwargs),
        observed_value=_plain(redact_observed(column, found.get("observed_value"))),
        unexpected_count=found.get("unexpected_count"),
        unexpected_percent=found.get("unexpected_percent"),
        success=bool(result.success),
        severity=suite.on_failure_of(config.meta),
        details={"error": error} if error else _plain(details),
        description=config.description,
        element_count=found.get("element_count"),
    )


def _not_applicable(suite: Suite, expectation: Mapping[str, Any], reason: str) -> ExpectationOutcome:
    """A rule not run because the export never delivered its column."""
    return ExpectationOutcome(
        expectation_type=expectation.get("type"),
        column=expectation_column(expectation),
        kwargs=_plain(dict(expectation.get("kwargs") or {})),
        observed_value=None,
        unexpected_count=None,
        unexpected_percent=None,
        success=None,
        severity=suite.on_failure_of(expectation.get("meta")),
        details={"not_applicable": reason},
        description=expectation.get("description"),
        not_applicable=reason,
    )


def _error_message(info: Mapping[str, Any]) -> str | None:
    """The message of an error GE met computing an expectation (a missing column, a failing query), if any: flat
    for the expectation itself, or keyed by metric for a metric it needed."""
    if info.get("raised_exception"):
        return info.get("exception_message")
    return next((v.get("exception_message") for v in info.values()
                 if isinstance(v, dict) and v.get("raised_exception")), None)


def _plain(value: Any) -> Any:
    """JSON-safe: dates and decimals in GE results become strings."""
    return json.loads(json.dumps(value, default=str))
