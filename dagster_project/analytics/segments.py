"""Customer segmentation: RFM, customer-state management (CPM), spend deciles, lifecycle stages, demographic cuts.

Every function is pure (frames in, frame out), takes an explicit ``as_of`` and ignores anything dated after it, so a
backtest can replay any past date. Per-customer aggregation runs in DuckDB over the frames (a few seconds for 10M
orders); only the per-customer results (one row per customer) come back to pandas.

Orders are the paid orders of ``marts.fct_orders`` (customer_key, order_date, net_amount), as a pandas frame or an Arrow
table (what the assets read from the warehouse: no Python object per key); if the frame still has
``is_paid`` it is filtered on it, so passing the whole fact table cannot count cancelled orders as purchases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.sql import money_sum

ORDER_SCHEMA = {"customer_key": "str", "order_date": "datetime64[us]", "net_amount": "float64"}
# Orders come as a pandas frame or, from the warehouse, an Arrow table: both are tables to the SQL below.
Orders = pd.DataFrame | pa.Table
ORDER_ARROW_SCHEMA = pa.schema([("customer_key", pa.string()), ("order_date", pa.timestamp("us")),
                                ("net_amount", pa.float64())])
CUSTOMER_SCHEMA = {
    "customer_key": "str", "signup_date": "datetime64[us]", "region": "str", "age_band": "str", "gender": "str",
    "acquisition_channel": "str",
}
INTERACTION_SCHEMA = {"customer_key": "str", "interaction_type": "str", "occurred_date": "datetime64[us]"}
OPPORTUNITY_STAGES = ("new", "contacted", "qualified", "proposal", "negotiation", "won")
OPPORTUNITY_SCHEMA = {
    "opportunity_id": "str", "customer_key": "str", "created_at": "datetime64[us]",
    **{f"{stage}_at": "datetime64[us]" for stage in OPPORTUNITY_STAGES},
    "lost_at": "datetime64[us]", "closed_at": "datetime64[us]",
}


# --------------------------------------------------------------------------------------------------------------------
# Shared plumbing
# --------------------------------------------------------------------------------------------------------------------

def typed_frame(df: pd.DataFrame | None, schema: dict[str, str]) -> pd.DataFrame:
    """The schema's columns with the schema's dtypes; an empty frame for None/empty input (so SQL still binds)."""
    if df is None or df.empty:
        return pd.DataFrame({col: pd.Series(dtype=dtype) for col, dtype in schema.items()})
    return df[list(schema)].astype(schema)


def typed_paid_orders(orders: Orders | None) -> Orders:
    """Typed paid orders (``is_paid`` honoured when present). An Arrow table stays one (the SQL below reads either)."""
    if isinstance(orders, pa.Table):
        if "is_paid" in orders.column_names:
            orders = orders.filter(pc.fill_null(orders["is_paid"], False))
        return orders.select(list(ORDER_SCHEMA)).cast(ORDER_ARROW_SCHEMA)
    if orders is not None and "is_paid" in orders.columns:
        orders = orders[orders["is_paid"].fillna(False).astype(bool)]
    return typed_frame(orders, ORDER_SCHEMA)


def run_sql(query: str, params: dict | None = None, **frames: Orders) -> pd.DataFrame:
    """Run ``query`` in a private in-memory DuckDB with ``frames`` visible as tables."""
    con = duckdb.connect()
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        return con.execute(query, params or {}).df()
    finally:
        con.close()


# Per-customer purchase summary as of $as_of; every segmentation below starts from it.
_CUSTOMER_SUMMARY_SQL = f"""
    SELECT customer_key,
           count(*)                                         AS purchases,
           {money_sum('net_amount')}               AS total_spend,
           date_diff('day', min(order_date)::DATE, max(order_date)::DATE) AS purchase_interval_days,
           date_diff('day', max(order_date)::DATE, $as_of)  AS days_since_last
    FROM orders
    WHERE order_date::DATE <= $as_of AND customer_key IS NOT NULL
    GROUP BY customer_key
"""


def customer_summary(orders: Orders | None, as_of: date) -> pd.DataFrame:
    """One row per buyer, sorted by customer_key: purchases, total_spend, purchase_interval_days (first -> last
    purchase) and days_since_last."""
    return run_sql(_CUSTOMER_SUMMARY_SQL + " ORDER BY customer_key", {"as_of": as_of}, orders=typed_paid_orders(orders))


def balanced_groups(n_groups: int, *sort_keys: np.ndarray) -> np.ndarray:
    """Group 1..n_groups of each row by its position when sorted ascending on ``sort_keys`` (first key most
    significant; rows still tied keep their input order). Groups are equal-sized to within one row however heavily
    the keys tie, which plain quantile cuts cannot promise (qcut fails or merges bins on repeated values)."""
    n = len(sort_keys[0])
    position = np.empty(n, dtype=np.int64)
    position[np.lexsort(sort_keys[::-1])] = np.arange(1, n + 1)  # lexsort: last key most significant, stable
    return (n_groups * position + n - 1) // max(n, 1)  # ceil(n_groups * position / n)


# --------------------------------------------------------------------------------------------------------------------
# 1. RFM
# --------------------------------------------------------------------------------------------------------------------

RFM_SEGMENTS = (
    "champions", "loyal", "potential loyalists", "new", "promising", "need attention", "about to sleep", "at risk",
    "can't lose them", "hibernating", "lost",
)

# The widely used R x F segment grid (the regex map popular in RFM tutorials: 5[4-5] champions, [3-4][4-5] loyal,
# [4-5][2-3] potential loyalists, 51 new, 41 promising, 33 need attention, 3[1-2] about to sleep, [1-2][3-4] at risk,
# [1-2]5 can't lose them, [1-2][1-2] hibernating), read on the combined FM score, with "lost" split off the
# hibernating corner at R=1 as in the 11-segment R x FM table. Key: R score; value: segment for FM = 1..5.
RFM_SEGMENT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new", "potential loyalists", "potential loyalists", "champions", "champions"),
    4: ("promising", "potential loyalists", "potential loyalists", "loyal", "loyal"),
    3: ("about to sleep", "about to sleep", "need attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at risk", "at risk", "can't lose them"),
    1: ("lost", "lost", "at risk", "at risk", "can't lose them"),
}


def fm_score(f_score, m_score):
    """Combined frequency-monetary score: mean of F and M, halves rounded up (works on ints and arrays)."""
    return (f_score + m_score + 1) // 2


# All 125 R/F/M combinations -> segment, e.g. RFM_SEGMENT_MAP["545"] == "champions".
RFM_SEGMENT_MAP: dict[str, str] = {
    f"{r}{f}{m}": RFM_SEGMENT_GRID[r][fm_score(f, m) - 1]
    for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)
}

RFM_COLUMNS = (
    "customer_key", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "rfm_score", "segment",
)


def rfm_segments(orders: Orders, as_of: date) -> pd.DataFrame:
    """RFM quintile scores (5 = best; R: most recent = 5) and the named segment of every customer who has bought.

    Quintiles are equal-count groups of a total order, so they stay balanced when most customers tie (one order
    each). Ties are broken by the other two measures, then customer_key, so scores are deterministic.
    """
    out = customer_summary(orders, as_of).rename(
        columns={"days_since_last": "recency_days", "purchases": "frequency", "total_spend": "monetary"})
    recent = -out["recency_days"].to_numpy()
    frequency, monetary = out["frequency"].to_numpy(), out["monetary"].to_numpy()
    r = balanced_groups(5, recent, frequency, monetary)
    f = balanced_groups(5, frequency, monetary, recent)
    m = balanced_groups(5, monetary, frequency, recent)
    out["r_score"], out["f_score"], out["m_score"] = r.astype(np.int8), f.astype(np.int8), m.astype(np.int8)
    # RFM_SEGMENT_MAP is ordered 111, 112, ..., 555, so a score triple indexes it directly.
    combo = (r - 1) * 25 + (f - 1) * 5 + (m - 1)
    out["rfm_score"] = pd.array(np.array(list(RFM_SEGMENT_MAP))[combo], dtype="str")
    out["segment"] = pd.array(np.array(list(RFM_SEGMENT_MAP.values()))[combo], dtype="str")
    return out[list(RFM_COLUMNS)]


# --------------------------------------------------------------------------------------------------------------------
# 2. Customer-state management (CPM)
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CpmThresholds:
    """Where the CPM grades are cut. Spend and ticket cuts default to quantiles of this customer base so the same
    defaults work in any currency; set ``high_spend`` / ``high_ticket`` to pin absolute amounts."""

    # No purchase for a full year = lapsed: covers annual and seasonal buying cycles, so a once-a-year customer
    # is not called lapsed between purchases.
    lapse_days: int = 365
    # Three purchases make a habit ("active"); two can still be a coincidence ("somewhat active").
    steady_min_purchases: int = 3
    # Buying across at least a year (first -> last purchase) makes a relationship "stable".
    stable_min_interval_days: int = 365
    # "High" spend / ticket = top 20% of repeat buyers (the Pareto cut), unless pinned below.
    high_value_quantile: float = 0.8
    high_spend: float | None = None
    high_ticket: float | None = None


CPM_ACTIVE_STATES = ("new", "somewhat active", "active", "stable", "loyal")
CPM_LAPSED_STATES = ("first-time lapsed", "lapsed", "needs retention", "ordinary retention", "important retention")
CPM_STATES = CPM_ACTIVE_STATES + CPM_LAPSED_STATES

# Grades in the order they are tested (first match wins); each grade has an active and a lapsed name.
CPM_RULES: tuple[tuple[str, str, str], ...] = (
    ("new", "first-time lapsed", "exactly one purchase"),
    ("loyal", "important retention",
     ">= steady_min_purchases purchases, interval >= stable_min_interval_days and total spend >= high spend"),
    ("stable", "ordinary retention", ">= steady_min_purchases purchases and interval >= stable_min_interval_days"),
    ("active", "needs retention", ">= steady_min_purchases purchases, or average ticket >= high ticket"),
    ("somewhat active", "lapsed", "any other repeat buyer (typically two ordinary purchases)"),
)
CPM_LAPSE_RULE = "lapsed side when days since last purchase >= lapse_days, active side otherwise"

CPM_COLUMNS = (
    "customer_key", "purchases", "total_spend", "avg_ticket", "purchase_interval_days", "days_since_last",
    "is_lapsed", "cpm_state",
)


def cpm_states(orders: Orders, as_of: date, thresholds: CpmThresholds = CpmThresholds()) -> pd.DataFrame:
    """The 10 CPM groups (see ``CPM_RULES``). The resolved spend/ticket cuts are left in ``attrs``."""
    out = customer_summary(orders, as_of)
    out["avg_ticket"] = out["total_spend"] / out["purchases"]
    out["is_lapsed"] = out["days_since_last"] >= thresholds.lapse_days
    high_spend, high_ticket = _cpm_value_cuts(out, thresholds)

    n, span = out["purchases"], out["purchase_interval_days"]
    steady = n >= thresholds.steady_min_purchases
    stable = steady & (span >= thresholds.stable_min_interval_days)
    conditions = [  # one per CPM_RULES row, same order; the last rule is the default
        n == 1,
        stable & (out["total_spend"] >= high_spend),
        stable,
        steady | (out["avg_ticket"] >= high_ticket),
    ]
    grade = np.select(conditions, np.arange(len(conditions)), default=len(conditions))  # index into CPM_RULES
    active_name, lapsed_name = (np.array([rule[side] for rule in CPM_RULES]) for side in (0, 1))
    out["cpm_state"] = pd.array(np.where(out["is_lapsed"], lapsed_name[grade], active_name[grade]), dtype="str")
    out.attrs.update(high_spend=high_spend, high_ticket=high_ticket)
    return out[list(CPM_COLUMNS)]


def _cpm_value_cuts(summary: pd.DataFrame, t: CpmThresholds) -> tuple[float, float]:
    """High-spend and high-ticket cuts: pinned values, else the quantile among repeat buyers (inf if there are none)."""
    repeat = summary[summary["purchases"] >= 2]

    def cut(pinned: float | None, column: str) -> float:
        if pinned is not None:
            return pinned
        return float(repeat[column].quantile(t.high_value_quantile)) if len(repeat) else math.inf

    return cut(t.high_spend, "total_spend"), cut(t.high_ticket, "avg_ticket")


# --------------------------------------------------------------------------------------------------------------------
# 3. Spend deciles / Pareto
# --------------------------------------------------------------------------------------------------------------------

DECILE_COLUMNS = ("decile", "customers", "orders", "revenue", "revenue_share", "cumulative_share", "avg_ticket")


@dataclass(frozen=True)
class SpendDeciles:
    table: pd.DataFrame
    top20_share: float  # share of revenue from the top ceil(20%) of customers; NaN when nobody bought


def spend_deciles(orders: Orders, as_of: date) -> SpendDeciles:
    """Customers ranked by spend into 10 equal-count groups (decile 1 = top spenders; sizes differ by at most 1)."""
    customers = customer_summary(orders, as_of)
    spend = customers["total_spend"].to_numpy()
    customers["decile"] = balanced_groups(10, -spend)
    table = customers.groupby("decile", as_index=False).agg(
        customers=("total_spend", "size"), orders=("purchases", "sum"), revenue=("total_spend", "sum"))
    cumulative = table["revenue"].cumsum()
    total = cumulative.iloc[-1] if len(table) else np.nan  # the deciles' own sum, so the last cumulative share is 1
    table["revenue_share"] = table["revenue"] / total
    table["cumulative_share"] = cumulative / total
    table["avg_ticket"] = table["revenue"] / table["orders"]
    top = np.sort(spend)[::-1][: math.ceil(0.2 * len(spend))]
    top20 = top.sum() / spend.sum() if len(spend) else math.nan
    return SpendDeciles(table[list(DECILE_COLUMNS)], float(top20))


# --------------------------------------------------------------------------------------------------------------------
# 4. Lifecycle stage
# --------------------------------------------------------------------------------------------------------------------

LIFECYCLE_STAGES = ("potential", "interested", "intent", "customer", "loyal", "churned")
ENGAGEMENT_TYPES = ("email_open", "email_click", "web_visit", "chat")  # customer-initiated; sends/calls are ours

# Tested in this order, first match wins. Order history decides for anyone who ever bought; funnel signals only
# grade people who have not bought (yet).
LIFECYCLE_RULES: tuple[tuple[str, str], ...] = (
    ("loyal", ">= loyal_min_orders (3) paid orders and last paid order < loyal_active_days (180) ago"),
    ("churned", "has paid orders but none in the last churn_after_days (365)"),
    ("customer", ">= 1 paid order"),
    ("intent", "an opportunity open at qualified stage or beyond, or one that ever reached proposal"),
    ("interested", "engaged (email open/click, web visit, chat) in the last engaged_days (90), "
                   "or an opportunity open at new/contacted"),
    ("potential", "known contact or lead with none of the above"),
)

LIFECYCLE_COLUMNS = (
    "customer_key", "is_lead", "paid_orders", "days_since_last_order", "engaged_recently", "opportunity_stage",
    "lifecycle_stage",
)

# Opportunity stage timestamps are read as of $as_of (the ``stage`` column is today's, not the as-of one).
_STAGE_REACHED = "CASE " + " ".join(
    f"WHEN {stage}_at::DATE <= $as_of THEN {order}"
    for order, stage in reversed(list(enumerate(OPPORTUNITY_STAGES, start=1)))
) + " ELSE 1 END"
_STAGE_NAME = "CASE furthest " + " ".join(
    f"WHEN {order} THEN '{stage}'" for order, stage in enumerate(OPPORTUNITY_STAGES, start=1)) + " END"
_QUALIFIED, _PROPOSAL = OPPORTUNITY_STAGES.index("qualified") + 1, OPPORTUNITY_STAGES.index("proposal") + 1

_LIFECYCLE_SQL = f"""
    WITH paid AS ({_CUSTOMER_SUMMARY_SQL}),
    engaged AS (
        SELECT DISTINCT customer_key FROM interactions
        WHERE list_contains($engagement_types, interaction_type)
          AND occurred_date::DATE <= $as_of AND occurred_date::DATE > $as_of - $engaged_days),
    opps AS (
        SELECT coalesce(customer_key, 'lead:' || opportunity_id) AS customer_key,
               customer_key IS NULL AS is_lead,
               {_STAGE_REACHED} AS reached,
               NOT coalesce(coalesce(closed_at, won_at, lost_at)::DATE <= $as_of, FALSE) AS is_open
        FROM opportunities WHERE created_at::DATE <= $as_of),
    funnel AS (
        SELECT customer_key, bool_and(is_lead) AS is_lead, max(reached) AS furthest,
               bool_or((is_open AND reached >= {_QUALIFIED}) OR reached >= {_PROPOSAL}) AS intent,
               bool_or(is_open) AS open_opportunity
        FROM opps GROUP BY customer_key),
    population AS (
        SELECT customer_key FROM customers WHERE coalesce(signup_date::DATE <= $as_of, TRUE)
        UNION SELECT customer_key FROM paid
        UNION SELECT customer_key FROM funnel)
    SELECT p.customer_key,
           coalesce(f.is_lead, FALSE)           AS is_lead,
           coalesce(o.purchases, 0)             AS paid_orders,
           o.days_since_last                    AS days_since_last_order,
           e.customer_key IS NOT NULL           AS engaged_recently,
           {_STAGE_NAME}                        AS opportunity_stage,
           CASE WHEN o.purchases >= $loyal_min_orders AND o.days_since_last < $loyal_active_days THEN 'loyal'
                WHEN o.days_since_last >= $churn_after_days THEN 'churned'
                WHEN o.purchases >= 1 THEN 'customer'
                WHEN f.intent THEN 'intent'
                WHEN e.customer_key IS NOT NULL OR f.open_opportunity THEN 'interested'
                ELSE 'potential' END            AS lifecycle_stage
    FROM population p
    LEFT JOIN paid o USING (customer_key)
    LEFT JOIN engaged e USING (customer_key)
    LEFT JOIN funnel f USING (customer_key)
    ORDER BY p.customer_key
"""


def lifecycle_stages(
    customers: pd.DataFrame,
    orders: Orders,
    interactions: pd.DataFrame | None,
    opportunities: pd.DataFrame | None,
    as_of: date,
    churn_after_days: int = 365,
    *,
    loyal_min_orders: int = 3,
    loyal_active_days: int = 180,
    engaged_days: int = 90,
) -> pd.DataFrame:
    """Lifecycle stage of every known customer and of every lead without one ('lead:<opportunity_id>')."""
    params = {
        "as_of": as_of, "churn_after_days": churn_after_days, "loyal_min_orders": loyal_min_orders,
        "loyal_active_days": loyal_active_days, "engaged_days": engaged_days,
        "engagement_types": list(ENGAGEMENT_TYPES),
    }
    return run_sql(
        _LIFECYCLE_SQL, params,
        customers=typed_frame(customers, {"customer_key": "str", "signup_date": "datetime64[us]"}),
        orders=typed_paid_orders(orders),
        interactions=typed_frame(interactions, INTERACTION_SCHEMA),
        opportunities=typed_frame(opportunities, OPPORTUNITY_SCHEMA),
    )[list(LIFECYCLE_COLUMNS)]


# --------------------------------------------------------------------------------------------------------------------
# 5. Demographic cuts
# --------------------------------------------------------------------------------------------------------------------

DEMOGRAPHIC_DIMENSIONS = ("region", "age_band", "gender", "acquisition_channel")
DEMOGRAPHIC_COLUMNS = (
    "dimension", "value", "customers", "buyers", "revenue", "repeat_rate", "avg_clv", "total_clv",
)

_DEMOGRAPHIC_SQL = f"""
    WITH bought AS ({_CUSTOMER_SUMMARY_SQL}),
    per_customer AS (
        SELECT {", ".join(f"coalesce({d}, 'unknown') AS {d}" for d in DEMOGRAPHIC_DIMENSIONS)},
               b.purchases, b.total_spend AS revenue, v.clv_12m
        FROM customers c
        LEFT JOIN bought b USING (customer_key)
        LEFT JOIN clv v USING (customer_key)
        WHERE coalesce(c.signup_date::DATE <= $as_of, TRUE)),
    long AS (UNPIVOT per_customer ON {", ".join(DEMOGRAPHIC_DIMENSIONS)} INTO NAME dimension VALUE value)
    SELECT dimension, value,
           count(*)                                         AS customers,
           count(purchases)                                 AS buyers,
           coalesce({money_sum('revenue')}, 0)     AS revenue,
           count(*) FILTER (purchases >= 2) / count(purchases) AS repeat_rate,
           avg(clv_12m)                                     AS avg_clv,
           sum(clv_12m)                                     AS total_clv
    FROM long
    GROUP BY dimension, value
    ORDER BY list_position($dimensions, dimension), customers DESC, value
"""


def demographic_cuts(
    customers: pd.DataFrame,
    orders: Orders,
    clv: pd.DataFrame | None = None,
    as_of: date | None = None,
) -> pd.DataFrame:
    """Customers, buyers, revenue, repeat rate and CLV by region, age band, gender and acquisition channel (long).

    ``as_of`` (None = everything in the frames) drops later orders and customers who signed up later. Missing
    attribute values count as 'unknown'; repeat_rate is NaN for a group without buyers; CLV columns are null
    when ``clv`` (customer_key, clv_12m) is None or empty.
    """
    frames = {
        "customers": typed_frame(customers, CUSTOMER_SCHEMA),
        "orders": typed_paid_orders(orders),
        "clv": typed_frame(clv, {"customer_key": "str", "clv_12m": "float64"}),
    }
    params = {"as_of": as_of or date.max, "dimensions": list(DEMOGRAPHIC_DIMENSIONS)}
    out = run_sql(_DEMOGRAPHIC_SQL, params, **frames)
    return out[list(DEMOGRAPHIC_COLUMNS)].astype({"avg_clv": "float64", "total_clv": "float64"})
