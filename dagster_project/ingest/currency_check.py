"""Which loaded files' amounts name no currency, for the ingest asset to stop on while no setting names one.

A file is judged as it loads (file_load: the ingest log's amounts_without_currency). Order lines that carry neither
their order's customer nor its date are not judged there: they complete the orders of another file, which may not be
loaded yet, and are priced in those orders' currency. Unless those orders have no amount of their own (a
marketplace's orders file, Olist's: no amount, no currency): then the lines' sum is the order's amount, in the lines'
currency, and lines that name none were published as the default currency's without a word. Once every entity is
loaded, `lines_pricing_orders_without_currency` finds such lines.
"""

from __future__ import annotations

import json
import duckdb

from dagster_project.contract import ENTITIES_BY_NAME
from dagster_project.ingest.file_load import CURRENCY_IN_AMOUNT
from dagster_project.ingest.raw_schema import raw_table
from dagster_project.sql import identifier


def files_without_currency(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The loaded files whose amounts name no currency (the ingest log's amounts_without_currency)."""
    return [name for (name,) in con.execute(
        f"SELECT source_file FROM {raw_table('_ingest_log')} WHERE amounts_without_currency ORDER BY source_file")
        .fetchall()]


def lines_pricing_orders_without_currency(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The loaded order-line files that price orders without an amount of their own and name no currency: no
    currency column, none in their mapping section, no symbol or code in any amount."""
    silent = []
    for source_file, column_map in con.execute(
            f"SELECT source_file, column_map FROM {raw_table('_ingest_log')} "
            "WHERE entity = 'order_items' AND NOT coalesce(amounts_without_currency, false)").fetchall():
        if "currency" not in json.loads(column_map or "{}").values():
            silent.append(source_file)
    # Most orders files have amounts: one column's count, before any join of the lines. Only the lines of orders without
    # an amount are then read, and only their amounts are searched for a symbol or code.
    if not silent or not con.execute(f"SELECT count(*) FROM {raw_table('orders')} WHERE amount IS NULL").fetchone()[0]:
        return []
    amounts = [c.name for c in ENTITIES_BY_NAME["order_items"].columns if c.kind == "amount"]
    named = " OR ".join(f"regexp_matches({identifier(c)}, $mark, 'i')" for c in amounts)
    priced = " OR ".join(f"{identifier(c)} IS NOT NULL" for c in amounts)
    return [name for (name,) in con.execute(f"""
        WITH without_amount AS (
            SELECT order_id FROM {raw_table('orders')}
            WHERE order_id IN (SELECT order_id FROM {raw_table('orders')} WHERE amount IS NULL)
            GROUP BY order_id HAVING count(amount) = 0
        )
        SELECT _source_file FROM {raw_table('order_items')}
        WHERE _source_file IN (SELECT unnest($silent)) AND currency IS NULL
            AND order_id IN (SELECT order_id FROM without_amount) AND ({priced})
        GROUP BY _source_file HAVING count(*) FILTER (WHERE {named}) = 0
        ORDER BY _source_file
    """, {"silent": silent, "mark": CURRENCY_IN_AMOUNT}).fetchall()]
