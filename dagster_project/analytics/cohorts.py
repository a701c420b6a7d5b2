"""Monthly acquisition cohorts: retention and revenue by months since a customer's first paid order."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from dagster_project.analytics.segments import Orders, run_sql, typed_paid_orders
from dagster_project.sql import money_sum

COHORT_COLUMNS = (
    "cohort_month", "months_since", "cohort_size", "active_customers", "retention_pct", "revenue",
    "revenue_per_customer", "cumulative_revenue_per_customer",
)

# Every (cohort, month) cell up to the last complete month is emitted, including months nobody bought in, so
# retention curves and cumulative revenue never skip a month.
_COHORT_SQL = f"""
    WITH customer_month AS (
        SELECT customer_key, date_trunc('month', order_date)::DATE AS month, {money_sum('net_amount')} AS revenue
        FROM orders WHERE order_date::DATE <= $cutoff AND customer_key IS NOT NULL
        GROUP BY customer_key, month),
    firsts AS (
        SELECT customer_key, min(month) AS cohort_month FROM customer_month GROUP BY customer_key),
    tagged AS (
        SELECT * FROM customer_month JOIN firsts USING (customer_key)),
    cells AS (
        SELECT cohort_month, date_diff('month', cohort_month, month) AS months_since,
               count(*) AS active_customers, {money_sum('revenue')} AS revenue
        FROM tagged GROUP BY ALL),
    sizes AS (
        SELECT cohort_month, active_customers AS cohort_size FROM cells WHERE months_since = 0),
    grid AS (
        SELECT cohort_month, cohort_size,
               unnest(range(date_diff('month', cohort_month, date_trunc('month', $cutoff)::DATE) + 1)) AS months_since
        FROM sizes)
    SELECT g.cohort_month, g.months_since, g.cohort_size,
           coalesce(c.active_customers, 0)           AS active_customers,
           100.0 * coalesce(c.active_customers, 0) / g.cohort_size AS retention_pct,
           coalesce(c.revenue, 0)                    AS revenue,
           coalesce(c.revenue, 0) / g.cohort_size    AS revenue_per_customer,
           sum(coalesce(c.revenue, 0)) OVER (PARTITION BY g.cohort_month ORDER BY g.months_since)
               / g.cohort_size                       AS cumulative_revenue_per_customer
    FROM grid g LEFT JOIN cells c USING (cohort_month, months_since)
    ORDER BY g.cohort_month, g.months_since
"""


def last_complete_month_end(as_of: date) -> date:
    """``as_of`` itself if it is a month end, else the end of the previous month."""
    next_day = as_of + timedelta(days=1)
    return as_of if next_day.day == 1 else as_of.replace(day=1) - timedelta(days=1)


def monthly_cohorts(orders: Orders, as_of: date) -> pd.DataFrame:
    """Cohort x months-since table over complete calendar months only: the month holding ``as_of`` is left out
    unless ``as_of`` is its last day, so neither a cohort's size nor a month's activity is a partial count.

    retention_pct is 0-100 of the cohort size (month 0 is 100 by construction); per-customer revenue divides by
    the original cohort size, so the cumulative column is revenue per acquired customer to date.
    """
    return run_sql(_COHORT_SQL, {"cutoff": last_complete_month_end(as_of)}, orders=typed_paid_orders(orders))[
        list(COHORT_COLUMNS)]
