"""Churn features and labels at any cutoff: the customer measures as of the cutoff (``customer_measures``, the
definition customer_360 shows at the as-of date) with the cutoff as a bound parameter, so one query serves training
(past cutoffs), evaluation and scoring (the as-of date) and past cutoffs are replays.

Order status as of the cutoff: ``marts.fct_orders`` holds each order's latest status and not when it changed, so a
cancellation or refund is counted from ``status_settle_days`` after the order date; until then the order counts as
the paid order it was when placed. At a past cutoff this keeps a later cancellation of a recent order from leaking
into the features; applied at the as-of date too, it keeps scoring features distributed like training ones. What
remains unknowable without a status history: a status that changed more than ``status_settle_days`` after the order
is read as if known from then on.
"""

from __future__ import annotations

import math
from datetime import date

import duckdb
import pandas as pd

from dagster_project.analytics import customer_measures

CATEGORICAL_FEATURES = ("age_band", "region", "gender", "acquisition_channel")
STATUS_SETTLE_DAYS = 30  # a typical return window: cancellations and refunds are known this long after an order

# The churn features, in the order the models were tuned with (LightGBM's results depend on the column order): the
# customer measures as of the cutoff (customer_measures) and the customer's demographics.
ORDER_FEATURES = (
    "recency_days", "orders_count", "purchase_days", "revenue", "avg_order_value", "tenure_days",
    "avg_days_between_orders", "orders_30d", "orders_90d", "orders_365d", "revenue_30d", "revenue_90d",
    "revenue_365d", "orders_trend_90d", "revenue_trend_90d", "cancelled_orders", "refunded_orders",
)
ENGAGEMENT_FEATURES = (
    "email_opens_30d", "email_opens_90d", "email_opens_trend_90d", "email_opens_365d", "email_clicks_30d",
    "email_clicks_90d", "emails_sent_90d", "emails_sent_365d", "web_visits_30d", "web_visits_90d", "web_visits_365d",
    "calls_30d", "calls_90d", "chats_30d", "chats_90d", "email_open_rate_90d", "email_open_rate_365d",
    "days_since_last_interaction", "days_since_last_web_visit",
)
SERVICE_FEATURES = ("tickets_90d", "tickets_365d", "open_tickets", "avg_satisfaction_365d", "last_nps")

# Customers with a paid order on or before the cutoff, sampled by a seeded hash of the key when $keep < 10,000.
_MEASURES = "{macro}($cutoff::DATE, settle_days := $settle_days::INTEGER, sample_keep := $keep, sample_seed := $seed)"

FEATURES = ORDER_FEATURES + ENGAGEMENT_FEATURES + SERVICE_FEATURES + CATEGORICAL_FEATURES


def _features_sql(columns: tuple[str, ...]) -> str:
    """The query of ``columns`` (features; the measures come first, then the demographics): DuckDB computes only the
    measures it selects, so a caller that needs a few features pays for those only."""
    unknown = sorted(set(columns) - set(FEATURES))
    if unknown:
        raise ValueError(f"not churn features: {unknown}")
    measures = ", ".join(f"m.{column}" for column in columns if column not in CATEGORICAL_FEATURES)
    demographics = ", ".join(f"coalesce(d.{column}, 'unknown') AS {column}" for column in columns
                             if column in CATEGORICAL_FEATURES)
    selected = ",\n    ".join(part for part in ("m.customer_key", measures, demographics) if part)
    join = "LEFT JOIN marts.dim_customers AS d USING (customer_key)\n" if demographics else ""
    return f"""
SELECT
    {selected}
FROM {_MEASURES.format(macro=customer_measures.MEASURES)} AS m
{join}WHERE m.orders_count > 0
ORDER BY customer_key
"""


# Every feature's query: the definition the saved churn and health models are identified by (churn_cadence,
# health_cadence). With all of FEATURES the text is byte for byte the query before subsets existed, so an upgrade
# refits nothing (tests/test_churn.py pins it).
_FEATURES_SQL = _features_sql(FEATURES)

# The outcome reads today's status: by the as-of date the window's orders have had time to settle.
_LABELS_SQL = f"""
WITH population AS (
    SELECT DISTINCT customer_key FROM {_MEASURES.format(macro=customer_measures.ORDERS)} WHERE paid
)
SELECT
    p.customer_key,
    NOT coalesce(bool_or(o.is_paid), false) AS churned
FROM population AS p
LEFT JOIN marts.fct_orders AS o
    ON o.customer_key = p.customer_key
    AND o.order_date > $cutoff::DATE AND o.order_date <= $cutoff::DATE + $horizon_days::INTEGER
GROUP BY p.customer_key
ORDER BY customer_key
"""

# Customers with a paid order on or before each cutoff: sizes the per-cutoff samples.
POPULATION_SQL = """
SELECT cutoff, count(*) AS customers
FROM (SELECT min(order_date) AS first_paid FROM marts.fct_orders WHERE is_paid GROUP BY customer_key)
JOIN unnest($cutoffs::DATE[]) AS t(cutoff) ON first_paid <= cutoff
GROUP BY cutoff
"""


def _params(cutoff: date, customer_share: float, seed: int, settle_days: int) -> dict:
    keep = math.ceil(min(max(customer_share, 0.0), 1.0) * 10_000)
    return {"cutoff": cutoff, "keep": keep, "seed": seed, "settle_days": settle_days}


def churn_features(con: duckdb.DuckDBPyConnection, cutoff: date, *, customer_share: float = 1.0, seed: int = 0,
                   settle_days: int = STATUS_SETTLE_DAYS, columns: tuple[str, ...] = FEATURES) -> pd.DataFrame:
    """Features as of ``cutoff`` for every customer with a paid order on or before it, indexed by customer_key: all
    of them (``FEATURES``), or only ``columns``.

    ``customer_share`` < 1 keeps that share of customers (a seeded hash of the key, the same customers for every
    cutoff and for ``churn_labels``).
    """
    columns = tuple(columns)
    frame = con.execute(_features_sql(columns), _params(cutoff, customer_share, seed, settle_days)).df()
    frame = frame.set_index("customer_key")
    for column in CATEGORICAL_FEATURES:
        if column in frame:
            frame[column] = frame[column].astype("category")
    if tuple(frame.columns) != columns:
        frame = frame[list(columns)]
    return frame


def churn_labels(con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int = 90, *,
                 customer_share: float = 1.0, seed: int = 0, settle_days: int = STATUS_SETTLE_DAYS) -> pd.Series:
    """1 if a customer with a paid order on or before ``cutoff`` has none in (cutoff, cutoff + horizon], else 0
    (same customers as ``churn_features``)."""
    params = {**_params(cutoff, customer_share, seed, settle_days), "horizon_days": horizon_days}
    frame = con.execute(_LABELS_SQL, params).df()
    return frame.set_index("customer_key")["churned"].astype(int)
