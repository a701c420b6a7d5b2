"""The as-of date ("today") a dbt build resolved: the configured one, else the latest valid order date.

dbt decides it once per build (``intermediate.int_as_of``); everything after dbt reads it from there, so the marts,
the analytics, the checks and the publication all treat the same day as today."""

from __future__ import annotations

from datetime import date

import duckdb


def resolved_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The as-of date of the last dbt build in `con`'s database (None before the first one)."""
    exists = con.execute("select count(*) from information_schema.tables "
                         "where table_schema = 'intermediate' and table_name = 'int_as_of'").fetchone()[0]
    return con.execute("select as_of_date from intermediate.int_as_of").fetchone()[0] if exists else None
