"""Rules that do not apply to this export: a rule about a column the export never had is *not applicable*, neither a
failure nor a warning (an export without a ``channel`` column does not have "mostly null channels").

What was delivered comes from the ingest log: ``raw._ingest_log.column_map`` is, per loaded file, the JSON map of the
file's header to the canonical contract column it was read as. A column is delivered when any file of its entity
mapped a header to it.

- Raw suites: a rule on a contract column of the entity that no file delivered is not applicable. Lineage columns
  (``_source_file``, ...) always exist.
- Mart suites: a rule whose ``meta.source_column`` (``"orders.channel"``) names the raw column the mart column comes
  straight from is not applicable when that raw column was never delivered.
- Type rules check the table's schema, which ingestion and dbt's contracts create whether or not a column was
  delivered: they always apply. So do table rules and rules about no column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import duckdb

from dagster_project.contract import ENTITIES_BY_NAME
from dagster_project.quality.suites import Suite, expectation_column, source_column

# Delivered canonical columns per entity; an entity absent from the map had no file loaded.
Delivered = Mapping[str, frozenset[str]]

SCHEMA_RULES = frozenset({"expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list",
                          "expect_column_to_exist"})


def delivered_columns(con: duckdb.DuckDBPyConnection) -> Delivered | None:
    """The canonical columns each entity's files delivered, from ``raw._ingest_log``; None without an ingest log
    (nothing is then known, and every rule applies)."""
    exists = con.execute("select count(*) from information_schema.columns where table_schema = 'raw' "
                         "and table_name = '_ingest_log' and column_name = 'column_map'").fetchone()[0]
    if not exists:
        return None
    delivered: dict[str, set[str]] = {}
    for entity, column_map in con.execute("select entity, column_map from raw._ingest_log").fetchall():
        columns = delivered.setdefault(entity, set())
        try:
            mapping = json.loads(column_map) if column_map else None
        except json.JSONDecodeError:
            mapping = None
        if not isinstance(mapping, dict):
            # A file logged without its column map: assume it delivered everything rather than hide a failure.
            known = ENTITIES_BY_NAME.get(entity)
            columns.update(known.column_names if known else ())
            continue
        columns.update(str(c) for c in mapping.values())
    return {entity: frozenset(columns) for entity, columns in delivered.items()}


def not_applicable_reason(suite: Suite, expectation: Mapping[str, Any], delivered: Delivered | None) -> str | None:
    """Why the expectation (as in the suite file) does not apply to this export, or None when it applies."""
    if delivered is None or expectation.get("type") in SCHEMA_RULES:
        return None
    source = source_column(expectation)
    if source is not None:
        entity, column = source
    elif suite.schema == "raw" and suite.table in ENTITIES_BY_NAME:
        entity, column = suite.table, expectation_column(expectation)
        if column not in ENTITIES_BY_NAME[entity].column_names:
            return None  # a lineage column, or no column at all
    else:
        return None
    if column in delivered.get(entity, ()):
        return None
    missing = f"no {entity} file was delivered" if entity not in delivered else f"no {entity} file delivered it"
    if suite.schema == "raw":
        return f"column {column}: {missing}"
    return f"comes from {entity}.{column}: {missing}"
