"""Churn features and labels at any cutoff, computed in DuckDB over the marts with the cutoff as a bound parameter,
so one query serves training (past cutoffs), evaluation and scoring (the as-of date) and past cutoffs are replays.

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

CATEGORICAL_FEATURES = ("age_band", "region", "gender", "acquisition_channel")
STATUS_SETTLE_DAYS = 30  # a typical return window: cancellations and refunds are known this long after an order

# Sampling for training at scale: a customer is kept when a seeded hash of its key falls below $keep (per 10,000),
# so every fact table keeps the same customers. $keep = 10000 keeps everyone (the OR folds away).
_IN_SAMPLE = "($keep >= 10000 OR hash(customer_key, $seed::UBIGINT) % 10000 < $keep)"

# Orders on or before the cutoff with their status as of the cutoff (see the module docstring).
_ORDERS_AT_CUTOFF = f"""
    SELECT
        customer_key, order_date, amount, $cutoff::DATE - order_date AS age,
        is_paid OR $cutoff::DATE - order_date < $settle_days::INTEGER AS paid,
        CASE WHEN $cutoff::DATE - order_date >= $settle_days::INTEGER THEN status END AS settled_status
    FROM marts.fct_orders
    WHERE order_date <= $cutoff::DATE AND {_IN_SAMPLE}
"""

# Ages are days before the cutoff (0 = on the cutoff), so "last 30 days" is age < 30. Only events dated on or before
# the cutoff are read; satisfaction counts once the ticket is resolved, a ticket resolved after the cutoff is open.
_FEATURES_SQL = f"""
WITH orders AS ({_ORDERS_AT_CUTOFF}),
order_features AS (
    SELECT
        customer_key,
        min(age) FILTER (WHERE paid) AS recency_days,
        count(*) FILTER (WHERE paid) AS frequency,
        -- distinct purchase days: the BG/NBD's x + 1, as in the CLV model
        count(DISTINCT order_date) FILTER (WHERE paid) AS purchase_days,
        sum(amount) FILTER (WHERE paid) AS revenue_total,
        avg(amount) FILTER (WHERE paid) AS avg_order_value,
        max(age) FILTER (WHERE paid) AS tenure_days,
        (max(age) FILTER (WHERE paid) - min(age) FILTER (WHERE paid))
            / nullif(count(DISTINCT order_date) FILTER (WHERE paid) - 1, 0) AS avg_days_between_orders,
        count(*) FILTER (WHERE paid AND age < 30) AS orders_30d,
        count(*) FILTER (WHERE paid AND age < 90) AS orders_90d,
        count(*) FILTER (WHERE paid AND age < 365) AS orders_365d,
        coalesce(sum(amount) FILTER (WHERE paid AND age < 30), 0) AS revenue_30d,
        coalesce(sum(amount) FILTER (WHERE paid AND age < 90), 0) AS revenue_90d,
        coalesce(sum(amount) FILTER (WHERE paid AND age < 365), 0) AS revenue_365d,
        count(*) FILTER (WHERE paid AND age < 90)
            - count(*) FILTER (WHERE paid AND age >= 90 AND age < 180) AS orders_trend_90d,
        coalesce(sum(amount) FILTER (WHERE paid AND age < 90), 0)
            - coalesce(sum(amount) FILTER (WHERE paid AND age >= 90 AND age < 180), 0) AS revenue_trend_90d,
        count(*) FILTER (WHERE settled_status = 'cancelled') AS cancelled_orders,
        count(*) FILTER (WHERE settled_status = 'refunded') AS refunded_orders
    FROM orders
    GROUP BY customer_key
    HAVING count(*) FILTER (WHERE paid) > 0
),
-- Interactions are the largest table: one scan of the year before the cutoff serves every count and recency.
recent_interactions AS (
    SELECT customer_key, interaction_type AS kind, occurred_date, $cutoff::DATE - occurred_date AS age
    FROM marts.fct_interactions
    WHERE occurred_date <= $cutoff::DATE AND occurred_date > $cutoff::DATE - 365 AND {_IN_SAMPLE}
),
interaction_counts AS (
    SELECT
        customer_key,
        count(*) FILTER (WHERE kind = 'email_open' AND age < 30) AS email_opens_30d,
        count(*) FILTER (WHERE kind = 'email_open' AND age < 90) AS email_opens_90d,
        count(*) FILTER (WHERE kind = 'email_open' AND age < 90)
            - count(*) FILTER (WHERE kind = 'email_open' AND age >= 90 AND age < 180) AS email_opens_trend_90d,
        count(*) FILTER (WHERE kind = 'email_open' AND age < 365) AS email_opens_365d,
        count(*) FILTER (WHERE kind = 'email_click' AND age < 30) AS email_clicks_30d,
        count(*) FILTER (WHERE kind = 'email_click' AND age < 90) AS email_clicks_90d,
        count(*) FILTER (WHERE kind = 'email_sent' AND age < 90) AS emails_sent_90d,
        count(*) FILTER (WHERE kind = 'email_sent' AND age < 365) AS emails_sent_365d,
        count(*) FILTER (WHERE kind = 'web_visit' AND age < 30) AS web_visits_30d,
        count(*) FILTER (WHERE kind = 'web_visit' AND age < 90) AS web_visits_90d,
        count(*) FILTER (WHERE kind = 'web_visit' AND age < 365) AS web_visits_365d,
        count(*) FILTER (WHERE kind = 'call' AND age < 30) AS calls_30d,
        count(*) FILTER (WHERE kind = 'call' AND age < 90) AS calls_90d,
        count(*) FILTER (WHERE kind = 'chat' AND age < 30) AS chats_30d,
        count(*) FILTER (WHERE kind = 'chat' AND age < 90) AS chats_90d,
        -- Sent e-mails are our activity, not the customer's, so they do not count as engagement (NULL = none in
        -- the year before the cutoff).
        min(age) FILTER (WHERE kind <> 'email_sent') AS days_since_last_interaction,
        min(age) FILTER (WHERE kind = 'web_visit') AS days_since_last_web_visit
    FROM recent_interactions
    GROUP BY customer_key
),
ticket_counts AS (
    SELECT
        customer_key,
        count(*) FILTER (WHERE age < 90) AS tickets_90d,
        count(*) FILTER (WHERE age < 365) AS tickets_365d,
        -- A resolved ticket without a resolution time cannot be dated: trust its status.
        count(*) FILTER (WHERE resolved_at::DATE > $cutoff::DATE
                            OR (resolved_at IS NULL AND NOT coalesce(is_resolved, false))) AS open_tickets
    FROM (
        SELECT customer_key, resolved_at, is_resolved, $cutoff::DATE - opened_at::DATE AS age
        FROM marts.fct_tickets
        WHERE opened_at::DATE <= $cutoff::DATE AND {_IN_SAMPLE}
    )
    GROUP BY customer_key
),
satisfaction AS (
    SELECT customer_key, avg(satisfaction) AS avg_satisfaction
    FROM marts.fct_tickets
    WHERE resolved_at::DATE <= $cutoff::DATE AND resolved_at::DATE > $cutoff::DATE - 365 AND {_IN_SAMPLE}
    GROUP BY customer_key
),
nps AS (
    SELECT customer_key, arg_max(nps, answered_at) AS last_nps
    FROM marts.fct_surveys
    WHERE answered_date <= $cutoff::DATE AND nps IS NOT NULL AND {_IN_SAMPLE}
    GROUP BY customer_key
)
SELECT
    o.*,
    coalesce(COLUMNS(i.* EXCLUDE (customer_key, days_since_last_interaction, days_since_last_web_visit)), 0),
    i.email_opens_90d / nullif(i.emails_sent_90d, 0) AS email_open_rate_90d,
    i.email_opens_365d / nullif(i.emails_sent_365d, 0) AS email_open_rate_365d,
    i.days_since_last_interaction,
    i.days_since_last_web_visit,
    coalesce(COLUMNS(t.* EXCLUDE (customer_key)), 0),
    s.avg_satisfaction,
    n.last_nps,
    coalesce(d.age_band, 'unknown') AS age_band,
    coalesce(d.region, 'unknown') AS region,
    coalesce(d.gender, 'unknown') AS gender,
    coalesce(d.acquisition_channel, 'unknown') AS acquisition_channel
FROM order_features AS o
LEFT JOIN interaction_counts AS i USING (customer_key)
LEFT JOIN ticket_counts AS t USING (customer_key)
LEFT JOIN satisfaction AS s USING (customer_key)
LEFT JOIN nps AS n USING (customer_key)
LEFT JOIN marts.dim_customers AS d USING (customer_key)
ORDER BY customer_key
"""

# The outcome reads today's status: by the as-of date the window's orders have had time to settle.
_LABELS_SQL = f"""
WITH population AS (
    SELECT DISTINCT customer_key FROM ({_ORDERS_AT_CUTOFF}) WHERE paid
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
                   settle_days: int = STATUS_SETTLE_DAYS) -> pd.DataFrame:
    """Features as of ``cutoff`` for every customer with a paid order on or before it, indexed by customer_key.

    ``customer_share`` < 1 keeps that share of customers (a seeded hash of the key, the same customers for every
    cutoff and for ``churn_labels``).
    """
    frame = con.execute(_FEATURES_SQL, _params(cutoff, customer_share, seed, settle_days)).df()
    frame = frame.set_index("customer_key")
    for column in CATEGORICAL_FEATURES:
        frame[column] = frame[column].astype("category")
    return frame


def churn_labels(con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int = 90, *,
                 customer_share: float = 1.0, seed: int = 0, settle_days: int = STATUS_SETTLE_DAYS) -> pd.Series:
    """1 if a customer with a paid order on or before ``cutoff`` has none in (cutoff, cutoff + horizon], else 0
    (same customers as ``churn_features``)."""
    params = {**_params(cutoff, customer_share, seed, settle_days), "horizon_days": horizon_days}
    frame = con.execute(_LABELS_SQL, params).df()
    return frame.set_index("customer_key")["churned"].astype(int)
