"""Sales analytics in DuckDB SQL over the marts: the opportunity funnel, rep performance and campaign effectiveness.

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
# Interactions that show a customer engaged with a campaign; anything else carrying the campaign id (an email
# that was only sent, a web visit) means the campaign reached the customer, not that they took part.
PARTICIPATION_TYPES = ("email_open", "email_click", "call", "meeting", "chat")
LOOKBACK_DAYS = 365
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
CAMPAIGN_COLUMNS = (
    "campaign_id", "campaign_name", "channel", "start_date", "end_date", "cost", "reached", "participants",
    "leads", "leads_converted", "lead_conversion_rate", "attributed_orders", "attributed_revenue", "roi",
    "lift_participants", "participant_revenue_per_customer", "control_revenue_per_customer", "revenue_lift",
    "revenue_lift_pct", "pre_period_difference",
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
    SELECT opportunity_id, customer_key, amount, created_at, source, campaign_id, owner_rep_id,
           {", ".join(_stage_cut(s) for s in STAGES)}
    FROM marts.fct_opportunities
    WHERE CAST(created_at AS DATE) <= $as_of
),
opp_state AS (
    SELECT *, {_current_stage()} AS current_stage, {_furthest_order()} AS furthest_order
    FROM opp_cut
),
opp AS (
    SELECT *,
           date_diff('hour', created_at, won_ts) / 24.0 AS days_to_win,
           CASE current_stage
               WHEN 'won' THEN date_diff('hour', created_at, won_ts) / 24.0
               WHEN 'lost' THEN date_diff('hour', created_at, lost_ts) / 24.0
           END AS days_to_close
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


# Matched participant / non-participant comparison for campaign_effectiveness (needs the campaigns, touches and
# paid_orders CTEs). Cost is O(campaigns x customers) for the population plus the orders of ~13 months per campaign.
_LIFT_CTES = f"""
    lift_population AS (
        SELECT c.campaign_id, c.start_date, cu.customer_key, t.first_participation_at IS NOT NULL AS participant
        FROM campaigns AS c
        JOIN marts.dim_customers AS cu ON cu.signup_date IS NULL OR cu.signup_date <= c.start_date
        LEFT JOIN touches AS t ON t.campaign_id = c.campaign_id AND t.customer_key = cu.customer_key
        WHERE c.start_date IS NOT NULL
    ),
    customer_orders AS (
        SELECT c.campaign_id, o.customer_key,
               count(*) FILTER (WHERE o.order_date >= c.start_date - {LOOKBACK_DAYS}
                                  AND o.order_date < c.start_date) AS pre_orders,
               max(o.order_date) FILTER (WHERE o.order_date >= c.start_date - {LOOKBACK_DAYS}
                                           AND o.order_date < c.start_date) AS last_pre_order,
               sum(o.amount) FILTER (WHERE o.order_date >= c.pre_start
                                       AND o.order_date < c.start_date) AS pre_revenue,
               sum(o.amount) FILTER (WHERE o.order_date >= c.start_date) AS window_revenue
        FROM campaigns AS c
        JOIN paid_orders AS o
          ON o.order_date >= c.start_date - greatest($days, {LOOKBACK_DAYS}) AND o.order_date < c.window_end
        GROUP BY ALL
    ),
    features AS (
        SELECT p.campaign_id, p.participant,
               CASE WHEN coalesce(co.pre_orders, 0) = 0 THEN '0' WHEN co.pre_orders = 1 THEN '1'
                    WHEN co.pre_orders <= 3 THEN '2-3' ELSE '4+' END AS frequency_bucket,
               CASE WHEN co.last_pre_order IS NULL THEN 'none'
                    WHEN p.start_date - co.last_pre_order <= 90 THEN '<=90' ELSE '91-365' END AS recency_bucket,
               coalesce(co.pre_revenue, 0) AS pre_revenue,
               coalesce(co.window_revenue, 0) AS window_revenue
        FROM lift_population AS p
        LEFT JOIN customer_orders AS co USING (campaign_id, customer_key)
    ),
    strata AS (
        SELECT campaign_id, frequency_bucket, recency_bucket,
               count(*) FILTER (WHERE participant) AS participants,
               avg(window_revenue) FILTER (WHERE participant) AS participant_window,
               avg(window_revenue) FILTER (WHERE NOT participant) AS control_window,
               avg(pre_revenue) FILTER (WHERE participant)
                 - avg(pre_revenue) FILTER (WHERE NOT participant) AS pre_difference
        FROM features
        GROUP BY ALL
        HAVING count(*) FILTER (WHERE participant) > 0 AND count(*) FILTER (WHERE NOT participant) > 0
    ),
    lift AS (
        SELECT campaign_id,
               CAST(sum(participants) AS BIGINT) AS lift_participants,
               sum(participants * participant_window) / sum(participants) AS participant_revenue_per_customer,
               sum(participants * control_window) / sum(participants) AS control_revenue_per_customer,
               sum(participants * pre_difference) / sum(participants) AS pre_period_difference
        FROM strata
        GROUP BY ALL
    )"""


def campaign_effectiveness(
    con: duckdb.DuckDBPyConnection, as_of: date, attribution_days: int = 30
) -> pd.DataFrame:
    """One row per campaign started by ``as_of``.

    * reached: distinct customers with any interaction carrying the campaign id; participants: those with a
      participation interaction (``PARTICIPATION_TYPES``).
    * leads: opportunities carrying the campaign id; converted if won, or if the lead's customer placed a paid
      order within ``attribution_days`` of the opportunity's creation.
    * attributed revenue: paid orders placed within ``attribution_days`` after a customer's first participation.
      An order inside several campaigns' windows is credited once, to the campaign whose participation came last
      (last touch), so attributed revenue adds up across campaigns. ROI = (attributed revenue - cost) / cost.
    * revenue lift: revenue per customer in the window [start, start + attribution_days) (cut at ``as_of``) of
      participants minus that of non-participants with similar pre-campaign behaviour. Customers who existed at
      the start are stratified by paid orders in the 365 days before it (0, 1, 2-3, 4+) and days since the last
      of them (<=90, 91-365, none); within-stratum differences are averaged with participant weights over strata
      holding both groups. ``pre_period_difference`` is the same matched difference over the equally long window
      just before the start: it should be near 0, otherwise the groups differ in ways the strata do not capture
      (engagement is self-selected, so the lift is an association, not a randomised effect).
    """
    sql = f"""
    WITH campaigns AS (
        SELECT campaign_id, campaign_name, channel, start_date, end_date, cost,
               -- cut at as_of so participants and controls are observed for the same days
               least(start_date + $days, $as_of + 1) AS window_end,
               start_date - CAST(window_end - start_date AS INTEGER) AS pre_start
        FROM marts.dim_campaigns
        WHERE start_date IS NULL OR start_date <= $as_of
    ),
    touches AS (
        SELECT campaign_id, customer_key,
               min(occurred_at) FILTER (WHERE interaction_type IN {PARTICIPATION_TYPES}) AS first_participation_at
        FROM marts.fct_interactions
        WHERE campaign_id IS NOT NULL AND customer_key IS NOT NULL AND occurred_date <= $as_of
        GROUP BY ALL
    ),
    audience AS (
        SELECT campaign_id, count(*) AS reached, count(first_participation_at) AS participants
        FROM touches
        GROUP BY ALL
    ),
    paid_orders AS (
        SELECT order_id, customer_key, order_at, order_date, amount
        FROM marts.fct_orders
        WHERE is_paid AND order_date <= $as_of
    ),
    lead_outcomes AS (
        SELECT op.campaign_id, op.opportunity_id,
               coalesce(CAST(op.won_at AS DATE) <= $as_of, false) OR count(o.order_id) > 0 AS converted
        FROM marts.fct_opportunities AS op
        LEFT JOIN paid_orders AS o
               ON o.customer_key = op.customer_key
              AND o.order_at >= op.created_at AND o.order_at < op.created_at + to_days($days)
        WHERE op.campaign_id IS NOT NULL AND CAST(op.created_at AS DATE) <= $as_of
        GROUP BY op.campaign_id, op.opportunity_id, op.won_at
    ),
    leads AS (
        SELECT campaign_id, count(*) AS leads, count(*) FILTER (WHERE converted) AS leads_converted
        FROM lead_outcomes
        GROUP BY ALL
    ),
    attributed AS (
        SELECT t.campaign_id, o.order_id, o.amount
        FROM paid_orders AS o
        JOIN touches AS t
          ON t.customer_key = o.customer_key
         AND o.order_at >= t.first_participation_at
         AND o.order_at < t.first_participation_at + to_days($days)
        QUALIFY row_number() OVER (
            PARTITION BY o.order_id ORDER BY t.first_participation_at DESC, t.campaign_id) = 1
    ),
    attribution AS (
        SELECT campaign_id, count(*) AS attributed_orders, sum(amount) AS attributed_revenue
        FROM attributed
        GROUP BY ALL
    ),
    {_LIFT_CTES}
    SELECT c.campaign_id, c.campaign_name, c.channel, c.start_date, c.end_date, c.cost,
           coalesce(a.reached, 0) AS reached,
           coalesce(a.participants, 0) AS participants,
           coalesce(l.leads, 0) AS leads,
           coalesce(l.leads_converted, 0) AS leads_converted,
           l.leads_converted / nullif(l.leads, 0) AS lead_conversion_rate,
           coalesce(r.attributed_orders, 0) AS attributed_orders,
           coalesce(r.attributed_revenue, 0) AS attributed_revenue,
           (coalesce(r.attributed_revenue, 0) - c.cost) / nullif(c.cost, 0) AS roi,
           coalesce(m.lift_participants, 0) AS lift_participants,
           m.participant_revenue_per_customer,
           m.control_revenue_per_customer,
           m.participant_revenue_per_customer - m.control_revenue_per_customer AS revenue_lift,
           revenue_lift / nullif(m.control_revenue_per_customer, 0) AS revenue_lift_pct,
           m.pre_period_difference
    FROM campaigns AS c
    LEFT JOIN audience AS a USING (campaign_id)
    LEFT JOIN leads AS l USING (campaign_id)
    LEFT JOIN attribution AS r USING (campaign_id)
    LEFT JOIN lift AS m USING (campaign_id)
    ORDER BY c.campaign_id
    """
    params = {"as_of": as_of, "days": int(attribution_days)}
    return query_marts(con, sql, params, CAMPAIGN_COLUMNS)

