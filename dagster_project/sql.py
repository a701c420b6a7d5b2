"""SQL helpers: quoting for the few SQL texts DuckDB cannot take as bound parameters (identifiers, ATTACH and COPY
paths), whether a table exists and its columns, replacing a table in one statement, counting the rows of several
tables in one query, and an exact sum of money."""

from collections.abc import Callable, Sequence


def identifier(name: str) -> str:
    """A double-quoted SQL identifier; embedded quotes are doubled, so any name stays one identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    return ".".join(identifier(part) for part in parts)


def literal(text: str) -> str:
    """A single-quoted SQL string literal; embedded quotes are doubled. NUL cannot be represented and is refused."""
    if "\x00" in text:
        raise ValueError("a NUL character cannot appear in an SQL string")
    return "'" + text.replace("'", "''") + "'"


def table_exists(con, schema: str, table: str) -> bool:
    """Whether the DuckDB connection's own database has the table (attached databases aside)."""
    return con.execute("select count(*) from duckdb_tables() where database_name = current_database() "
                       "and schema_name = ? and table_name = ?", [schema, table]).fetchone()[0] > 0


def table_columns(con, schema: str, table: str) -> set[str]:
    """The column names of a table of the DuckDB connection's own database (none if it has no such table)."""
    return {name for (name,) in con.execute(
        "select column_name from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ?", [schema, table]).fetchall()}


def row_counts_query(tables: Sequence[tuple[str, str]], name: Callable[..., str] = qualified) -> str:
    """One query whose rows are the row count of each (schema, table), in their order; `name` quotes a table for the
    engine (DuckDB's `qualified` by default, Spark's `spark_name`)."""
    return (" union all ".join(f"select {i} as n, count(*) as c from {name(schema, table)}"
                               for i, (schema, table) in enumerate(tables)) + " order by n")


def money_sum(column: str) -> str:
    """An exact sum of cent amounts (dbt's `crm.money_sum`): a sum of doubles depends on the order a parallel
    aggregation adds them in, so the same data could give totals that differ in the last bit from one refresh to the
    next (a table published as changed, a forecast Prophet's fit moves visibly)."""
    return f"cast(sum(cast({column} as decimal(18, 2))) as double)"


def replace_table(con, schema: str, table: str, rows) -> None:
    """Replace schema.table with `rows` (a pandas frame, an Arrow table or a stream of Arrow batches) in one
    statement, so readers never see it half-written."""
    con.execute(f"create schema if not exists {qualified(schema)}")
    con.register("_rows", rows)
    try:
        con.execute(f"create or replace table {qualified(schema, table)} as select * from _rows")
    finally:
        con.unregister("_rows")
