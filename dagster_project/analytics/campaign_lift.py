"""What a campaign caused: extra revenue and purchases of its participants over matched customers it reached.

Who takes part in a campaign is self-selected: customers who open e-mails are the ones who buy anyway (in the
sample generator, opening depends on a hidden churn state that also stops purchases). Comparing participants with
every non-participant, or even with every reached non-participant, mixes that selection into the effect. Here:

* **Control pool**: customers the campaign reached (any interaction carrying its id: an e-mail sent, a visit) who
  did not take part (no ``PARTICIPATION_TYPES`` interaction). Customers it never reached are no control: nobody
  knows whether they would have taken part. A campaign without reach data (non-e-mail channels typically record
  none) gets no estimate and a note saying so.
* **Matching** on behaviour before the campaign start (``FEATURES``): orders and spend (lifetime, 365 and 90
  days), days since the last order, tenure, and engagement (participations, e-mails received, days since the last
  participation, web visits over 365 / 90 / 30 days and since the last, chats), on a log scale with three ratios that
  show a customer drifting away (``design_matrix``). A logistic propensity score (scikit-learn) of taking part given
  those; participants and controls are compared within strata of equal numbers of participants along the score
  (subclassification, Rosenbaum & Rubin 1984; up to ``MAX_STRATA`` strata of at least ``MIN_PER_STRATUM``
  participants), so each participant is compared with reached customers who were as likely to take part. Controls
  below the lowest participant's score are outside the common support and dropped, as are the participants of a
  stratum with fewer than two controls. Why this design: exact strata on coarsened bins empty out with this many
  features; nearest-neighbour matching has no simple valid interval (the bootstrap fails for it, Abadie & Imbens
  2008); strata along the score keep every participant with enough controls and give an analytic interval.
* **Effect** = participant-weighted mean over strata of (participants' mean outcome - controls' mean outcome), each
  outcome first adjusted by a ridge regression on the features fitted on the controls (bias-corrected matching,
  Abadie & Imbens 2011), which removes the imbalance left inside the strata and narrows the interval. Outcomes:
  revenue and paid purchases in the window [start, start + attribution days), cut at ``as_of``. The 95% interval is
  analytic (within-stratum variances); it treats the score and the adjustment as known.
* **Assumption**: whatever makes a customer take part and buy is revealed by the pre-campaign behaviour above (no
  hidden cause beyond it). It cannot be checked directly; the placebo below checks its consequence.
* **Placebo** (the out-of-sample check, usable on real data): the same estimator as if the campaign had started
  one window earlier, with features from before that fake start and the outcome in [fake start, start), a period
  the campaign cannot have influenced. Its difference should be ~0; the naive comparisons' is their bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dagster_project.analytics import campaign_lift_reuse, customer_measures
from dagster_project.analytics.customer_measures import INTERACTION_COLUMNS
from dagster_project.analytics.marts_sql import marts_exist
from dagster_project.sql import money_sum

# Interactions that show a customer took part in a campaign; anything else carrying the campaign id (an e-mail that
# was only sent, a landing-page visit) means the campaign reached the customer.
PARTICIPATION_TYPES = ("email_open", "email_click", "call", "meeting", "chat")
FEATURES = (
    "orders_lifetime", "spend_lifetime", "days_since_last_order", "has_ordered", "tenure_days", "orders_365",
    "spend_365", "orders_90", "participations_365", "emails_received_365", "days_since_last_participation",
    "visits_365", "visits_90", "visits_30", "days_since_last_visit", "chats_90",
)
OUTCOMES = ("revenue", "purchases")
MAX_STRATA = 20
MIN_PER_STRATUM = 20  # participants per stratum, so each stratum's mean is worth comparing
MIN_GROUP = 10  # participants and controls a campaign needs for an estimate
Z_95 = 1.959964

PANEL_COLUMNS = ("campaign_id", "period", "window_days", "customer_key", "reached", "participant", *FEATURES,
                 *OUTCOMES)

# The campaigns the lift is estimated for: started by as_of, with reach data. A campaign's window is cut at as_of, so
# participants and controls are observed for the same days.
_CAMPAIGNS_SQL = """
SELECT campaign_id, start_date,
       CAST(least(start_date + $days, $as_of + 1) - start_date AS INTEGER) AS window_days
FROM marts.dim_campaigns
WHERE start_date IS NOT NULL AND start_date <= $as_of
  AND campaign_id IN (SELECT campaign_id FROM marts.fct_interactions
                      WHERE campaign_id IS NOT NULL AND customer_key IS NOT NULL AND occurred_date <= $as_of)
ORDER BY campaign_id
"""

# The panel's two periods and where each starts: the campaign's own window, and the placebo one window earlier.
_ORIGINS = {"campaign": "CAST($start_date AS DATE)", "placebo": "CAST($start_date AS DATE) - $window_days"}
_UNION = "\n    UNION ALL\n    "

# One campaign's panel: one row per customer existing before the origin x period: 'campaign' (features before the
# start, outcome in [start, window end)) and 'placebo' (the same one window earlier). The features are the customer
# measures as of the day before the origin (customer_measures, today's order status); their days since an event count
# to the origin.
_PARTICIPATIONS = " + ".join(f"m.{INTERACTION_COLUMNS[t]}_365d" for t in PARTICIPATION_TYPES)
_LAST_PARTICIPATION = ", ".join(f"m.days_since_last_{t}" for t in PARTICIPATION_TYPES)
_PANEL_SQL = f"""
WITH touches AS (
    SELECT customer_key, bool_or(interaction_type IN {PARTICIPATION_TYPES}) AS participant
    FROM marts.fct_interactions
    WHERE campaign_id = $campaign_id AND customer_key IS NOT NULL AND occurred_date <= $as_of
    GROUP BY ALL
),
origins AS (
    {_UNION.join(f"SELECT '{period}' AS period, {origin} AS origin" for period, origin in _ORIGINS.items())}
),
population AS (
    SELECT o.period, o.origin, cu.customer_key, cu.signup_date,
           t.customer_key IS NOT NULL AS reached, coalesce(t.participant, false) AS participant
    FROM origins AS o
    -- customers who existed before the origin: a first order inside the window is no effect of anything
    JOIN marts.dim_customers AS cu ON cu.signup_date IS NULL OR cu.signup_date < o.origin
    LEFT JOIN touches AS t ON t.customer_key = cu.customer_key
),
-- Each origin's measures in a call of its own: a lateral call over both origins had DuckDB group both origins' events
-- in one hash table, twice the groups, which spilled to disk at a million customers.
before_origin AS (
    {_UNION.join(f"SELECT '{period}' AS period, m.* FROM {customer_measures.MEASURES}({origin} - 1) AS m"
                 for period, origin in _ORIGINS.items())}
),
outcomes AS (
    SELECT p.period, p.customer_key, {money_sum('o.amount')} AS revenue, count(*) AS purchases
    FROM population AS p
    JOIN marts.fct_orders AS o ON o.customer_key = p.customer_key AND o.is_paid
     AND o.order_date >= p.origin AND o.order_date < p.origin + $window_days AND o.order_date <= $as_of
    GROUP BY ALL
)
SELECT $campaign_id AS campaign_id, p.period, $window_days AS window_days, p.customer_key, p.reached, p.participant,
       coalesce(m.orders_count, 0) AS orders_lifetime,
       coalesce(m.revenue, 0) AS spend_lifetime,
       coalesce(m.recency_days + 1, 3650) AS days_since_last_order,
       coalesce(m.orders_count, 0) > 0 AS has_ordered,
       coalesce(greatest(p.origin - p.signup_date, m.tenure_days + 1), 0) AS tenure_days,
       coalesce(m.orders_365d, 0) AS orders_365,
       coalesce(m.revenue_365d, 0) AS spend_365,
       coalesce(m.orders_90d, 0) AS orders_90,
       coalesce({_PARTICIPATIONS}, 0) AS participations_365,
       coalesce(m.emails_sent_365d, 0) AS emails_received_365,
       coalesce(least({_LAST_PARTICIPATION}) + 1, 730) AS days_since_last_participation,
       coalesce(m.web_visits_365d, 0) AS visits_365,
       coalesce(m.web_visits_90d, 0) AS visits_90,
       coalesce(m.web_visits_30d, 0) AS visits_30,
       coalesce(m.days_since_last_web_visit + 1, 730) AS days_since_last_visit,
       coalesce(m.chats_90d, 0) AS chats_90,
       coalesce(w.revenue, 0) AS revenue,
       coalesce(w.purchases, 0) AS purchases
FROM population AS p
LEFT JOIN before_origin AS m ON m.period = p.period AND m.customer_key = p.customer_key
LEFT JOIN outcomes AS w ON w.period = p.period AND w.customer_key = p.customer_key
ORDER BY p.period, p.customer_key
"""


@dataclass(frozen=True)
class Lifts:
    """``campaign_lift`` of every campaign with reach data, and how many were estimated now or reused."""

    table: pd.DataFrame
    estimated: int = 0
    reused: int = 0


def lift_by_campaign(con: duckdb.DuckDBPyConnection, as_of: date, attribution_days: int, code: str | None = None,
                     reuse: bool = True) -> Lifts:
    """``campaign_lift`` of each campaign's panel, one campaign at a time: all of them at once hold every customer
    twice per campaign, more than pandas should hold for a large export.

    With ``code`` (the version of the code), the estimates are saved with their inputs' fingerprints (which cover the
    settings that change the marts: currency, secret, as-of date), and with ``reuse`` a campaign whose inputs did not
    change since the saved estimate is not estimated again (campaign_lift_reuse)."""
    if not marts_exist(con, _PANEL_SQL):
        return Lifts(lift_frame([]))
    params = {"as_of": as_of, "days": int(attribution_days)}
    campaigns = con.execute(_CAMPAIGNS_SQL, params).fetchall()
    inputs = campaign_lift_reuse.fingerprints(con, _CAMPAIGNS_SQL, as_of, attribution_days) if code else {}
    saved = campaign_lift_reuse.load(con, code) if code and reuse else campaign_lift_reuse.Saved({}, {})
    rows, reused = [], 0
    for campaign_id, start_date, window_days in campaigns:
        if campaign_id in saved.inputs and saved.inputs[campaign_id] == inputs.get(campaign_id):
            rows.append(saved.rows[campaign_id])
            reused += 1
            continue
        panel = con.execute(_PANEL_SQL, {"as_of": as_of, "campaign_id": campaign_id, "start_date": start_date,
                                         "window_days": window_days}).df()
        rows.extend(campaign_lift(panel).to_dict("records"))
    table = lift_frame(rows)
    if code:
        campaign_lift_reuse.save(con, code, inputs, table)
    return Lifts(table, len(campaigns) - reused, reused)


def lift_frame(rows: list[dict]) -> pd.DataFrame:
    """The lift rows as one frame, every figure a float (a figure a campaign lacks is NaN), whether estimated now or
    read back from the saved ones."""
    frame = pd.DataFrame(rows, columns=list(LIFT_COLUMNS))
    figures = [c for c in LIFT_COLUMNS if c not in ("campaign_id", "lift_note")]
    return frame.astype(dict.fromkeys(figures, "float64") | {"campaign_id": "object", "lift_note": "object"})


def design_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The features on a log scale, plus three ratios that show a customer drifting away before the counts do: days
    since the last order over the customer's usual interval, recent over usual web visits, and the share of e-mails
    the customer responded to."""
    x = frame[list(FEATURES)].astype(float)
    usual_interval = (x["tenure_days"] + 1) / x["orders_lifetime"].clip(lower=1)
    x = x.assign(overdue=x["days_since_last_order"] / usual_interval,
                 visit_trend=(x["visits_90"] + 0.5) / (x["visits_365"] / 4 + 0.5),
                 response_rate=(x["participations_365"] + 0.5) / (x["emails_received_365"] + 1))
    counts = x.drop(columns="has_ordered")
    return np.column_stack([np.log1p(counts.clip(lower=0).to_numpy()), x["has_ordered"].to_numpy()])


@dataclass(frozen=True)
class Matched:
    """A matched comparison: participants (and controls) kept, the participants' mean outcomes, and per outcome the
    effect (participants minus matched controls, regression-adjusted) with its standard error."""

    participants: int
    controls: int
    participant_mean: dict[str, float]
    effect: dict[str, float]
    se: dict[str, float]


def matched_effect(reached: pd.DataFrame, outcomes: tuple[str, ...] = OUTCOMES) -> Matched | None:
    """Participants vs reached non-participants within propensity strata, regression-adjusted (module docstring);
    None when either group has fewer than ``MIN_GROUP`` customers, before or after trimming."""
    treated = reached["participant"].to_numpy(bool)
    if treated.sum() < MIN_GROUP or (~treated).sum() < MIN_GROUP:
        return None
    x = design_matrix(reached)
    # Newton-Cholesky: exact and fast for a few features and many rows.
    propensity = make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cholesky", max_iter=200))
    score = propensity.fit(x, treated).decision_function(x)
    n_strata = int(np.clip(treated.sum() // MIN_PER_STRATUM, 1, MAX_STRATA))
    stratum = np.searchsorted(np.quantile(score[treated], np.linspace(0, 1, n_strata + 1)[1:-1]), score)
    in_support = score >= score[treated].min()  # controls less likely to take part than any participant
    n_treated, n_controls = (np.bincount(stratum[in_support & group], minlength=n_strata)
                             for group in (treated, ~treated))
    usable = np.flatnonzero((n_treated >= 2) & (n_controls >= 2))
    kept = in_support & np.isin(stratum, usable)
    if treated[kept].sum() < MIN_GROUP:
        return None
    controls = kept & ~treated
    weights = pd.Series(n_treated[usable] / n_treated[usable].sum(), index=usable)
    effect, se, means = {}, {}, {}
    for outcome in outcomes:
        y = reached[outcome].to_numpy(float)
        adjusted = y - make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x[controls], y[controls]).predict(x)
        groups = pd.DataFrame({"stratum": stratum[kept], "treated": treated[kept], "y": adjusted[kept]})
        stats = groups.groupby(["stratum", "treated"])["y"].agg(["mean", "var", "count"]).unstack("treated")
        difference = stats[("mean", True)] - stats[("mean", False)]
        variance = stats[("var", True)] / stats[("count", True)] + stats[("var", False)] / stats[("count", False)]
        effect[outcome] = float((weights * difference).sum())
        se[outcome] = float(np.sqrt((weights ** 2 * variance).sum()))
        means[outcome] = float(y[kept & treated].mean())
    return Matched(int(treated[kept].sum()), int(controls.sum()), means, effect, se)


LIFT_COLUMNS = (
    "campaign_id", "window_days", "matched_participants", "matched_controls", "participant_revenue_per_customer",
    "control_revenue_per_customer", "revenue_lift", "revenue_lift_ci_low", "revenue_lift_ci_high",
    "incremental_revenue", "purchase_lift", "purchase_lift_ci_low", "purchase_lift_ci_high",
    "baseline_all_difference", "baseline_reached_difference", "placebo_participants",
    "placebo_participant_revenue", "placebo_difference", "placebo_baseline_all_difference",
    "placebo_baseline_reached_difference", "lift_note",
)
TOO_FEW = f"too few participants or reached non-participants to compare (at least {MIN_GROUP} of each)"


def _difference(frame: pd.DataFrame) -> float:
    """Participants' mean revenue minus the other customers' of the frame, NaN without both groups."""
    joined = frame["participant"].to_numpy(bool)
    if joined.all() or not joined.any():
        return float("nan")
    y = frame["revenue"].to_numpy(float)
    return float(y[joined].mean() - y[~joined].mean())


def _order_strata_difference(frame: pd.DataFrame) -> float:
    """The previous method, kept as the baseline: participants vs every non-participant existing at the start
    (reached or not), within strata of paid orders in the 365 days before (0, 1, 2-3, 4+) and days since the last
    of them (<= 90, 91-365, none), averaged with participant weights over strata holding both groups."""
    orders = frame["orders_365"].to_numpy()
    frequency = np.select([orders == 0, orders == 1, orders <= 3], [0, 1, 2], 3)
    recency = np.where(orders == 0, 2, np.where(frame["days_since_last_order"].to_numpy() <= 90, 0, 1))
    groups = pd.DataFrame({"stratum": frequency * 3 + recency, "participant": frame["participant"].to_numpy(bool),
                           "y": frame["revenue"].to_numpy(float)})
    stats = groups.groupby(["stratum", "participant"])["y"].agg(["mean", "count"]).unstack("participant")
    # A window with nobody taking part (or everybody) has no comparison to make.
    if not {("count", True), ("count", False)} <= set(stats.columns) or stats.dropna().empty:
        return float("nan")
    stats = stats.dropna()
    weights = stats[("count", True)] / stats[("count", True)].sum()
    return float((weights * (stats[("mean", True)] - stats[("mean", False)])).sum())


def campaign_lift(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per campaign of the panel: the matched effect on revenue and purchases with 95% intervals, the two
    baselines (participants vs every non-participant within order-count x recency strata, the previous method; vs
    reached non-participants, unmatched), and the placebo window's matched and baseline differences."""
    rows = []
    for campaign_id, frame in panel.groupby("campaign_id", sort=True):
        real, fake = (frame[frame["period"] == period] for period in ("campaign", "placebo"))
        row = {"campaign_id": campaign_id, "window_days": int(frame["window_days"].iloc[0]),
               "baseline_all_difference": _order_strata_difference(real),
               "baseline_reached_difference": _difference(real[real["reached"]]),
               "placebo_baseline_all_difference": _order_strata_difference(fake),
               "placebo_baseline_reached_difference": _difference(fake[fake["reached"]])}
        matched = matched_effect(real[real["reached"]])
        if matched is None:
            row["lift_note"] = TOO_FEW
        else:
            revenue, purchases = (matched.effect[o] for o in OUTCOMES)
            row |= {
                "matched_participants": matched.participants, "matched_controls": matched.controls,
                "participant_revenue_per_customer": matched.participant_mean["revenue"],
                "control_revenue_per_customer": matched.participant_mean["revenue"] - revenue,
                "revenue_lift": revenue, "revenue_lift_ci_low": revenue - Z_95 * matched.se["revenue"],
                "revenue_lift_ci_high": revenue + Z_95 * matched.se["revenue"],
                "incremental_revenue": revenue * matched.participants,
                "purchase_lift": purchases, "purchase_lift_ci_low": purchases - Z_95 * matched.se["purchases"],
                "purchase_lift_ci_high": purchases + Z_95 * matched.se["purchases"],
            }
        placebo = matched_effect(fake[fake["reached"]], ("revenue",))
        if placebo is not None:
            row |= {"placebo_participants": placebo.participants,
                    "placebo_participant_revenue": placebo.participant_mean["revenue"],
                    "placebo_difference": placebo.effect["revenue"]}
        rows.append(row)
    return pd.DataFrame(rows, columns=list(LIFT_COLUMNS))
