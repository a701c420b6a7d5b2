"""Which campaigns' lift must be estimated again, and the saved estimates of the others.

A campaign's panel (campaign_lift) depends on: its window (start, length cut at as_of), the customers existing before
its start, every interaction dated before its start (the features' engagement), every order dated before its window
ends (the features' orders and the window's outcomes), and its own touches. A daily drop brings orders and
interactions of its own days, after most campaigns' windows: those campaigns' panels, and so their estimates, are the
same as yesterday's. Each campaign's inputs are fingerprinted without building its panel, from per-day sums of row
hashes (one scan of each fact table for all campaigns, prefix sums per campaign); where the fingerprint and the code
are those of the saved estimate, the saved row is used. Sums, not XOR, so that a row delivered twice does not cancel
out. A late correction of an old order, a merge of two customers (new customer keys) or an erasure changes the
fingerprints of the campaigns it concerns, which are then estimated again.

The saved estimates are aggregates per campaign (no customer appears in them), in the working database's ``meta``
schema, which is never published.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from dagster_project.sql import qualified

TABLE = ("meta", "campaign_lift_saved")

# One fingerprint per campaign of campaign_lift._CAMPAIGNS_SQL (same rows, same window).
_INPUTS_SQL = """
WITH campaigns AS ({campaigns}),
order_days AS (
    SELECT order_date AS day, sum(hash(customer_key, order_date, amount, net_amount, status, is_paid)::HUGEINT) AS h,
           count(*) AS n
    FROM marts.fct_orders WHERE order_date <= $as_of GROUP BY ALL
),
interaction_days AS (
    SELECT occurred_date AS day, sum(hash(customer_key, interaction_type, occurred_date)::HUGEINT) AS h,
           count(*) AS n
    FROM marts.fct_interactions WHERE customer_key IS NOT NULL GROUP BY ALL
),
customer_days AS (
    SELECT signup_date AS day, sum(hash(customer_key, signup_date)::HUGEINT) AS h, count(*) AS n
    FROM marts.dim_customers GROUP BY ALL
),
touches AS (
    SELECT campaign_id, sum(hash(customer_key, interaction_type, occurred_date)::HUGEINT) AS h, count(*) AS n
    FROM marts.fct_interactions
    WHERE campaign_id IS NOT NULL AND customer_key IS NOT NULL AND occurred_date <= $as_of
    GROUP BY ALL
)
SELECT c.campaign_id,
       concat_ws('|', c.start_date, c.window_days,
           (SELECT coalesce(sum(h), 0) || ':' || coalesce(sum(n), 0) FROM order_days
            WHERE day < c.start_date + c.window_days),
           (SELECT coalesce(sum(h), 0) || ':' || coalesce(sum(n), 0) FROM interaction_days WHERE day < c.start_date),
           (SELECT coalesce(sum(h), 0) || ':' || coalesce(sum(n), 0) FROM customer_days
            WHERE day IS NULL OR day < c.start_date),
           coalesce(t.h, 0) || ':' || coalesce(t.n, 0)) AS inputs
FROM campaigns AS c LEFT JOIN touches AS t USING (campaign_id)
"""


@dataclass(frozen=True)
class Saved:
    """The saved lift rows by campaign, with the inputs and code they were estimated from."""

    rows: dict[str, dict]
    inputs: dict[str, str]


def fingerprints(con: duckdb.DuckDBPyConnection, campaigns_sql: str, as_of: date,
                 attribution_days: int) -> dict[str, str]:
    """campaign_id -> a text that changes whenever the campaign's panel can (module docstring)."""
    rows = con.execute(_INPUTS_SQL.format(campaigns=campaigns_sql),
                       {"as_of": as_of, "days": int(attribution_days)}).fetchall()
    return dict(rows)


def load(con: duckdb.DuckDBPyConnection, code: str) -> Saved:
    """The saved rows estimated by this code (none after a code, library or setting change)."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                         "AND schema_name = ? AND table_name = ?", list(TABLE)).fetchone()[0]
    if not exists:
        return Saved({}, {})
    found = con.execute(f"SELECT campaign_id, inputs, lift FROM {qualified(*TABLE)} WHERE code = ?",
                        [code]).fetchall()
    return Saved({c: json.loads(lift) for c, _, lift in found}, {c: inputs for c, inputs, _ in found})


def save(con: duckdb.DuckDBPyConnection, code: str, inputs: Mapping[str, str], lift: pd.DataFrame) -> None:
    """Replace the saved rows with this refresh's, one per campaign with reach data."""
    rows = [(row["campaign_id"], inputs[row["campaign_id"]], code, json.dumps(row, default=_plain))
            for row in lift.to_dict("records") if row["campaign_id"] in inputs]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {TABLE[0]}")
    con.execute(f"CREATE OR REPLACE TABLE {qualified(*TABLE)} "
                "(campaign_id VARCHAR, inputs VARCHAR, code VARCHAR, lift VARCHAR)")
    if rows:
        con.executemany(f"INSERT INTO {qualified(*TABLE)} VALUES (?, ?, ?, ?)", rows)


def _plain(value):
    """JSON for NumPy scalars; NaN stays NaN (json writes it, and reads it back)."""
    return value.item() if hasattr(value, "item") else str(value)
