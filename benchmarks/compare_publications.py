"""Compare two published warehouses table by table: the check that a refactoring changed no published number.

    python benchmarks/compare_publications.py BEFORE.duckdb AFTER.duckdb [--schemas marts,quality]

Every table of the chosen schemas is compared as a multiset of rows (``EXCEPT ALL`` both ways), money and
probabilities rounded (doubles to 6 decimals) so that a different summation order is not a difference. Columns that
record when or how fast something ran (``created_at``, ``fit_seconds``, run ids, library versions, ...) are left out.
Exits 1 and lists the differing tables, with row counts and a few example rows, when anything differs.
"""

from __future__ import annotations

import argparse
import sys

import duckdb

# Columns that say when, how fast or in which run something happened: they differ between any two refreshes.
VOLATILE_COLUMNS = {
    "created_at", "fit_seconds", "run_id", "library_versions", "refreshed_at", "published_at", "loaded_at",
    "_loaded_at", "validated_at", "checked_at", "generated_at", "duration_seconds",
}


def tables(con: duckdb.DuckDBPyConnection, database: str, schemas: list[str]) -> set[tuple[str, str]]:
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ? and list_contains(?, schema_name)",
        [database, schemas]).fetchall()
    return set(rows)


def _columns(con: duckdb.DuckDBPyConnection, database: str, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = ? and schema_name = ? "
        "and table_name = ? order by column_index", [database, schema, table]).fetchall()


def _select(database: str, schema: str, table: str, columns: list[tuple[str, str]]) -> str:
    expressions = [f'round("{name}", 6)' if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
                   for name, kind in columns if name not in VOLATILE_COLUMNS]
    return f'select {", ".join(expressions)} from "{database}"."{schema}"."{table}"'


def compare(before: str, after: str, schemas: list[str]) -> list[str]:
    """The differences, one line each (empty: the publications are identical)."""
    con = duckdb.connect()
    con.execute(f"attach '{before}' as before (read_only)")
    con.execute(f"attach '{after}' as after (read_only)")
    problems = []
    old, new = tables(con, "before", schemas), tables(con, "after", schemas)
    problems += [f"{s}.{t}: only in {before}" for s, t in sorted(old - new)]
    problems += [f"{s}.{t}: only in {after}" for s, t in sorted(new - old)]
    for schema, table in sorted(old & new):
        columns_old = _columns(con, "before", schema, table)
        columns_new = _columns(con, "after", schema, table)
        if columns_old != columns_new:
            problems.append(f"{schema}.{table}: columns differ: {columns_old} vs {columns_new}")
            continue
        left, right = _select("before", schema, table, columns_old), _select("after", schema, table, columns_new)
        missing = con.execute(f"select count(*) from ({left} except all {right})").fetchone()[0]
        extra = con.execute(f"select count(*) from ({right} except all {left})").fetchone()[0]
        if missing or extra:
            example = con.execute(f"{left} except all {right} limit 3").fetchall()
            problems.append(f"{schema}.{table}: {missing} rows only before, {extra} only after; e.g. {example}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--schemas", default="marts,analytics,quality",
                        help="comma-separated schemas to compare (default: marts,analytics,quality)")
    args = parser.parse_args(argv)
    problems = compare(args.before, args.after, args.schemas.split(","))
    for line in problems:
        print(line)
    print("identical" if not problems else f"{len(problems)} tables differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
