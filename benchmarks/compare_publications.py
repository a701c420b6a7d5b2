"""Compare two published warehouses table by table: the check that a refactoring changed no published number.

    python benchmarks/compare_publications.py BEFORE.duckdb AFTER.duckdb [--schemas marts,quality]

Every table of the chosen schemas is compared as a multiset of rows (``EXCEPT ALL`` both ways), money and
probabilities rounded (doubles to 6 decimals) so that a different summation order is not a difference. Rows that
still differ are paired by their other columns and their doubles compared with a relative tolerance (``--rel-tol``,
default 1e-9): DuckDB sums doubles in parallel, in an order that changes from run to run, so a sum can straddle a
rounding boundary. Columns that
record when or how fast something ran (``created_at``, ``fit_seconds``, run ids, library versions, ...) are left out.
Exits 1 and lists the differing tables, with row counts and a few example rows, when anything differs.
"""

from __future__ import annotations

import argparse
import math
import sys

import duckdb

# Columns that say when, how fast or in which run something happened: they differ between any two refreshes.
VOLATILE_COLUMNS = {
    "created_at", "fit_seconds", "run_id", "library_versions", "refreshed_at", "published_at", "loaded_at",
    "_loaded_at", "validated_at", "checked_at", "generated_at", "duration_seconds",
    "model_version",  # a saved model's folder name: the time it was saved
}

# Doubles are compared rounded to 6 decimals: two values a rounding boundary apart differ by one unit of that.
ROUNDING = 1.000001e-6


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


def _unpaired(con: duckdb.DuckDBPyConnection, left: str, right: str, columns: list[tuple[str, str]],
              rel_tol: float) -> tuple[list[tuple], list[tuple]]:
    """The differing rows of each side that no row of the other side matches within the tolerance."""
    kept = [kind for name, kind in columns if name not in VOLATILE_COLUMNS]
    doubles = [i for i, kind in enumerate(kept) if kind in ("DOUBLE", "FLOAT")]
    only_left = con.execute(f"{left} except all {right}").fetchall()
    only_right = con.execute(f"{right} except all {left}").fetchall()

    def key(row: tuple) -> tuple:
        return tuple(v for i, v in enumerate(row) if i not in doubles)

    def close(a: tuple, b: tuple) -> bool:
        return all(a[i] == b[i] or (a[i] is not None and b[i] is not None
                                    and math.isclose(a[i], b[i], rel_tol=rel_tol, abs_tol=ROUNDING)) for i in doubles)

    waiting: dict[tuple, list[tuple]] = {}
    for row in only_right:
        waiting.setdefault(key(row), []).append(row)
    unmatched_left = []
    for row in only_left:
        candidates = waiting.get(key(row), [])
        match = next((i for i, other in enumerate(candidates) if close(row, other)), None)
        if match is None:
            unmatched_left.append(row)
        else:
            candidates.pop(match)
    return unmatched_left, [row for rows in waiting.values() for row in rows]


def compare(before: str, after: str, schemas: list[str], rel_tol: float = 1e-9) -> list[str]:
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
        missing, extra = _unpaired(con, left, right, columns_old, rel_tol)
        if missing or extra:
            problems.append(f"{schema}.{table}: {len(missing)} rows only before, {len(extra)} only after; "
                            f"e.g. before {missing[:2]}, after {extra[:2]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--schemas", default="marts,analytics,quality",
                        help="comma-separated schemas to compare (default: marts,analytics,quality)")
    parser.add_argument("--rel-tol", type=float, default=1e-9,
                        help="relative tolerance of doubles in rows that differ after rounding (default 1e-9)")
    args = parser.parse_args(argv)
    problems = compare(args.before, args.after, args.schemas.split(","), args.rel_tol)
    for line in problems:
        print(line)
    print("identical" if not problems else f"{len(problems)} tables differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
