"""Campaign effectiveness: reach, participation, leads, attributed revenue, ROI, and the revenue a campaign caused.

One row per campaign started by ``as_of`` (``campaign_effectiveness``); only data dated on or before ``as_of``
counts. The causal part (matched controls, intervals, placebo) is in ``campaign_lift``; this module counts, attributes
and assembles. A missing source table yields an empty frame with the documented columns.

* reached: distinct customers with any interaction carrying the campaign id; participants: those with a
  participation interaction (``campaign_lift.PARTICIPATION_TYPES``).
* leads: opportunities carrying the campaign id; converted if won, or if the lead's customer placed a paid order
  within ``attribution_days`` of the opportunity's creation.
* attributed revenue: paid orders placed within ``attribution_days`` after a customer's first participation. An
  order inside several campaigns' windows is credited once, to the campaign whose participation came last (last
  touch), so attributed revenue adds up across campaigns. ROI = (attributed revenue - cost) / cost, NULL with a
  ``roi_note`` when there is no cost or no attributed revenue: a campaign whose channel records no participation
  (SMS, social, search, events in most exports) has nothing to attribute, which is not a loss of 100%.
* incremental ROI = (incremental revenue - cost) / cost, from the matched lift: the return on what the campaign
  caused, where ROI credits the campaign with every order its participants placed in the window.
* ``campaign_label``: the name, with the campaign id when another campaign has the same name, so that charts and
  tables keep campaigns apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from dagster_project.analytics import campaign_lift
from dagster_project.analytics.campaign_lift import LIFT_COLUMNS, PARTICIPATION_TYPES, Z_95
from dagster_project.analytics.marts_sql import query_marts
from dagster_project.analytics.model_quality import ModelQuality
from dagster_project.analytics.model_runs import ModelRun
from dagster_project.sql import money_sum

MODEL_NAME = "campaign_lift"
QUESTION = "extra revenue a campaign caused among its participants"
METRIC = "placebo bias (% of participant spend)"
PUBLISHED = "participants vs matched reached non-participants"
BASELINE_ALL = "all non-participants (order-count and recency strata)"
BASELINE_REACHED = "reached non-participants, unmatched"
NO_COST = "no cost recorded"
NO_PARTICIPATION = "no attributed revenue: no participation recorded"
NO_BUYER = "no attributed revenue: no participant bought within the window"
NO_REACH = "no reach data: the export records nobody this campaign reached"
NO_START = "no start date to measure from"

SUMMARY_COLUMNS = (
    "campaign_id", "campaign_name", "campaign_label", "channel", "start_date", "end_date", "cost", "reached",
    "participants", "leads", "leads_converted", "lead_conversion_rate", "attributed_orders", "attributed_revenue",
    "roi", "roi_note",
)
CAMPAIGN_COLUMNS = SUMMARY_COLUMNS + tuple(c for c in LIFT_COLUMNS if c != "campaign_id") + ("incremental_roi",)

_SUMMARY_SQL = f"""
WITH campaigns AS (
    SELECT campaign_id, campaign_name, channel, start_date, end_date, cost
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
    SELECT campaign_id, count(*) AS attributed_orders, {money_sum('amount')} AS attributed_revenue
    FROM attributed
    GROUP BY ALL
),
summary AS (
    SELECT c.campaign_id, c.campaign_name,
           CASE WHEN c.campaign_name IS NULL THEN c.campaign_id
                WHEN count(*) OVER (PARTITION BY c.campaign_name) > 1
                THEN c.campaign_name || ' (' || c.campaign_id || ')'
                ELSE c.campaign_name END AS campaign_label,
           c.channel, c.start_date, c.end_date, c.cost,
           coalesce(a.reached, 0) AS reached,
           coalesce(a.participants, 0) AS participants,
           coalesce(l.leads, 0) AS leads,
           coalesce(l.leads_converted, 0) AS leads_converted,
           l.leads_converted / nullif(l.leads, 0) AS lead_conversion_rate,
           coalesce(r.attributed_orders, 0) AS attributed_orders,
           coalesce(r.attributed_revenue, 0) AS attributed_revenue
    FROM campaigns AS c
    LEFT JOIN audience AS a USING (campaign_id)
    LEFT JOIN leads AS l USING (campaign_id)
    LEFT JOIN attribution AS r USING (campaign_id)
)
SELECT *,
       CASE WHEN coalesce(cost, 0) > 0 AND attributed_revenue > 0
            THEN (attributed_revenue - cost) / cost END AS roi,
       CASE WHEN coalesce(cost, 0) <= 0 THEN '{NO_COST}'
            WHEN participants = 0 THEN '{NO_PARTICIPATION}'
            WHEN attributed_revenue <= 0 THEN '{NO_BUYER}' END AS roi_note
FROM summary
ORDER BY campaign_id
"""


@dataclass(frozen=True)
class CampaignEffectiveness:
    """The ``campaign_effectiveness`` table, the placebo check of its lift and the model runs to append."""

    table: pd.DataFrame
    quality: ModelQuality
    runs: list[ModelRun] = field(default_factory=list)
    # Campaigns whose lift was estimated at this refresh, and those whose saved estimate still held.
    estimated: int = 0
    reused: int = 0


def campaign_summary(con: duckdb.DuckDBPyConnection, as_of: date, attribution_days: int = 30) -> pd.DataFrame:
    """Reach, leads, attribution and ROI per campaign (``SUMMARY_COLUMNS``)."""
    return query_marts(con, _SUMMARY_SQL, {"as_of": as_of, "days": int(attribution_days)}, SUMMARY_COLUMNS)


def campaign_effectiveness(con: duckdb.DuckDBPyConnection, as_of: date, attribution_days: int = 30,
                           code: str | None = None, reuse: bool = True) -> CampaignEffectiveness:
    """One row per campaign (``CAMPAIGN_COLUMNS``): the summary and the matched lift (``campaign_lift``); with
    ``code``, a campaign's saved lift is reused while its inputs do not change (``campaign_lift.lift_by_campaign``)."""
    started = time.perf_counter()
    summary = campaign_summary(con, as_of, attribution_days)
    lifts = campaign_lift.lift_by_campaign(con, as_of, attribution_days, code, reuse)
    lift = lifts.table
    table = summary.merge(lift, on="campaign_id", how="left")
    unmeasured = ~table["campaign_id"].isin(lift["campaign_id"])
    table["lift_note"] = table["lift_note"].mask(unmeasured, np.where(table["start_date"].isna(), NO_START, NO_REACH))
    cost = table["cost"].where(table["cost"] > 0)
    table["incremental_roi"] = (table["incremental_revenue"] - cost) / cost
    table = table[list(CAMPAIGN_COLUMNS)]
    quality = placebo_quality(lift, attribution_days)
    if table.empty:
        quality = replace(quality, note="the export has no campaigns")
    return CampaignEffectiveness(table, quality, lift_runs(lift, quality, as_of, attribution_days,
                                                           time.perf_counter() - started),
                                 lifts.estimated, lifts.reused)


def _pooled(lift: pd.DataFrame, column: str, weights: str) -> tuple[float, int]:
    """Participant-weighted mean of a per-campaign figure over the campaigns that have it, and those participants."""
    rows = lift.dropna(subset=[column, weights])
    total = rows[weights].sum()
    return (float((rows[weights] * rows[column]).sum() / total), int(total)) if total > 0 else (float("nan"), 0)


PLACEBO_COLUMNS = {"matched": "placebo_difference", "baseline_all": "placebo_baseline_all_difference",
                   "baseline_reached": "placebo_baseline_reached_difference"}


def placebo_bias(lift: pd.DataFrame) -> tuple[dict[str, float], int]:
    """The placebo check pooled over the campaigns that have it: |participant-weighted mean placebo difference| as
    a % of the participants' mean spend in the placebo window, for the matched comparison and each baseline; and
    the participants it covers. A systematic difference shows; campaign-level noise of either sign averages out."""
    rows = lift.dropna(subset=["placebo_difference", "placebo_participant_revenue"])
    spend, participants = _pooled(rows, "placebo_participant_revenue", "placebo_participants")
    if not spend > 0:
        return {name: float("nan") for name in PLACEBO_COLUMNS}, 0
    return {name: abs(_pooled(rows, column, "placebo_participants")[0]) / spend * 100
            for name, column in PLACEBO_COLUMNS.items()}, participants


def placebo_quality(lift: pd.DataFrame, attribution_days: int) -> ModelQuality:
    """``placebo_bias`` as a ModelQuality, next to the better of the two baselines."""
    biases, n_eval = placebo_bias(lift)
    campaigns = int(lift["placebo_difference"].notna().sum())
    evaluation = (f"{campaigns} campaigns' {attribution_days} days before their start (features from before then), "
                  "a window the campaigns cannot have influenced")
    common = dict(model=MODEL_NAME, question=QUESTION, metric=METRIC, higher_is_better=False, published=PUBLISHED,
                  n_eval=n_eval, evaluation=evaluation)
    if n_eval == 0:
        return ModelQuality(**common, published_value=None, baseline=BASELINE_ALL, baseline_value=None,
                            beats_baseline=False,
                            note=("no campaign records whom it reached (such as e-mails sent), so no effect could "
                                  "be estimated" if lift.empty else "no campaign had enough reached participants "
                                  "and non-participants to check"))
    published = biases["matched"]
    baseline, baseline_value = min(((BASELINE_ALL, biases["baseline_all"]),
                                    (BASELINE_REACHED, biases["baseline_reached"])),
                                   key=lambda pair: (np.isnan(pair[1]), pair[1]))
    beats = bool(published < baseline_value)
    note = None if beats else ("the matched comparison did not remove more pre-campaign difference than the "
                               "baseline: treat the revenue lift as rough")
    return ModelQuality(**common, published_value=published, baseline=baseline, baseline_value=baseline_value,
                        beats_baseline=beats, note=note)


def lift_runs(lift: pd.DataFrame, quality: ModelQuality, as_of: date, attribution_days: int,
              seconds: float) -> list[ModelRun]:
    """A production run (the pooled lift) and a validation run (the placebo check) for analytics.model_runs."""
    revenue, participants = _pooled(lift, "revenue_lift", "matched_participants")
    purchases, _ = _pooled(lift, "purchase_lift", "matched_participants")
    estimated = lift.dropna(subset=["revenue_lift"])
    weights = estimated["matched_participants"] / max(participants, 1)
    se = np.sqrt((weights ** 2 * ((estimated["revenue_lift_ci_high"] - estimated["revenue_lift_ci_low"])
                                  / (2 * Z_95)) ** 2).sum())
    params = {"method": "propensity strata + ridge adjustment", "max_strata": campaign_lift.MAX_STRATA,
              "min_per_stratum": campaign_lift.MIN_PER_STRATUM, "attribution_days": attribution_days,
              "features": ",".join(campaign_lift.FEATURES)}
    common = dict(model_name=MODEL_NAME, as_of_date=as_of, train_start=None, train_end=as_of, params=params,
                  libraries=("scikit-learn",), fit_seconds=seconds)
    return [
        ModelRun(purpose="production", metrics={
            "campaigns": len(estimated), "participants": participants, "revenue_lift": revenue,
            "revenue_lift_ci_low": revenue - Z_95 * se, "revenue_lift_ci_high": revenue + Z_95 * se,
            "purchase_lift": purchases,
            "baseline_all_difference": _pooled(lift, "baseline_all_difference", "matched_participants")[0],
            "baseline_reached_difference": _pooled(lift, "baseline_reached_difference", "matched_participants")[0],
        }, **common),
        ModelRun(purpose="validation", metrics={
            **{f"placebo_bias_pct_{name}": value for name, value in placebo_bias(lift)[0].items()},
            "n_eval": quality.n_eval, "beats_baseline": quality.beats_baseline,
        }, **common),
    ]
