"""Customer health score (0-100) from four percentile-type components, weighted by how well each predicted later
churn, and judged on a later window the weights never saw.

One definition of the components at any cutoff: ``churn.churn_features`` (events on or before the cutoff) for every
customer with a paid order by then, each component in [0, 1] with 1 = healthiest among those customers:

- activity:   days since the last paid order (how recently they bought)
- value:      paid orders and revenue in the last 365 days and lifetime revenue (how much they buy). Orders sit
              here, not beside recency: averaged into one component they dilute the strongest single signal, and the
              fitted weights cannot undo a mix inside a component. No CLV: it cannot be had at a past cutoff without
              refitting the CLV models there, and a component known only at scoring time was never weighted.
- service:    open tickets (fewer is better), average satisfaction over 365 days and last NPS (only for those who
              answered)
- engagement: e-mail opens, e-mail clicks and web visits in the last 90 days

Time layout (H = ``horizon_days``, 90 by default; churn = no paid order in the H days after a cutoff):

- validation fit at as_of - 2H, labels in (as_of - 2H, as_of - H]: every event it reads is dated on or before as_of - H;
- evaluation at as_of - H: the validation weights score the components there, judged on churn in (as_of - H, as_of]
  next to days since the last purchase (the baseline), on the same customers;
- production weights are refit at as_of - H on that latest window: the evaluation judged the procedure (fit on one
  window, score the next), and the refit applies it one window later, on behaviour up to 90 days old instead of 180.
  They score the customers as of as_of.

Customers without a paid order by as_of are outside the population the weights are fitted and judged on: their row
has no score and the band ``NO_PURCHASE_BAND``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from dagster_project.analytics import churn
from dagster_project.analytics.churn_metrics import auc as roc_auc
from dagster_project.analytics.model_quality import ModelQuality
from dagster_project.analytics.model_runs import ModelRun

HORIZON_DAYS = 90
MODEL_NAME = "health_weights"
LIBRARIES = ("scipy", "scikit-learn")
QUESTION = "which customers are healthy (keep buying in the next {horizon} days)"
BASELINE = "days since the last purchase"

COMPONENTS = ("activity", "value", "service", "engagement")
EQUAL_WEIGHTS: dict[str, float] = {c: 1 / len(COMPONENTS) for c in COMPONENTS}


@dataclass(frozen=True)
class _Input:
    column: str  # a churn_features column
    higher_is_better: bool
    missing: float  # value for a null; NaN = leave the input out of this customer's component


_INPUTS: dict[str, tuple[_Input, ...]] = {
    "activity": (_Input("recency_days", False, math.inf),),
    "value": (_Input("orders_365d", True, 0.0), _Input("revenue_365d", True, 0.0), _Input("revenue", True, 0.0)),
    "service": (
        _Input("open_tickets", False, 0.0), _Input("avg_satisfaction_365d", True, math.nan),
        _Input("last_nps", True, math.nan),
    ),
    "engagement": (
        _Input("email_opens_90d", True, 0.0), _Input("email_clicks_90d", True, 0.0),
        _Input("web_visits_90d", True, 0.0),
    ),
}
INPUT_COLUMNS = tuple(spec.column for inputs in _INPUTS.values() for spec in inputs)

# health_score >= lower bound -> band (checked top down).
HEALTH_BANDS: tuple[tuple[float, str], ...] = ((70.0, "healthy"), (40.0, "watch"), (-math.inf, "at risk"))
NO_PURCHASE_BAND = "no purchase yet"

COMPONENT_COLUMNS = ("customer_key", *COMPONENTS)
HEALTH_COLUMNS = (*COMPONENT_COLUMNS, "health_score", "health_band")


# --------------------------------------------------------------------------------------------------- components

def tie_aware_percentile(values: np.ndarray) -> np.ndarray:
    """Share of the other customers this one beats, among those it does not tie with.

    Plain percentile ranks squash heavily tied measures (most customers have 0 open tickets or 0 clicks) towards
    the middle; here the best tie block scores 1 and the worst 0. NaN stays NaN; if everyone ties, 0.5.
    """
    valid = ~np.isnan(values)
    _, block, block_size = np.unique(values[valid], return_inverse=True, return_counts=True)
    at_or_below = np.cumsum(block_size)
    below = np.zeros(len(values), dtype=np.int64)
    above = np.zeros(len(values), dtype=np.int64)
    below[valid] = (at_or_below - block_size)[block]
    above[valid] = (valid.sum() - at_or_below)[block]
    beaten_or_beating = below + above
    score = np.divide(below, beaten_or_beating, out=np.full(len(values), 0.5), where=beaten_or_beating > 0)
    score[~valid] = np.nan
    return score


def component_inputs(con: duckdb.DuckDBPyConnection, cutoff: date) -> pd.DataFrame:
    """customer_key plus the ``INPUT_COLUMNS`` of ``churn.churn_features`` at ``cutoff``: the only source of the
    components, at the fit, the evaluation and the scoring cutoff alike."""
    return churn.churn_features(con, cutoff, columns=INPUT_COLUMNS).reset_index()


def health_components(inputs: pd.DataFrame | None) -> pd.DataFrame:
    """customer_key plus the four 0-1 components, relative to the customers in ``inputs`` (``component_inputs``)."""
    if inputs is None or inputs.empty:
        empty = {"customer_key": pd.Series(dtype="str"), **{c: pd.Series(dtype="float64") for c in COMPONENTS}}
        return pd.DataFrame(empty)
    out = pd.DataFrame({"customer_key": inputs["customer_key"].astype("str").reset_index(drop=True)})
    for component, specs in _INPUTS.items():
        # Every component has an input that is never NaN, so the mean is always defined.
        out[component] = np.nanmean(np.vstack([_input_score(inputs, spec) for spec in specs]), axis=0)
    return out


def _input_score(inputs: pd.DataFrame, spec: _Input) -> np.ndarray:
    values = inputs[spec.column].astype("float64").fillna(spec.missing).to_numpy()
    return tie_aware_percentile(values if spec.higher_is_better else -values)


def labelled_window(con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int = HORIZON_DAYS) -> pd.DataFrame:
    """Components at ``cutoff`` (``COMPONENT_COLUMNS``), the recency baseline's input ``recency_days`` and
    ``churned`` (no paid order in the ``horizon_days`` after it), for customers with a paid order by ``cutoff``."""
    inputs = component_inputs(con, cutoff)
    labels = churn.churn_labels(con, cutoff, horizon_days).astype(bool).rename("churned")
    frame = health_components(inputs).assign(recency_days=inputs["recency_days"].astype("float64").to_numpy())
    return frame.join(labels, on="customer_key", how="inner").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- weights

@dataclass(frozen=True)
class HealthWeights:
    weights: dict[str, float]  # non-negative, sum to 1, keyed by COMPONENTS
    auc: float                 # in-sample AUC of (100 - score) against churn on the fitting rows; NaN if undefined
    n_customers: int
    n_churned: int
    fallback: bool             # True = EQUAL_WEIGHTS were used, see reason
    reason: str = ""
    fit_seconds: float = 0.0


def fit_health_weights(
    components: pd.DataFrame,
    churned_later: pd.Series | np.ndarray,
    *,
    min_customers: int = 200,
    min_per_class: int = 20,
) -> HealthWeights:
    """Non-negative logistic regression of later churn on the components measured at a cutoff.

    ``components`` holds ``COMPONENTS`` columns (``health_components`` at the cutoff); ``churned_later`` one flag
    per row, in the same order (no paid order in the horizon after the cutoff).

    P(churn) = sigmoid(b - sum_i w_i * component_i) with w_i >= 0, so a component can only raise health; the fitted
    w are normalised to sum to 1. Falls back to ``EQUAL_WEIGHTS`` (flagged, with the reason) when there are fewer
    than ``min_customers`` rows or ``min_per_class`` churners / non-churners, or when no component predicts churn.
    The AUC is in-sample: it flatters the weights and is never the figure the score is judged by.
    """
    started = time.perf_counter()
    x = components[list(COMPONENTS)].to_numpy(dtype="float64")
    y = np.asarray(churned_later, dtype=bool)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} component rows but {len(y)} churn labels")
    n, churned = len(y), int(y.sum())

    reason = ""
    if n < min_customers:
        reason = f"only {n} customers (< {min_customers})"
    elif min(churned, n - churned) < min_per_class:
        reason = f"only {churned} churned / {n - churned} retained (< {min_per_class} per class)"
    else:
        coefficients = _nonnegative_logit(x, y)
        if coefficients.sum() <= 0:
            reason = "no component is associated with lower churn"
    weights = EQUAL_WEIGHTS if reason else dict(zip(COMPONENTS, coefficients / coefficients.sum()))
    weights = {c: float(w) for c, w in weights.items()}
    auc = roc_auc(y, -weighted_score(components, weights)) if n else math.nan
    return HealthWeights(weights, auc, n, churned, bool(reason), reason, time.perf_counter() - started)


def _nonnegative_logit(x: np.ndarray, y: np.ndarray, ridge: float = 1e-4) -> np.ndarray:
    """Weights w >= 0 of P(y) = sigmoid(b - x @ w) by bounded L-BFGS; a tiny ridge keeps separable data finite."""
    centred = x - x.mean(axis=0)
    target = y.astype("float64")

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logit = theta[0] - centred @ theta[1:]
        p = expit(logit)
        loss = np.mean(np.logaddexp(0, logit) - target * logit) + ridge * theta[1:] @ theta[1:]
        residual = (p - target) / len(target)
        gradient = np.concatenate([[residual.sum()], -centred.T @ residual + 2 * ridge * theta[1:]])
        return loss, gradient

    bounds = [(None, None)] + [(0, None)] * x.shape[1]
    result = minimize(loss_and_gradient, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return np.clip(result.x[1:], 0, None)


def weighted_score(components: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """0-100 health score = 100 * weighted mean of the components."""
    total = sum(weights[c] for c in COMPONENTS)
    return 100 * sum(components[c].to_numpy(dtype="float64") * (weights[c] / total) for c in COMPONENTS)


# --------------------------------------------------------------------------------------------------- scores

def health_scores(inputs: pd.DataFrame | None,
                  weights: HealthWeights | Mapping[str, float] = EQUAL_WEIGHTS) -> pd.DataFrame:
    """Components of ``inputs`` (``component_inputs`` at a cutoff), the 0-100 score and its band (``HEALTH_BANDS``)."""
    w = weights.weights if isinstance(weights, HealthWeights) else weights
    out = health_components(inputs)
    out["health_score"] = weighted_score(out, w)
    bounds, labels = zip(*HEALTH_BANDS)
    band = np.select([out["health_score"] >= b for b in bounds], labels, default=labels[-1])
    out["health_band"] = pd.array(band, dtype="str")
    return out[list(HEALTH_COLUMNS)]


def score_customers(con: duckdb.DuckDBPyConnection, as_of: date, weights: HealthWeights | Mapping[str, float],
                    customer_keys: Iterable[str]) -> pd.DataFrame:
    """One row per key of ``customer_keys``; components are relative to every customer with a paid order by
    ``as_of`` (the fitted population), and keys without one get no score and ``NO_PURCHASE_BAND``."""
    scored = health_scores(component_inputs(con, as_of), weights)
    # (A Series of keys as it is: through a Python list, a million keys took a second.)
    keys = customer_keys if isinstance(customer_keys, pd.Series) else pd.Series(list(customer_keys))
    keys = pd.DataFrame({"customer_key": keys.astype("str").reset_index(drop=True)})
    table = keys.merge(scored, on="customer_key", how="left")
    table["health_band"] = table["health_band"].fillna(NO_PURCHASE_BAND).astype("str")
    return table[list(HEALTH_COLUMNS)]


# --------------------------------------------------------------------------------------------------- pipeline

@dataclass(frozen=True)
class HealthPlan:
    fit_cutoff: date         # validation weights: components here, churn up to evaluation_cutoff
    evaluation_cutoff: date  # validation weights judged here on churn up to as_of; production weights fitted here
    as_of: date
    horizon_days: int


def health_plan(as_of: date, horizon_days: int = HORIZON_DAYS) -> HealthPlan:
    horizon = timedelta(days=horizon_days)
    return HealthPlan(as_of - 2 * horizon, as_of - horizon, as_of, horizon_days)


@dataclass
class HealthResult:
    """``scores``: ``HEALTH_COLUMNS`` per customer key asked for; ``production``: the weights behind them;
    ``validation``: the weights judged on the unseen window; ``evaluation``: that judgement's figures;
    ``quality``: the same as a ModelQuality; ``runs``: the validation and production fits; ``note``: what the
    reader must know (fallbacks, no evaluation, not beating the baseline, customers without a score), else None."""

    scores: pd.DataFrame
    production: HealthWeights
    validation: HealthWeights
    plan: HealthPlan
    evaluation: dict[str, float]
    quality: ModelQuality
    runs: list[ModelRun] = field(default_factory=list)
    note: str | None = None


def run_health(con: duckdb.DuckDBPyConnection, as_of: date, customer_keys: Iterable[str],
               horizon_days: int = HORIZON_DAYS) -> HealthResult:
    """Fit weights at as_of - 2H, judge them on (as_of - H, as_of] next to recency, refit at as_of - H and score
    ``customer_keys`` as of ``as_of`` (see the module docstring)."""
    plan = health_plan(as_of, horizon_days)
    fitted_on = labelled_window(con, plan.fit_cutoff, horizon_days)
    validation = fit_health_weights(fitted_on[list(COMPONENTS)], fitted_on["churned"])

    held_out = labelled_window(con, plan.evaluation_cutoff, horizon_days)
    y = held_out["churned"].to_numpy(dtype=bool)
    evaluation = {
        "out_of_sample_auc": roc_auc(y, -weighted_score(held_out, validation.weights)),
        # Longer since the last purchase = likelier to churn; every customer here has one.
        "baseline_recency_auc": roc_auc(y, held_out["recency_days"].to_numpy()),
        "n_eval": len(y), "n_churned_eval": int(y.sum()),
    }
    production = fit_health_weights(held_out[list(COMPONENTS)], y)

    scores = score_customers(con, as_of, production, customer_keys)
    quality = _quality(plan, validation, evaluation)
    unscored = int(scores["health_score"].isna().sum())
    notes = [
        f"validation weights: equal ({validation.reason})" if validation.fallback else "",
        f"production weights: equal ({production.reason})" if production.fallback else "",
        quality.note or "",
        f"{unscored} customers without a paid order by {as_of} have no score (band '{NO_PURCHASE_BAND}')"
        if unscored else "",
    ]
    runs = [_run("validation", plan, validation, evaluation), _run("production", plan, production, {})]
    return HealthResult(scores, production, validation, plan, evaluation, quality, runs,
                        "; ".join(n for n in notes if n) or None)


def _quality(plan: HealthPlan, validation: HealthWeights, evaluation: dict[str, float]) -> ModelQuality:
    published, baseline = evaluation["out_of_sample_auc"], evaluation["baseline_recency_auc"]
    evaluated = math.isfinite(published) and math.isfinite(baseline)
    beats = evaluated and published > baseline
    if not evaluated:
        note = (f"no evaluation: {int(evaluation['n_eval'])} customers at {plan.evaluation_cutoff} with "
                f"{int(evaluation['n_churned_eval'])} churners, AUC needs both churners and buyers")
    elif not beats:
        note = (f"the health score ranks churners no better than {BASELINE} alone on the unseen window; "
                "it still summarises service and engagement, but for churn risk use recency or the churn model")
    else:
        note = None
    weights = "equal weights" if validation.fallback else f"weights fitted at {plan.fit_cutoff}"
    return ModelQuality(
        model="health", question=QUESTION.format(horizon=plan.horizon_days), metric="ROC-AUC",
        higher_is_better=True, published=f"health score ({weights}; refit at {plan.evaluation_cutoff} to publish)",
        published_value=published, baseline=BASELINE, baseline_value=baseline, beats_baseline=beats,
        n_eval=int(evaluation["n_eval"]),
        evaluation=(f"customers with a paid order by {plan.evaluation_cutoff}, judged on the next "
                    f"{plan.horizon_days} days (to {plan.as_of})"),
        note=note,
    )


def _run(purpose: str, plan: HealthPlan, fit: HealthWeights, evaluation: dict[str, float]) -> ModelRun:
    """train_start = the fit's cutoff; train_end = the end of its label window; holdout_end = the end of the
    evaluation window (validation only)."""
    cutoff = plan.fit_cutoff if purpose == "validation" else plan.evaluation_cutoff
    return ModelRun(
        model_name=MODEL_NAME, purpose=purpose, as_of_date=plan.as_of, train_start=cutoff,
        train_end=cutoff + timedelta(days=plan.horizon_days),
        holdout_end=plan.as_of if purpose == "validation" else None,
        params={**fit.weights, "horizon_days": plan.horizon_days, "fallback": fit.fallback},
        metrics={"in_sample_auc": fit.auc, "n_fit": fit.n_customers, "n_churned_fit": fit.n_churned, **evaluation},
        libraries=LIBRARIES, fit_seconds=fit.fit_seconds,
    )
