"""Sales analytics in DuckDB SQL over the marts: the opportunity funnel and rep performance (campaigns: campaigns.py).

Every function takes a DuckDB connection and an ``as_of`` date (bound as a query parameter) and only counts data
dated on or before it, so a backtest at an earlier date sees the pipeline as it stood then. A source table that is
missing yields an empty frame with the documented columns; an empty one yields an empty frame naturally.

Funnel conventions
------------------
* The stage an opportunity is in at ``as_of`` is the last stage it entered on or before ``as_of`` (the rule
  ``fct_opportunities.stage`` uses at refresh time), so won + lost + open always equals the opportunity count.
* "Reached" is monotone along new -> contacted -> qualified -> proposal -> negotiation -> won: an opportunity that
  skipped a step (e.g. contacted -> proposal) still counts as having reached the steps it skipped, so every
  stage-to-stage conversion is a share in [0, 1]. Lost opportunities reached the furthest open stage they entered.
* Time in stage uses completed stays only (left the stage on or before ``as_of``): an ongoing stay has no length yet.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from dagster_project.analytics.marts_sql import query_marts

STAGES = ("new", "contacted", "qualified", "proposal", "negotiation", "won", "lost")
OPEN_STAGES = STAGES[:5]
CHURN_DAYS = 365

FUNNEL_BY_STAGE_COLUMNS = (
    "dimension", "dimension_value", "stage", "stage_order", "reached", "current", "conversion_to_next",
    "avg_days_in_stage", "median_days_in_stage",
)
FUNNEL_CONVERSION_COLUMNS = (
    "dimension", "dimension_value", "opportunities", "open", "won", "lost", "win_rate", "new_to_won_rate",
    "won_amount", "median_sales_cycle_days", "mean_sales_cycle_days",
)
REP_PERFORMANCE_COLUMNS = (
    "rep_id", "rep_name", "team", "region", "opportunities", "deals_won", "deals_lost", "win_rate", "won_amount",
    "median_days_to_close", "customers_won", "customers_churned", "churn_rate",
)


def _stage_cut(stage: str) -> str:
    return f"CASE WHEN CAST({stage}_at AS DATE) <= $as_of THEN {stage}_at END AS {stage}_ts"


def _current_stage() -> str:
    # Latest entry wins; on a tie the later stage in the funnel does (won/lost before the open stages).
    branches = " ".join(f"WHEN {s}_ts THEN '{s}'" for s in ("won", "lost", *reversed(OPEN_STAGES)))
    return f"CASE greatest({', '.join(f'{s}_ts' for s in STAGES)}) {branches} ELSE 'new' END"


def _furthest_order() -> str:
    # Furthest step on the won path (won = 6), which makes "reached" monotone; see the module docstring.
    branches = " ".join(
        f"WHEN {s}_ts IS NOT NULL THEN {STAGES.index(s) + 1}" for s in ("won", *reversed(OPEN_STAGES[1:]))
    )
    return f"CASE {branches} ELSE 1 END"


# Opportunities as they stood at as_of: ``opp`` has one row per opportunity, ``opp_dims`` one per opportunity and
# analysis dimension ('overall' included), the input of the long-format outputs.
_OPPORTUNITIES = f"""
opp_cut AS (
    SELECT opportunity_id, customer_key, amount, created_at, source, campaign_id, owner_rep_id, closed_at,
           {", ".join(_stage_cut(s) for s in STAGES)}
    FROM marts.fct_opportunities
    WHERE CAST(created_at AS DATE) <= $as_of
),
opp_state AS (
    SELECT *, {_current_stage()} AS current_stage, {_furthest_order()} AS furthest_order
    FROM opp_cut
),
opp AS (
    -- A closed deal whose export did not say when it closed (fct_opportunities.closed_at null) took an unknown time.
    SELECT *,
           CASE WHEN closed_at IS NOT NULL THEN date_diff('hour', created_at, won_ts) / 24.0 END AS days_to_win,
           CASE WHEN closed_at IS NOT NULL THEN CASE current_stage
               WHEN 'won' THEN date_diff('hour', created_at, won_ts) / 24.0
               WHEN 'lost' THEN date_diff('hour', created_at, lost_ts) / 24.0
           END END AS days_to_close
    FROM opp_state
),
opp_dims AS (
    SELECT o.*, d.dimension, d.dimension_value
    FROM opp AS o
    CROSS JOIN LATERAL (VALUES
        ('overall', 'overall'),
        ('source', coalesce(o.source, '(none)')),
        ('campaign', coalesce(o.campaign_id, '(none)')),
        ('owner_rep', coalesce(o.owner_rep_id, '(none)')),
        ('created_month', strftime(o.created_at, '%Y-%m'))
    ) AS d(dimension, dimension_value)
)"""

_STAGE_SPINE = "stages(stage, stage_order) AS (VALUES {})".format(
    ", ".join(f"('{s}', {i})" for i, s in enumerate(STAGES, start=1))
)


def funnel_by_stage(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """Per dimension value and stage: opportunities that reached it, are in it now, conversion to the next stage
    (reached next / reached this; negotiation -> won) and average / median days spent in it."""
    sql = f"""
    WITH {_OPPORTUNITIES},
    {_STAGE_SPINE},
    groups AS (
        SELECT dimension, dimension_value, furthest_order, current_stage,
               lost_ts IS NOT NULL AS reached_lost, count(*) AS n
        FROM opp_dims
        GROUP BY ALL
    ),
    counts AS (
        SELECT g.dimension, g.dimension_value, s.stage, s.stage_order,
               CAST(coalesce(sum(g.n) FILTER (WHERE CASE s.stage WHEN 'lost' THEN g.reached_lost
                                                     ELSE g.furthest_order >= s.stage_order END), 0) AS BIGINT)
                   AS reached,
               CAST(coalesce(sum(g.n) FILTER (WHERE g.current_stage = s.stage), 0) AS BIGINT) AS current
        FROM groups AS g
        CROSS JOIN stages AS s
        GROUP BY ALL
    ),
    stays AS (
        SELECT d.dimension, d.dimension_value, st.stage,
               avg(st.days_in_stage) AS avg_days_in_stage, median(st.days_in_stage) AS median_days_in_stage
        FROM marts.fct_opportunity_stages AS st
        JOIN opp_dims AS d USING (opportunity_id)
        WHERE CAST(st.exited_at AS DATE) <= $as_of
        GROUP BY ALL
    )
    SELECT c.dimension, c.dimension_value, c.stage, c.stage_order, c.reached, c.current,
           CASE WHEN c.stage_order <= {len(OPEN_STAGES)} THEN
               lead(c.reached) OVER (PARTITION BY c.dimension, c.dimension_value ORDER BY c.stage_order)
               / nullif(c.reached, 0)
           END AS conversion_to_next,
           s.avg_days_in_stage, s.median_days_in_stage
    FROM counts AS c
    LEFT JOIN stays AS s USING (dimension, dimension_value, stage)
    ORDER BY c.dimension, c.dimension_value, c.stage_order
    """
    return query_marts(con, sql, {"as_of": as_of}, FUNNEL_BY_STAGE_COLUMNS)


def funnel_conversion(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """Per dimension value: open / won / lost counts, win rate (won / closed), new -> won conversion, won amount and
    the sales cycle (created -> won, days). Stage-to-stage conversion is per stage, in :func:`funnel_by_stage`."""
    sql = f"""
    WITH {_OPPORTUNITIES}
    SELECT dimension, dimension_value,
           count(*) AS opportunities,
           count(*) FILTER (WHERE current_stage NOT IN ('won', 'lost')) AS open,
           count(*) FILTER (WHERE current_stage = 'won') AS won,
           count(*) FILTER (WHERE current_stage = 'lost') AS lost,
           won / nullif(won + lost, 0) AS win_rate,
           won / opportunities AS new_to_won_rate,
           coalesce(sum(amount) FILTER (WHERE current_stage = 'won'), 0) AS won_amount,
           median(days_to_win) FILTER (WHERE current_stage = 'won') AS median_sales_cycle_days,
           avg(days_to_win) FILTER (WHERE current_stage = 'won') AS mean_sales_cycle_days
    FROM opp_dims
    GROUP BY ALL
    ORDER BY dimension, dimension_value
    """
    return query_marts(con, sql, {"as_of": as_of}, FUNNEL_CONVERSION_COLUMNS)


def rep_performance(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """Per owner rep: deals and amount won, win rate, median days to close (created -> won/lost, closed deals), and
    the customers won (won opportunities' customers) with the share of them churned: last paid order more than
    365 days before ``as_of``. A won customer who has not ordered yet has no last order and is not counted churned."""
    sql = f"""
    WITH {_OPPORTUNITIES},
    deals AS (
        SELECT owner_rep_id AS rep_id,
               count(*) AS opportunities,
               count(*) FILTER (WHERE current_stage = 'won') AS deals_won,
               count(*) FILTER (WHERE current_stage = 'lost') AS deals_lost,
               coalesce(sum(amount) FILTER (WHERE current_stage = 'won'), 0) AS won_amount,
               median(days_to_close) AS median_days_to_close
        FROM opp
        WHERE owner_rep_id IS NOT NULL
        GROUP BY ALL
    ),
    won_customers AS (
        SELECT DISTINCT owner_rep_id AS rep_id, customer_key
        FROM opp
        WHERE current_stage = 'won' AND owner_rep_id IS NOT NULL AND customer_key IS NOT NULL
    ),
    last_orders AS (
        SELECT customer_key, max(order_date) AS last_order_date
        FROM marts.fct_orders
        WHERE is_paid AND order_date <= $as_of
        GROUP BY ALL
    ),
    rep_customers AS (
        SELECT w.rep_id, count(*) AS customers_won,
               count(*) FILTER (WHERE l.last_order_date < $as_of - {CHURN_DAYS}) AS customers_churned
        FROM won_customers AS w
        LEFT JOIN last_orders AS l USING (customer_key)
        GROUP BY ALL
    )
    SELECT d.rep_id, r.rep_name, r.team, r.region, d.opportunities, d.deals_won, d.deals_lost,
           d.deals_won / nullif(d.deals_won + d.deals_lost, 0) AS win_rate,
           d.won_amount, d.median_days_to_close,
           coalesce(c.customers_won, 0) AS customers_won,
           coalesce(c.customers_churned, 0) AS customers_churned,
           c.customers_churned / nullif(c.customers_won, 0) AS churn_rate
    FROM deals AS d
    LEFT JOIN rep_customers AS c USING (rep_id)
    LEFT JOIN marts.dim_sales_reps AS r USING (rep_id)
    ORDER BY d.won_amount DESC, d.rep_id
    """
    return query_marts(con, sql, {"as_of": as_of}, REP_PERFORMANCE_COLUMNS)

