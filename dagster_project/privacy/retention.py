"""Retention of the working copies of raw drops: personal values that no longer serve the warehouse are kept
`CRM_RAW_RETENTION_DAYS` (default 90) days after they were loaded, for debugging, then blanked by the next refresh.

The drop files in the exports folder are the user's and never touched. Their working copy in the working database
keeps every row the marts are built from, for as long as the warehouse exists (a delta export holds its only copy of
an old order). What ages out, once it was loaded longer ago than the retention (counted from the load, not the drop
date: a backfill of an old drop can still be debugged, and replaying an old as-of date changes nothing):
- the raw line of every row quarantined at ingestion (`raw._quarantine.raw_record`; the row number, reason and the
  detail, which never holds a personal value, stay);
- the personal columns (name, e-mail, phone, birth date, person id) and unknown extra columns of customer records
  that no longer count: versions a later drop replaced and records the models set aside. The CRM id stays, so the
  reconciliation and the choice of the current version do not change; only versions whose drop holds no other version
  of the same id are blanked, so blanking cannot make them conflict with it.
Which records no longer count comes from the audit of the last build (`audit.audit_raw_rows_classified`). The values
also leave the file's free blocks: a refresh that blanked any rebuilds the working database after publishing
(dagster_project.privacy.compaction). Each purge is logged in ``privacy.retention_log``, and the customer versions
it blanked (file, row number and load time, no value) in ``privacy.retention_blanked``: a raw suite checking every
row again (a full refresh, changed rules) leaves them out of its row-by-row rules, whose null rates would otherwise
count values the retention removed (dagster_project.quality.new_loads).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from dagster_project.contract import ENTITIES_BY_NAME
from dagster_project.privacy.tombstones import SCHEMA, clean_id
from dagster_project.sql import identifier, table_exists

LOG = f"{SCHEMA}.retention_log"
BLANKED = f"{SCHEMA}.retention_blanked"
BLANKED_CUSTOMER_COLUMNS = tuple(
    c.name for c in ENTITIES_BY_NAME["customers"].columns if c.personal and c.name != "customer_id") + ("_extra_columns",)
NO_LONGER_COUNTING = ("superseded", "quarantined")


@dataclass(frozen=True)
class Purge:
    cutoff: datetime
    quarantined_lines: int
    customer_versions: int

    @property
    def total(self) -> int:
        return self.quarantined_lines + self.customer_versions


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def purge(con: duckdb.DuckDBPyConnection, retention_days: int, run_id: str, now: datetime | None = None) -> Purge:
    """Blank what was loaded more than `retention_days` before `now` (UTC; the module's docstring) in one transaction,
    and log it."""
    cutoff = (now or _now()) - timedelta(days=retention_days)
    con.begin()
    try:
        lines = _blank_quarantined_lines(con, cutoff)
        con.execute(f"create schema if not exists {SCHEMA}")
        con.execute(f"create table if not exists {LOG} (run_id varchar, purged_at timestamp, retention_days integer, "
                    "loaded_before timestamp, quarantined_lines bigint, customer_versions bigint, "
                    "compacted_at timestamp)")
        _record_earlier_blanking(con)
        versions = _blank_customer_versions(con, cutoff, run_id)
        done = Purge(cutoff, lines, versions)
        if done.total:
            con.execute(f"insert into {LOG} values (?, ?, ?, ?, ?, ?, null)",
                        [run_id, _now(), retention_days, cutoff, lines, versions])
    except BaseException:
        con.rollback()
        raise
    con.commit()
    return done


def _blank_quarantined_lines(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> int:
    if not table_exists(con, "raw", "_quarantine"):
        return 0
    return con.execute("update raw._quarantine set raw_record = null where raw_record is not null "
                       "and quarantined_at < ?", [cutoff]).fetchone()[0]


def _blank_customer_versions(con: duckdb.DuckDBPyConnection, cutoff: datetime, run_id: str) -> int:
    if not (table_exists(con, "raw", "customers") and table_exists(con, "audit", "audit_raw_rows_classified")):
        return 0
    blank = ", ".join(f"{identifier(c)} = null" for c in BLANKED_CUSTOMER_COLUMNS)
    con.execute(f"""
        create or replace temp table aged_customer_versions as
        select c._source_file, c._row_number, c._loaded_at
        from {_NO_LONGER_COUNTING_VERSIONS}
        where c._loaded_at < $cutoff and ({_still_set("c")})
          and not exists (
              select 1 from raw.customers as o
              where {clean_id("o.customer_id")} = {clean_id("c.customer_id")} and o._drop_date = c._drop_date
                and not (o._source_file = c._source_file and o._row_number = c._row_number))
    """, {"cutoff": cutoff, "outcomes": list(NO_LONGER_COUNTING)})
    try:
        blanked = con.execute(f"update raw.customers as c set {blank} from aged_customer_versions as a "
                              "where c._source_file = a._source_file and c._row_number = a._row_number "
                              "and c._loaded_at = a._loaded_at").fetchone()[0]
        con.execute(f"insert into {BLANKED} select *, ?::varchar from aged_customer_versions", [run_id])
    finally:
        con.execute("drop table aged_customer_versions")
    return blanked


# The customer versions (alias c) the last build's audit says no longer count; $outcomes is NO_LONGER_COUNTING.
_NO_LONGER_COUNTING_VERSIONS = """raw.customers as c
        join (select _source_file, _row_number from audit.audit_raw_rows_classified
              where entity = 'customers' and list_contains($outcomes, outcome)) as aged
          on c._source_file = aged._source_file and c._row_number = aged._row_number"""


def _still_set(alias: str) -> str:
    """SQL: the customer version still holds one of the values the retention blanks."""
    return " or ".join(f"{alias}.{identifier(c)} is not null" for c in BLANKED_CUSTOMER_COLUMNS)


def _record_earlier_blanking(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``privacy.retention_blanked``. A working database purged before it existed recorded only counts: its
    blanked versions are the ones no longer counting, loaded before the last purge's cutoff, that hold none of the
    blanked values (a version delivered without any of them is taken for one; it no longer counts either)."""
    if table_exists(con, SCHEMA, "retention_blanked"):
        return
    con.execute(f"create table {BLANKED} (_source_file varchar, _row_number bigint, _loaded_at timestamp, "
                "run_id varchar)")
    if not (table_exists(con, "raw", "customers") and table_exists(con, "audit", "audit_raw_rows_classified")):
        return
    con.execute(f"""
        insert into {BLANKED}
        select c._source_file, c._row_number, c._loaded_at, null
        from {_NO_LONGER_COUNTING_VERSIONS}
        where c._loaded_at < (select max(loaded_before) from {LOG}) and not ({_still_set("c")})
    """, {"outcomes": list(NO_LONGER_COUNTING)})


def blanked_versions_condition(con: duckdb.DuckDBPyConnection) -> str | None:
    """A SQL condition on raw.customers' own columns selecting the versions the retention blanked, or None when it
    blanked none."""
    if not table_exists(con, SCHEMA, "retention_blanked") or not con.execute(
            f"select count(*) from {BLANKED}").fetchone()[0]:
        return None
    # With the load time: a file delivered again with other content is a new load, its rows numbered alike.
    return f"(_source_file, _row_number, _loaded_at) in (select _source_file, _row_number, _loaded_at from {BLANKED})"


def awaiting_compaction(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, SCHEMA, "retention_log") and con.execute(
        f"select count(*) from {LOG} where compacted_at is null").fetchone()[0] > 0


def mark_compacted(con: duckdb.DuckDBPyConnection, database: str) -> None:
    """In the rebuilt copy attached as `database`: the purges it no longer holds in free blocks."""
    if con.execute("select count(*) from duckdb_tables() where database_name = ? and schema_name = ? "
                   "and table_name = 'retention_log'", [database, SCHEMA]).fetchone()[0]:
        con.execute(f"update {identifier(database)}.{LOG} set compacted_at = ? where compacted_at is null",
                    [_now()])
