"""Churn risk: LightGBM on point-in-time features from the marts, judged against the BG/NBD p-alive baseline.

Label: a customer with at least one paid order on or before a cutoff *churns* when they place no paid order in the
``horizon_days`` after it. Features are computed in DuckDB as of the cutoff (bound as a query parameter), so one
query serves training (past cutoffs) and scoring (the as-of date).

Time layout of ``run_churn`` (H = horizon, E = as_of - H, s = cutoff spacing, k = 0 .. n_training_cutoffs - 1):

* validation fit: trained on cutoffs E - H - k*s, whose label windows all end on or before E; evaluated at cutoff E,
  whose labels are fully observed by as_of. Nothing is tuned on E (fixed hyper-parameters; early stopping uses a
  customer split of the training cutoffs).
* production fit: trained on cutoffs E - k*s (label windows end on or before as_of); scores customers as of as_of.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from dagster_project.analytics.model_runs import ModelRun

MODEL_NAME = "churn_lightgbm"
LIBRARIES = ("lightgbm", "scikit-learn")

CATEGORICAL_FEATURES = ("age_band", "region", "gender", "acquisition_channel")
BGNBD_FEATURES = ("p_alive", "expected_purchases_90d")

# Fixed, conventional settings: they are never tuned on the evaluation window. Only the number of rounds is chosen,
# by early stopping on a customer split carved from the training cutoffs.
LGB_PARAMS = {
    "objective": "binary",
    "metric": "binary_logloss",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 63,
    "num_threads": 2,
    "verbose": -1,
}
MAX_ROUNDS = 300
EARLY_STOPPING_ROUNDS = 20
EARLY_STOPPING_SHARE = 5  # one customer in five (by key hash) is held out for early stopping

# Suggested action per driver feature (the first driver of a medium/high-risk customer picks the action):
#   purchase lapse (recency, falling orders/spend, low BG/NBD p-alive)  -> win-back offer
#   unresolved/frequent tickets, low satisfaction, cancellations        -> service call
#   low NPS                                                             -> account review
#   falling e-mail opens/clicks, fewer visits or contacts               -> re-engagement campaign
#   anything else (demographics, tenure)                                -> standard retention programme
_ACTION_GROUPS = {
    "win-back offer": (
        "recency_days", "frequency", "revenue_total", "avg_order_value", "avg_days_between_orders",
        "orders_30d", "orders_90d", "orders_365d", "revenue_30d", "revenue_90d", "revenue_365d",
        "orders_trend_90d", "revenue_trend_90d", "p_alive", "expected_purchases_90d",
    ),
    "service call": (
        "open_tickets", "tickets_90d", "tickets_365d", "avg_satisfaction", "cancelled_orders", "refunded_orders",
    ),
    "account review": ("last_nps",),
    "re-engagement campaign": (
        "email_opens_30d", "email_opens_90d", "email_opens_trend_90d", "email_clicks_30d", "email_clicks_90d",
        "email_open_rate_90d", "emails_sent_90d", "web_visits_30d", "web_visits_90d", "calls_30d", "calls_90d",
        "chats_30d", "chats_90d", "days_since_last_interaction",
    ),
}
SUGGESTED_ACTIONS = {feature: action for action, features in _ACTION_GROUPS.items() for feature in features}
DEFAULT_ACTION = "standard retention programme"
NO_ACTION = "no action"

SCORE_COLUMNS = (
    "customer_key", "churn_probability", "risk_band", "driver_1", "driver_2", "driver_3", "main_driver_feature",
    "suggested_action", "clv_12m", "high_value", "marketing_consent", "at_risk_high_value", "on_watchlist",
)
WATCHLIST_COLUMNS = (
    "customer_key", "clv_12m", "churn_probability", "value_at_risk", "risk_band", "main_driver", "suggested_action",
)
CALIBRATION_COLUMNS = (
    "decile", "n", "mean_predicted", "observed_rate", "baseline_mean_predicted", "baseline_observed_rate",
)


@dataclass
class ChurnConfig:
    horizon_days: int = 90
    n_training_cutoffs: int = 6
    cutoff_spacing_days: int = 30
    max_training_rows: int = 400_000  # across all training cutoffs; customers are sampled per cutoff above it
    seed: int = 0
    # Risk bands by predicted churn probability: low < 0.4 <= medium < 0.7 <= high.
    risk_thresholds: tuple[float, float] = (0.4, 0.7)
    # "Valuable" = clv_12m at or above this quantile of the scored customers' CLV (top 20%).
    clv_top_quantile: float = 0.8
    # Fewer churners or non-churners than this in a training set (or fewer rows than 10x it) -> no fit.
    min_class_rows: int = 20


@dataclass(frozen=True)
class CutoffPlan:
    validation_training: tuple[date, ...]
    evaluation: date
    production_training: tuple[date, ...]


@dataclass
class ChurnResult:
    scores: pd.DataFrame
    watchlist: pd.DataFrame
    evaluation: dict
    calibration: pd.DataFrame
    runs: list[ModelRun] = field(default_factory=list)
    note: str | None = None


# --------------------------------------------------------------------------------------------------- features

# Ages are days before the cutoff (0 = on the cutoff), so "last 30 days" is age < 30. Only events dated on or before
# the cutoff are read; satisfaction counts once the ticket is resolved, a ticket resolved after the cutoff is open.
_FEATURES_SQL = """
WITH orders AS (
    SELECT customer_key, is_paid, status, amount, $cutoff::DATE - order_date AS age
    FROM marts.fct_orders
    WHERE order_date <= $cutoff::DATE
),
order_features AS (
    SELECT
        customer_key,
        min(age) FILTER (WHERE is_paid) AS recency_days,
        count(*) FILTER (WHERE is_paid) AS frequency,
        sum(amount) FILTER (WHERE is_paid) AS revenue_total,
        avg(amount) FILTER (WHERE is_paid) AS avg_order_value,
        max(age) FILTER (WHERE is_paid) AS tenure_days,
        (max(age) FILTER (WHERE is_paid) - min(age) FILTER (WHERE is_paid))
            / nullif(count(*) FILTER (WHERE is_paid) - 1, 0) AS avg_days_between_orders,
        count(*) FILTER (WHERE is_paid AND age < 30) AS orders_30d,
        count(*) FILTER (WHERE is_paid AND age < 90) AS orders_90d,
        count(*) FILTER (WHERE is_paid AND age < 365) AS orders_365d,
        coalesce(sum(amount) FILTER (WHERE is_paid AND age < 30), 0) AS revenue_30d,
        coalesce(sum(amount) FILTER (WHERE is_paid AND age < 90), 0) AS revenue_90d,
        coalesce(sum(amount) FILTER (WHERE is_paid AND age < 365), 0) AS revenue_365d,
        count(*) FILTER (WHERE is_paid AND age < 90)
            - count(*) FILTER (WHERE is_paid AND age >= 90 AND age < 180) AS orders_trend_90d,
        coalesce(sum(amount) FILTER (WHERE is_paid AND age < 90), 0)
            - coalesce(sum(amount) FILTER (WHERE is_paid AND age >= 90 AND age < 180), 0) AS revenue_trend_90d,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled_orders,
        count(*) FILTER (WHERE status = 'refunded') AS refunded_orders
    FROM orders
    GROUP BY customer_key
    HAVING count(*) FILTER (WHERE is_paid) > 0
),
interactions AS (
    SELECT customer_key, interaction_type AS kind, $cutoff::DATE - occurred_date AS age
    FROM marts.fct_interactions
    WHERE occurred_date <= $cutoff::DATE
),
interaction_counts AS (
    SELECT
        customer_key,
        count(*) FILTER (WHERE kind = 'email_open' AND age < 30) AS email_opens_30d,
        count(*) FILTER (WHERE kind = 'email_open' AND age < 90) AS email_opens_90d,
        count(*) FILTER (WHERE kind = 'email_open' AND age < 90)
            - count(*) FILTER (WHERE kind = 'email_open' AND age >= 90 AND age < 180) AS email_opens_trend_90d,
        count(*) FILTER (WHERE kind = 'email_click' AND age < 30) AS email_clicks_30d,
        count(*) FILTER (WHERE kind = 'email_click' AND age < 90) AS email_clicks_90d,
        count(*) FILTER (WHERE kind = 'email_sent' AND age < 90) AS emails_sent_90d,
        count(*) FILTER (WHERE kind = 'web_visit' AND age < 30) AS web_visits_30d,
        count(*) FILTER (WHERE kind = 'web_visit' AND age < 90) AS web_visits_90d,
        count(*) FILTER (WHERE kind = 'call' AND age < 30) AS calls_30d,
        count(*) FILTER (WHERE kind = 'call' AND age < 90) AS calls_90d,
        count(*) FILTER (WHERE kind = 'chat' AND age < 30) AS chats_30d,
        count(*) FILTER (WHERE kind = 'chat' AND age < 90) AS chats_90d
    FROM interactions
    GROUP BY customer_key
),
-- Sent e-mails are our activity, not the customer's, so they do not count as engagement.
last_engagement AS (
    SELECT customer_key, min(age) AS days_since_last_interaction
    FROM interactions
    WHERE kind <> 'email_sent'
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
        WHERE opened_at::DATE <= $cutoff::DATE
    )
    GROUP BY customer_key
),
satisfaction AS (
    SELECT customer_key, avg(satisfaction) AS avg_satisfaction
    FROM marts.fct_tickets
    WHERE resolved_at::DATE <= $cutoff::DATE AND resolved_at::DATE > $cutoff::DATE - 365
    GROUP BY customer_key
),
nps AS (
    SELECT customer_key, arg_max(nps, answered_at) AS last_nps
    FROM marts.fct_surveys
    WHERE answered_date <= $cutoff::DATE AND nps IS NOT NULL
    GROUP BY customer_key
)
SELECT
    o.*,
    coalesce(COLUMNS(i.* EXCLUDE (customer_key)), 0),
    i.email_opens_90d / nullif(i.emails_sent_90d, 0) AS email_open_rate_90d,
    e.days_since_last_interaction,
    coalesce(COLUMNS(t.* EXCLUDE (customer_key)), 0),
    s.avg_satisfaction,
    n.last_nps,
    coalesce(d.age_band, 'unknown') AS age_band,
    coalesce(d.region, 'unknown') AS region,
    coalesce(d.gender, 'unknown') AS gender,
    coalesce(d.acquisition_channel, 'unknown') AS acquisition_channel
FROM order_features AS o
LEFT JOIN interaction_counts AS i USING (customer_key)
LEFT JOIN last_engagement AS e USING (customer_key)
LEFT JOIN ticket_counts AS t USING (customer_key)
LEFT JOIN satisfaction AS s USING (customer_key)
LEFT JOIN nps AS n USING (customer_key)
LEFT JOIN marts.dim_customers AS d USING (customer_key)
ORDER BY customer_key
"""

_LABELS_SQL = """
SELECT
    customer_key,
    NOT bool_or(is_paid AND order_date > $cutoff::DATE) AS churned
FROM marts.fct_orders
WHERE order_date <= $cutoff::DATE + $horizon_days::INTEGER
GROUP BY customer_key
HAVING bool_or(is_paid AND order_date <= $cutoff::DATE)
ORDER BY customer_key
"""


def churn_features(con: duckdb.DuckDBPyConnection, cutoff: date, bgnbd: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features as of ``cutoff`` for every customer with a paid order on or before it, indexed by customer_key.

    ``bgnbd`` (customer_key, p_alive, expected_purchases_90d), fitted at the same cutoff, is joined in; customers
    it lacks, or all customers when it is None, get NaN there.
    """
    frame = con.execute(_FEATURES_SQL, {"cutoff": cutoff}).df().set_index("customer_key")
    for column in CATEGORICAL_FEATURES:
        frame[column] = frame[column].astype("category")
    if bgnbd is None:
        bgnbd = pd.DataFrame(columns=["customer_key", *BGNBD_FEATURES])
    bg = bgnbd.set_index("customer_key")[list(BGNBD_FEATURES)].astype(float)
    return frame.join(bg, how="left")


def churn_labels(con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int = 90) -> pd.Series:
    """1 if a customer with a paid order on or before ``cutoff`` has none in (cutoff, cutoff + horizon], else 0."""
    frame = con.execute(_LABELS_SQL, {"cutoff": cutoff, "horizon_days": horizon_days}).df()
    return frame.set_index("customer_key")["churned"].astype(int)


def feature_names(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("churned", "cutoff")]


# --------------------------------------------------------------------------------------------------- metrics

def oracle_auc(labels, true_scores) -> float:
    """AUC of a score built from the generator's ground truth: the ceiling any model can reach on that data."""
    return _auc(np.asarray(labels), np.asarray(true_scores, dtype=float))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else math.nan


def _top_decile(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Lift (churn rate in the top 10% by score over the overall rate) and the share of churners it captures."""
    top = np.argsort(-score, kind="stable")[: max(1, math.ceil(0.1 * len(y)))]
    if y.sum() == 0:
        return math.nan, math.nan
    return float(y[top].mean() / y.mean()), float(y[top].sum() / y.sum())


def _score_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    both_classes = 0 < y.sum() < len(y)
    lift, capture = _top_decile(y, score)
    return {
        "auc": _auc(y, score),
        "pr_auc": float(average_precision_score(y, score)) if both_classes else math.nan,
        "brier": float(brier_score_loss(y, score)),
        "top_decile_lift": lift,
        "capture": capture,
    }


def _baseline_score(p_alive: pd.Series) -> np.ndarray:
    """BG/NBD churn score 1 - p_alive; customers the BG/NBD fit lacks get the mean score, so both models are
    judged on the same rows."""
    score = 1.0 - p_alive.astype(float)
    return score.fillna(score.mean()).to_numpy()


def evaluation_metrics(y: np.ndarray, predicted: np.ndarray, p_alive: pd.Series) -> dict[str, float]:
    model = _score_metrics(y, predicted)
    if p_alive.notna().any():
        baseline = _score_metrics(y, _baseline_score(p_alive))
    else:
        baseline = dict.fromkeys(model, math.nan)
    return {
        **model,
        "baseline_auc": baseline["auc"],
        "baseline_pr_auc": baseline["pr_auc"],
        "baseline_brier": baseline["brier"],
        "baseline_top_decile_lift": baseline["top_decile_lift"],
        "baseline_capture": baseline["capture"],
        "baseline_coverage": float(p_alive.notna().mean()),
        "n_eval": float(len(y)),
        "positive_rate": float(y.mean()),
    }


def _deciles(score: np.ndarray) -> np.ndarray:
    ranks = pd.Series(score).rank(method="first").to_numpy() - 1
    return (ranks * 10 // len(score)).astype(int) + 1


def calibration_table(y: np.ndarray, predicted: np.ndarray, p_alive: pd.Series) -> pd.DataFrame:
    """Ten rows, one per decile of predicted churn (1 = lowest): mean prediction vs observed churn rate, next to
    the same for the BG/NBD baseline binned by its own score."""
    model = pd.DataFrame({"decile": _deciles(predicted), "p": predicted, "y": y})
    table = model.groupby("decile").agg(n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    if p_alive.notna().any():
        score = _baseline_score(p_alive)
        baseline = pd.DataFrame({"decile": _deciles(score), "p": score, "y": y}).groupby("decile").agg(
            baseline_mean_predicted=("p", "mean"), baseline_observed_rate=("y", "mean"))
        table = table.join(baseline)
    table = table.reindex(range(1, 11)).reset_index()
    return table.reindex(columns=list(CALIBRATION_COLUMNS))


# --------------------------------------------------------------------------------------------------- training

def cutoff_plan(as_of: date, config: ChurnConfig) -> CutoffPlan:
    horizon, spacing = timedelta(days=config.horizon_days), timedelta(days=config.cutoff_spacing_days)
    evaluation = as_of - horizon
    steps = range(config.n_training_cutoffs)
    return CutoffPlan(
        validation_training=tuple(evaluation - horizon - k * spacing for k in steps),
        evaluation=evaluation,
        production_training=tuple(evaluation - k * spacing for k in steps),
    )


@dataclass
class _Model:
    booster: lgb.Booster
    categories: dict[str, list[str]]
    fit_seconds: float


def _training_rows(con, cutoff: date, bgnbd_at, config: ChurnConfig) -> pd.DataFrame:
    """Features + label at one cutoff, sampled down to this cutoff's share of ``max_training_rows``."""
    frame = churn_features(con, cutoff, bgnbd_at(cutoff)).join(churn_labels(con, cutoff, config.horizon_days))
    cap = config.max_training_rows // config.n_training_cutoffs
    if len(frame) > cap:
        frame = frame.sample(cap, random_state=config.seed)
    return frame.assign(cutoff=cutoff)


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    # Category sets differ between cutoffs: stack as text, the model fixes one category set.
    return pd.concat([f.astype({c: str for c in CATEGORICAL_FEATURES}) for f in frames])


def _trainable(train: pd.DataFrame, config: ChurnConfig) -> str | None:
    """Why ``train`` cannot be fitted, or None."""
    churners = int(train["churned"].sum()) if len(train) else 0
    stayers = len(train) - churners
    if len(train) < 10 * config.min_class_rows or min(churners, stayers) < config.min_class_rows:
        return (f"{len(train)} training rows ({churners} churners, {stayers} non-churners); need at least "
                f"{10 * config.min_class_rows} rows and {config.min_class_rows} of each class")
    return None


def _design(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Model matrix with the training category sets (unseen values become missing)."""
    x = frame[feature_names(frame)].copy()
    for column, values in categories.items():
        x[column] = pd.Categorical(x[column].astype(str), categories=values)
    return x


def _fit(train: pd.DataFrame, config: ChurnConfig) -> _Model:
    started = time.perf_counter()
    categories = {c: sorted(train[c].astype(str).unique()) for c in CATEGORICAL_FEATURES}
    x, y = _design(train, categories), train["churned"].to_numpy()
    # Early-stopping split by customer, so one customer's cutoffs never sit on both sides.
    held = pd.util.hash_pandas_object(train.index.to_series(), index=False).to_numpy() % EARLY_STOPPING_SHARE == 0
    fit_set = lgb.Dataset(x[~held], y[~held], categorical_feature=list(CATEGORICAL_FEATURES))
    stop_set = lgb.Dataset(x[held], y[held], reference=fit_set)
    booster = lgb.train(
        {**LGB_PARAMS, "seed": config.seed}, fit_set, num_boost_round=MAX_ROUNDS, valid_sets=[stop_set],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    return _Model(booster, categories, time.perf_counter() - started)


def _predict(model: _Model, frame: pd.DataFrame, contributions: bool = False) -> np.ndarray:
    return model.booster.predict(
        _design(frame, model.categories), num_iteration=model.booster.best_iteration, pred_contrib=contributions,
    )


def _model_run(purpose: str, as_of: date, cutoffs: tuple[date, ...], model: _Model, train: pd.DataFrame,
               metrics: dict[str, float], config: ChurnConfig, holdout_end: date | None = None) -> ModelRun:
    params = {k: v for k, v in LGB_PARAMS.items() if isinstance(v, (int, float)) and k != "verbose"}
    params |= {
        "num_boost_round": model.booster.best_iteration, "horizon_days": config.horizon_days,
        "n_training_cutoffs": len(cutoffs), "cutoff_spacing_days": config.cutoff_spacing_days,
        "max_training_rows": config.max_training_rows, "seed": config.seed,
    }
    return ModelRun(
        model_name=MODEL_NAME, purpose=purpose, as_of_date=as_of,
        train_start=min(cutoffs), train_end=max(cutoffs) + timedelta(days=config.horizon_days),
        holdout_end=holdout_end, params=params,
        metrics={"n_train": float(len(train)), "positive_rate": float(train["churned"].mean()), **metrics},
        libraries=LIBRARIES, fit_seconds=model.fit_seconds,
    )


# --------------------------------------------------------------------------------------------------- drivers

_WINDOW_NOUNS = {  # feature prefix -> (singular, plural)
    "orders": ("paid order", "paid orders"), "email_opens": ("email open", "email opens"),
    "email_clicks": ("email click", "email clicks"), "emails_sent": ("email sent", "emails sent"),
    "web_visits": ("web visit", "web visits"), "calls": ("call", "calls"), "chats": ("chat", "chats"),
    "tickets": ("support ticket", "support tickets"),
}
_WINDOW_FEATURE = re.compile(r"^(?P<kind>[a-z_]+)_(?P<days>\d+)d$")


def _count(value: float, singular: str, plural: str) -> str:
    """'no calls', '1 call', '3 calls'."""
    return f"1 {singular}" if value == 1 else f"{'no' if value == 0 else f'{value:.0f}'} {plural}"


def _change(noun: str, value: float) -> str:
    if value == 0:
        return f"{noun} unchanged vs the previous 90 days"
    return f"{noun} {'fell' if value < 0 else 'rose'} by {abs(value):,.0f} vs the previous 90 days"


_PHRASES: dict[str, Callable[[float], str]] = {
    "recency_days": lambda v: f"no purchase for {v:.0f} days",
    "frequency": lambda v: _count(v, "paid order", "paid orders") + " in total",
    "revenue_total": lambda v: f"lifetime spend {v:,.0f}",
    "avg_order_value": lambda v: f"average order {v:,.0f}",
    "tenure_days": lambda v: f"customer for {v:.0f} days",
    "avg_days_between_orders": lambda v: f"buys every {v:.0f} days on average",
    "orders_trend_90d": lambda v: _change("orders", v),
    "revenue_trend_90d": lambda v: _change("spend", v),
    "email_opens_trend_90d": lambda v: _change("email opens", v),
    "cancelled_orders": lambda v: _count(v, "cancelled order", "cancelled orders"),
    "refunded_orders": lambda v: _count(v, "refunded order", "refunded orders"),
    "open_tickets": lambda v: _count(v, "unresolved support ticket", "unresolved support tickets"),
    "email_open_rate_90d": lambda v: f"opened {v:.0%} of emails in the last 90 days",
    "avg_satisfaction": lambda v: f"average ticket satisfaction {v:.1f}/5",
    "last_nps": lambda v: f"last NPS score {v:.0f}",
    "days_since_last_interaction": lambda v: f"no engagement for {v:.0f} days",
    "p_alive": lambda v: f"BG/NBD probability still active {v:.0%}",
    "expected_purchases_90d": lambda v: f"BG/NBD expects {v:.1f} purchases in the next 90 days",
}
_MISSING_PHRASES = {
    "avg_days_between_orders": "only one order so far",
    "email_open_rate_90d": "no emails sent in the last 90 days",
    "avg_satisfaction": "no rated support tickets",
    "last_nps": "no NPS answer",
    "days_since_last_interaction": "no engagement on record",
    "p_alive": "no BG/NBD estimate",
    "expected_purchases_90d": "no BG/NBD estimate",
}


def _phrase(feature: str, value) -> str:
    if feature in CATEGORICAL_FEATURES:
        return f"{feature.replace('_', ' ')} {value}"
    if pd.isna(value):
        return _MISSING_PHRASES.get(feature, f"no {feature.replace('_', ' ')}")
    if feature in _PHRASES:
        return _PHRASES[feature](value)
    window = _WINDOW_FEATURE.match(feature)
    kind, days = window["kind"], window["days"]
    if kind == "revenue":
        return f"spent {value:,.0f} in the last {days} days"
    return f"{_count(value, *_WINDOW_NOUNS[kind])} in the last {days} days"


def describe_driver(feature: str, value, contribution: float) -> str:
    """Plain-words driver, e.g. 'no purchase for 240 days (raises risk)'."""
    return f"{_phrase(feature, value)} ({'raises' if contribution > 0 else 'lowers'} risk)"


def top_drivers(contributions: np.ndarray, x: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The ``n`` features pushing each customer's churn score up the most (TreeSHAP log-odds contributions)."""
    names = list(x.columns)
    per_feature = contributions[:, : len(names)]  # the last column is the bias
    top = np.argsort(-per_feature, axis=1, kind="stable")[:, :n]
    out = {"main_driver_feature": np.array(names, dtype=object)[top[:, 0]]}
    for rank in range(n):
        texts = np.empty(len(x), dtype=object)
        for j in np.unique(top[:, rank]):
            rows = np.flatnonzero(top[:, rank] == j)
            values = x.iloc[rows, j].to_numpy(dtype=object)
            texts[rows] = [describe_driver(names[j], v, c) for v, c in zip(values, per_feature[rows, j])]
        out[f"driver_{rank + 1}"] = texts
    return pd.DataFrame(out, index=x.index)


# --------------------------------------------------------------------------------------------------- scoring

def risk_band(probability: np.ndarray, thresholds: tuple[float, float]) -> np.ndarray:
    low, high = thresholds
    return np.where(probability >= high, "high", np.where(probability >= low, "medium", "low"))


def _consent(con) -> pd.Series:
    """Marketing consent per customer; unknown counts as no consent."""
    frame = con.execute(
        "SELECT customer_key, coalesce(marketing_consent, false) AS marketing_consent FROM marts.dim_customers"
    ).df()
    return frame.set_index("customer_key")["marketing_consent"].astype(bool)


def _score(con, model: _Model, features: pd.DataFrame, clv: pd.DataFrame | None, config: ChurnConfig) -> pd.DataFrame:
    probability = _predict(model, features)
    drivers = top_drivers(_predict(model, features, contributions=True), _design(features, model.categories))
    scores = drivers.assign(churn_probability=probability, risk_band=risk_band(probability, config.risk_thresholds))
    scores["suggested_action"] = np.where(
        scores["risk_band"] == "low", NO_ACTION,
        scores["main_driver_feature"].map(SUGGESTED_ACTIONS).fillna(DEFAULT_ACTION),
    )
    clv_12m = (clv.set_index("customer_key")["clv_12m"].astype(float) if clv is not None
               else pd.Series(dtype=float))
    scores["clv_12m"] = clv_12m.reindex(scores.index)
    threshold = scores["clv_12m"].quantile(config.clv_top_quantile)
    scores["high_value"] = scores["clv_12m"].ge(threshold).to_numpy() if pd.notna(threshold) else False
    scores["marketing_consent"] = _consent(con).reindex(scores.index, fill_value=False).to_numpy()
    scores["at_risk_high_value"] = scores["high_value"] & (scores["risk_band"] == "high")
    scores["on_watchlist"] = scores["at_risk_high_value"] & scores["marketing_consent"]
    return scores.rename_axis("customer_key").reset_index()[list(SCORE_COLUMNS)]


def watchlist(scores: pd.DataFrame) -> pd.DataFrame:
    """Valuable, high-risk, contactable customers, largest expected loss (CLV x churn probability) first."""
    rows = scores[scores["on_watchlist"]].assign(
        value_at_risk=lambda s: s["clv_12m"] * s["churn_probability"], main_driver=lambda s: s["driver_1"])
    return rows.sort_values("value_at_risk", ascending=False)[list(WATCHLIST_COLUMNS)].reset_index(drop=True)


def _empty_result(note: str, runs: list[ModelRun] | None = None, evaluation: dict | None = None,
                  calibration: pd.DataFrame | None = None) -> ChurnResult:
    return ChurnResult(
        scores=pd.DataFrame(columns=list(SCORE_COLUMNS)), watchlist=pd.DataFrame(columns=list(WATCHLIST_COLUMNS)),
        evaluation=evaluation or {},
        calibration=calibration if calibration is not None else pd.DataFrame(columns=list(CALIBRATION_COLUMNS)),
        runs=runs or [], note=note,
    )


# --------------------------------------------------------------------------------------------------- pipeline

def _validate(con, plan: CutoffPlan, training: dict[date, pd.DataFrame], bgnbd_at, as_of: date,
              config: ChurnConfig) -> tuple[dict, pd.DataFrame, ModelRun | None, str | None]:
    """Fit on the validation cutoffs, judge on the unseen evaluation cutoff next to the BG/NBD baseline."""
    train = _stack([training[c] for c in plan.validation_training])
    problem = _trainable(train, config)
    if problem:
        return {}, pd.DataFrame(columns=list(CALIBRATION_COLUMNS)), None, f"no validation fit: {problem}"
    evaluation_rows = churn_features(con, plan.evaluation, bgnbd_at(plan.evaluation)).join(
        churn_labels(con, plan.evaluation, config.horizon_days))
    model = _fit(train, config)
    y, predicted = evaluation_rows["churned"].to_numpy(), _predict(model, evaluation_rows)
    metrics = evaluation_metrics(y, predicted, evaluation_rows["p_alive"])
    run = _model_run("validation", as_of, plan.validation_training, model, train, metrics, config,
                     holdout_end=as_of)
    evaluation = {**run.metrics, "evaluation_cutoff": plan.evaluation,
                  "training_cutoffs": plan.validation_training}
    note = None if 0 < y.sum() < len(y) else "evaluation window has a single class: AUC undefined"
    return evaluation, calibration_table(y, predicted, evaluation_rows["p_alive"]), run, note


def run_churn(con: duckdb.DuckDBPyConnection, as_of: date, bgnbd_at: Callable[[date], pd.DataFrame | None],
              clv: pd.DataFrame | None, config: ChurnConfig = ChurnConfig()) -> ChurnResult:
    """Validate, refit and score churn risk as of ``as_of`` (see the module docstring for the time layout)."""
    plan = cutoff_plan(as_of, config)
    cutoffs = sorted(set(plan.validation_training) | set(plan.production_training))
    training = {c: _training_rows(con, c, bgnbd_at, config) for c in cutoffs}

    evaluation, calibration, validation_run, note = _validate(con, plan, training, bgnbd_at, as_of, config)
    runs = [validation_run] if validation_run else []
    notes = [note] if note else []

    train = _stack([training[c] for c in plan.production_training])
    problem = _trainable(train, config)
    if problem:
        return _empty_result("; ".join([*notes, f"no production fit: {problem}"]), runs, evaluation, calibration)
    model = _fit(train, config)
    runs.append(_model_run("production", as_of, plan.production_training, model, train, {}, config))

    current = churn_features(con, as_of, bgnbd_at(as_of))
    scores = _score(con, model, current, clv, config)
    if clv is None:
        notes.append("no CLV supplied: watchlist is empty")
    return ChurnResult(scores, watchlist(scores), evaluation, calibration, runs, "; ".join(notes) or None)
