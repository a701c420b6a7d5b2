"""The ``raw`` schema ingestion writes: one table per contract entity (every value as text, plus lineage columns),
the ingest log (one row per file loaded) and the quarantine (rows set aside, with the reason)."""

from __future__ import annotations

import duckdb

from dagster_project.contract import ENTITIES, LINEAGE_COLUMNS, Entity
from dagster_project.sql import identifier

RAW_SCHEMA = "raw"

LINEAGE_TYPES = {
    "_source_file": "VARCHAR",
    "_drop_date": "DATE",
    "_row_number": "BIGINT",
    "_loaded_at": "TIMESTAMP",
    "_extra_columns": "VARCHAR",
}
INGEST_LOG_COLUMNS = (
    ("source_file", "VARCHAR"),
    ("entity", "VARCHAR"),
    ("drop_date", "DATE"),
    ("content_sha256", "VARCHAR"),
    ("size_bytes", "BIGINT"),
    ("encoding", "VARCHAR"),
    ("delimiter", "VARCHAR"),
    ("header", "VARCHAR"),
    ("column_map", "VARCHAR"),
    ("extra_columns", "VARCHAR"),
    ("rows_read", "BIGINT"),
    ("rows_loaded", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("loaded_at", "TIMESTAMP"),
    ("dropped_as", "VARCHAR"),  # the entity the file's name says; `entity` is where its rows went (by grain)
    ("date_formats", "VARCHAR"),  # JSON: date column -> how it was read and the value that decided it
    ("decimal_mark", "VARCHAR"),
    ("mapping_sha256", "VARCHAR"),  # the mapping file's section for this file when it was loaded
    # The file on disk when its content was last hashed (files.file_identity): a refresh that finds it unchanged
    # skips the file without reading it again.
    ("file_identity", "VARCHAR"),
    # True when the file has amounts and nothing names their currency (no currency column, no mapping currency, no
    # symbol or code in any amount): they are in the default currency only if a setting says so.
    ("amounts_without_currency", "BOOLEAN"),
)
# Ingest-log columns that only a load fills: when an older warehouse gains one, every file it holds is loaded again
# at the next refresh (its mapping fingerprint forgotten), rather than left unjudged.
FILLED_BY_A_LOAD = ("amounts_without_currency",)
QUARANTINE_COLUMNS = (
    ("entity", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("drop_date", "DATE"),
    ("row_number", "BIGINT"),
    ("reason", "VARCHAR"),
    ("raw_record", "VARCHAR"),
    ("quarantined_at", "TIMESTAMP"),
    ("detail", "VARCHAR"),  # the column and, for a non-personal column, the value: safe to show
)
# The quarantine's columns, as an insert of rejected lines fills them.
QUARANTINE_INSERT = "(entity, source_file, drop_date, row_number, reason, raw_record, quarantined_at, detail)"


def raw_table(name: str) -> str:
    """The quoted name of a table of the raw schema."""
    return f"{identifier(RAW_SCHEMA)}.{identifier(name)}"


def _raw_columns(entity: Entity) -> list[tuple[str, str]]:
    return [(c, "VARCHAR") for c in entity.column_names] + [(c, LINEAGE_TYPES[c]) for c in LINEAGE_COLUMNS]


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema raw, one table per entity, the ingest log and the quarantine; add columns the contract gained.

    Only missing objects are created, so calling it again issues no DDL (and so no catalog conflicts).
    """
    existing: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = $schema",
        {"schema": RAW_SCHEMA},
    ).fetchall():
        existing.setdefault(table, set()).add(column)
    if not existing:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {identifier(RAW_SCHEMA)}")
    wanted = {e.name: _raw_columns(e) for e in ENTITIES}
    wanted["_ingest_log"] = list(INGEST_LOG_COLUMNS)
    wanted["_quarantine"] = list(QUARANTINE_COLUMNS)
    for table, columns in wanted.items():
        if table not in existing:
            con.execute(f"CREATE TABLE {raw_table(table)} ({', '.join(f'{identifier(c)} {t}' for c, t in columns)})")
            continue
        for column, sql_type in columns:
            if column not in existing[table]:
                con.execute(f"ALTER TABLE {raw_table(table)} ADD COLUMN {identifier(column)} {sql_type}")
                if table == "_ingest_log" and column in FILLED_BY_A_LOAD:
                    con.execute(f"UPDATE {raw_table(table)} SET mapping_sha256 = NULL")
