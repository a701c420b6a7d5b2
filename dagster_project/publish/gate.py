"""Whether a refresh's marts are fit to publish: never publish a number we cannot stand behind.

Two rules, checked after dbt and before anything downstream (analytics, report, publication) runs:
- some paid order must land: a warehouse without one is an export that was misread (dates, columns, delimiter),
  not a business with no sales;
- no export file may lose more than a set share of its rows to the quarantine (default 5%): a file that mostly fails
  is misread, and what landed of it would be a biased sample. Rows of people erased on request do not count. A file
  a publication went out with (let through once with a higher share) is judged again only when it lost more rows
  since: the working copy keeps every load, so a file that stopped one refresh would otherwise stop every later one.
  The quarantine each file was published with is recorded in ``meta.published_quarantine``.
Each problem is one line naming the file, the share and the top reasons, each with an example: the detail the
quarantine recorded or the raw value of the column the reason names, never a value of a personal column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from dagster_project.contract import ENTITIES_BY_NAME
from dagster_project.privacy.tombstones import ERASED
from dagster_project.sql import identifier, qualified, table_exists

# Reasons shown per file.
TOP_REASONS = 3
_REASON_COLUMN = re.compile(
    r"^(?:missing|unparseable|negative|non-numeric|non-positive|unknown) (\w+)|^(\w+) (?:after|before|above|not) ")


@dataclass(frozen=True)
class FileShare:
    source_file: str
    entity: str
    rows_read: int
    rows_quarantined: int

    @property
    def share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


def publication_problems(con: duckdb.DuckDBPyConnection, max_quarantine_share: float,
                         skipped: Sequence[str] = ()) -> list[str]:
    """One line per reason not to publish; empty when the marts may be published. `skipped`: what ingestion left
    unread (the exports folder's warnings), named when no order was read: the orders may be in a file among them."""
    problems = [_describe_file(con, f, max_quarantine_share) for f in _files_over(con, max_quarantine_share)]
    (paid,) = con.execute("select count(*) from marts.fct_orders where is_paid").fetchone()
    if paid == 0:
        (orders_read,) = con.execute(
            "select coalesce(sum(rows_read), 0) from marts.fct_reconciliation where entity in ('orders', 'order_items')"
        ).fetchone()
        unread = f"; not read: {'; '.join(skipped)}" if skipped and not orders_read else ""
        problems.append(f"no paid order would be published ({orders_read:,} order and order-line rows read): the "
                        "export was misread or holds no sales; fix the export or mapping.yml and refresh again"
                        + unread)
    return problems


PUBLISHED_QUARANTINE = ("meta", "published_quarantine")

# Each file's rows read and quarantined; rows of people erased on request are quarantined as "erased": not a misread
# file.
_FILE_QUARANTINE = (
    "select source_file, entity, rows_read, rows_quarantined - coalesce(erased, 0) as quarantined "
    "from marts.fct_reconciliation left join (select source_file, count(*) as erased from "
    "marts.fct_quarantined_rows where reason = $erased group by source_file) using (source_file)")


def _files_over(con: duckdb.DuckDBPyConnection, max_share: float) -> list[FileShare]:
    accepted = ""
    if table_exists(con, *PUBLISHED_QUARANTINE):
        accepted = (f"and not exists (select 1 from {qualified(*PUBLISHED_QUARANTINE)} as p "
                    "where p.source_file = f.source_file and p.rows_read = f.rows_read "
                    "and f.quarantined <= p.rows_quarantined)")
    rows = con.execute(
        f"select * from ({_FILE_QUARANTINE}) as f where rows_read > 0 and quarantined > rows_read * $share {accepted} "
        "order by quarantined / rows_read desc, source_file",
        {"share": max_share, "erased": ERASED},
    ).fetchall()
    return [FileShare(*row) for row in rows]


def record_published_quarantine(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """After run `run_id` published: each file's rows read and quarantined as they went out."""
    con.execute("create schema if not exists meta")
    con.execute(f"create or replace table {qualified(*PUBLISHED_QUARANTINE)} as "
                f"select source_file, rows_read, quarantined as rows_quarantined, $run_id as run_id "
                f"from ({_FILE_QUARANTINE})", {"erased": ERASED, "run_id": run_id})


def _describe_file(con: duckdb.DuckDBPyConnection, file: FileShare, max_share: float) -> str:
    reasons = con.execute(
        "select reason, count(*) as n, arg_min(row_number, row_number), arg_min(detail, row_number) "
        "from marts.fct_quarantined_rows where source_file = $f and reason <> $erased group by reason "
        "order by n desc, reason limit $k",
        {"f": file.source_file, "k": TOP_REASONS, "erased": ERASED},
    ).fetchall()
    shown = "; ".join(
        f"{reason} {n:,} (e.g. {_example(con, file, reason, row_number, detail)})"
        for reason, n, row_number, detail in reasons
    )
    # A share just above the limit must not read as the limit itself (5.1% is not "5% (limit 5%)").
    share = f"{file.share:.0%}" if round(file.share, 2) != round(max_share, 2) else f"{file.share:.1%}"
    return (f"{file.source_file}: {share} of {file.rows_read:,} rows quarantined (limit {max_share:.0%}, "
            f"CRM_MAX_QUARANTINE_SHARE): {shown}")


def _distinct_values(con: duckdb.DuckDBPyConnection, file: FileShare, column: str) -> str:
    """The distinct values of the file's rows quarantined for an unknown value of `column`, the first ten."""
    values = [value for (value,) in con.execute(
        f"select distinct r.{identifier(column)} from {qualified('raw', file.entity)} as r "
        "join marts.fct_quarantined_rows as q on q.source_file = r._source_file and q.row_number = r._row_number "
        f"where r._source_file = $f and q.reason = 'unknown {column}' order by 1 limit 11",
        {"f": file.source_file}).fetchall()]
    more = ", ..." if len(values) > 10 else ""
    return "values " + ", ".join(repr(v) for v in values[:10]) + more


def _example(con: duckdb.DuckDBPyConnection, file: FileShare, reason: str, row_number: int, detail: str | None) -> str:
    """An example of a reason: the quarantine's detail, else the raw value of the column the reason names (withheld
    for personal columns), else the row number."""
    if detail:
        return f"row {row_number}: {detail}"
    if reason == "guest customer_id":
        return (f"row {row_number}: customer id 0, as shop systems (WooCommerce) write a guest's; map a column naming "
                f"the buyer (e.g. Billing Email) as customer_id in mapping.yml")
    match = _REASON_COLUMN.match(reason)
    entity = ENTITIES_BY_NAME.get(file.entity)
    column = next((c for c in entity.columns if match and c.name in match.groups()), None) if entity else None
    if column is None:
        return f"row {row_number}"
    value = con.execute(
        f"select {identifier(column.name)} from {qualified('raw', entity.name)} "
        "where _source_file = $f and _row_number = $r",
        {"f": file.source_file, "r": row_number},
    ).fetchone()
    if value is None or value[0] is None:
        return f"row {row_number}, {column.name} empty"  # a blank row, a total row: nothing personal to withhold
    if column.personal:
        return f"row {row_number}, {column.name}: personal column, value withheld"
    hint = ""
    if reason in ("unknown status", "unknown stage"):  # every value, not one: a shop system has a handful
        hint = f"; {_distinct_values(con, file, column.name)}; map such values with status_values in mapping.yml"
    elif reason.startswith("unparseable") and column.kind == "date":
        hint = (f"; if the file writes its dates so, set date_format for {file.entity} in mapping.yml (e.g. "
                f"\"%b-%d-%y\" for Mar-01-24)")
    return f"row {row_number}, {column.name} = {value[0]!r}{hint}"
