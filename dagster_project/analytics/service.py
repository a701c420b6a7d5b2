"""Customer-service metrics in DuckDB SQL over ``marts.fct_tickets`` and ``marts.fct_surveys``.

Long format: one row per (dimension, dimension_value, period) with dimension 'overall', 'category' or 'rep' and
period a month ('YYYY-MM') or 'all' (everything up to ``as_of``). Ticket metrics are by the month a ticket was
opened (a cohort): its first-response and resolution times, resolution rate and CSAT. ``backlog`` is a stock:
tickets open at the end of the month (at ``as_of`` for the current month and for 'all'). NPS comes from surveys by
the month answered and only exists for the 'overall' dimension (a survey carries no category or rep).

Only data dated on or before ``as_of`` counts: a response or resolution after it has not happened yet, so a ticket
resolved after ``as_of`` is open at ``as_of``, and its CSAT (given at resolution) is not known yet.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from dagster_project.analytics.marts_sql import query_marts

SERVICE_COLUMNS = (
    "dimension", "dimension_value", "period", "tickets_opened", "tickets_resolved", "resolution_rate",
    "median_first_response_hours", "mean_first_response_hours", "median_resolution_hours", "mean_resolution_hours",
    "backlog", "csat_responses", "mean_csat", "surveys", "nps",
)

_PERIOD = "CASE WHEN grouping(month) = 1 THEN 'all' ELSE strftime(month, '%Y-%m') END"

_SQL = f"""
WITH tickets AS (
    SELECT category, rep_id,
           CAST(date_trunc('month', opened_at) AS DATE) AS month,
           coalesce(CAST(resolved_at AS DATE) <= $as_of, false) AS is_resolved,
           CASE WHEN CAST(resolved_at AS DATE) <= $as_of THEN CAST(date_trunc('month', resolved_at) AS DATE)
           END AS resolved_month,
           CASE WHEN CAST(first_response_at AS DATE) <= $as_of THEN first_response_hours END AS first_response_hours,
           CASE WHEN CAST(resolved_at AS DATE) <= $as_of THEN resolution_hours END AS resolution_hours,
           CASE WHEN CAST(resolved_at AS DATE) <= $as_of THEN satisfaction END AS satisfaction
    FROM marts.fct_tickets
    WHERE CAST(opened_at AS DATE) <= $as_of
),
ticket_dims AS (
    SELECT t.*, d.dimension, d.dimension_value
    FROM tickets AS t
    CROSS JOIN LATERAL (VALUES
        ('overall', 'overall'),
        ('category', coalesce(t.category, '(none)')),
        ('rep', coalesce(t.rep_id, '(none)'))
    ) AS d(dimension, dimension_value)
),
ticket_metrics AS (
    SELECT dimension, dimension_value, {_PERIOD} AS period,
           count(*) AS tickets_opened,
           count(*) FILTER (WHERE is_resolved) AS tickets_resolved,
           median(first_response_hours) AS median_first_response_hours,
           avg(first_response_hours) AS mean_first_response_hours,
           median(resolution_hours) AS median_resolution_hours,
           avg(resolution_hours) AS mean_resolution_hours,
           count(satisfaction) AS csat_responses,
           avg(satisfaction) AS mean_csat
    FROM ticket_dims
    GROUP BY GROUPING SETS ((dimension, dimension_value, month), (dimension, dimension_value))
),
-- Backlog at a month end = tickets opened minus tickets resolved up to then, over a gap-free month spine.
flows AS (
    SELECT dimension, dimension_value, month, 1 AS delta FROM ticket_dims
    UNION ALL
    SELECT dimension, dimension_value, resolved_month, -1 FROM ticket_dims WHERE resolved_month IS NOT NULL
),
spine AS (
    SELECT dimension, dimension_value, CAST(month AS DATE) AS month
    FROM (
        SELECT dimension, dimension_value,
               unnest(generate_series(min(month), date_trunc('month', $as_of), INTERVAL 1 MONTH)) AS month
        FROM flows
        GROUP BY dimension, dimension_value
    )
),
backlog AS (
    SELECT s.dimension, s.dimension_value, strftime(s.month, '%Y-%m') AS period,
           sum(coalesce(sum(f.delta), 0)) OVER (
               PARTITION BY s.dimension, s.dimension_value ORDER BY s.month) AS backlog
    FROM spine AS s
    LEFT JOIN flows AS f USING (dimension, dimension_value, month)
    GROUP BY s.dimension, s.dimension_value, s.month
),
ticket_rows AS (
    SELECT b.dimension, b.dimension_value, b.period,
           coalesce(m.tickets_opened, 0) AS tickets_opened, coalesce(m.tickets_resolved, 0) AS tickets_resolved,
           m.median_first_response_hours, m.mean_first_response_hours,
           m.median_resolution_hours, m.mean_resolution_hours,
           b.backlog, coalesce(m.csat_responses, 0) AS csat_responses, m.mean_csat
    FROM backlog AS b
    LEFT JOIN ticket_metrics AS m USING (dimension, dimension_value, period)
    UNION ALL
    SELECT dimension, dimension_value, period, tickets_opened, tickets_resolved,
           median_first_response_hours, mean_first_response_hours, median_resolution_hours, mean_resolution_hours,
           tickets_opened - tickets_resolved AS backlog, csat_responses, mean_csat
    FROM ticket_metrics
    WHERE period = 'all'
),
surveys AS (
    SELECT 'overall' AS scope, CAST(date_trunc('month', answered_date) AS DATE) AS month, nps_group
    FROM marts.fct_surveys
    WHERE answered_date <= $as_of AND nps_group IS NOT NULL
),
nps AS (
    -- NPS = % promoters - % detractors, from -100 to 100
    SELECT scope AS dimension, scope AS dimension_value, {_PERIOD} AS period,
           count(*) AS surveys,
           100.0 * (count(*) FILTER (WHERE nps_group = 'promoter')
                    - count(*) FILTER (WHERE nps_group = 'detractor')) / count(*) AS nps
    FROM surveys
    GROUP BY GROUPING SETS ((scope, month), (scope))
)
SELECT dimension, dimension_value, period,
       coalesce(t.tickets_opened, 0) AS tickets_opened,
       coalesce(t.tickets_resolved, 0) AS tickets_resolved,
       t.tickets_resolved / nullif(t.tickets_opened, 0) AS resolution_rate,
       t.median_first_response_hours, t.mean_first_response_hours,
       t.median_resolution_hours, t.mean_resolution_hours,
       t.backlog, coalesce(t.csat_responses, 0) AS csat_responses, t.mean_csat,
       coalesce(n.surveys, 0) AS surveys, n.nps
FROM ticket_rows AS t
FULL OUTER JOIN nps AS n USING (dimension, dimension_value, period)
ORDER BY dimension, dimension_value, period
"""


def service_metrics(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """Ticket response / resolution times (hours), resolution rate, backlog, CSAT and NPS by month, category and
    rep (see the module docstring). A missing source table yields an empty frame with ``SERVICE_COLUMNS``."""
    return query_marts(con, _SQL, {"as_of": as_of}, SERVICE_COLUMNS)
