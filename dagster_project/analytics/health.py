"""Customer health score (0-100) from four percentile-type components, with weights learnt from later churn.

Components are computed from ``marts.customer_360`` columns (or any frame with the same columns, e.g. a snapshot
rebuilt at a past cutoff), each in [0, 1] with 1 = healthiest in this customer base:

- activity:   recency of last order (never ordered = worst) and orders in the last 365 days
- value:      revenue in the last 365 days, lifetime revenue, and 12-month CLV when the frame has ``clv_12m``
- service:    open tickets (fewer is better), average satisfaction and last NPS (only for those who answered)
- engagement: email opens, email clicks and web visits in the last 90 days

Weights come from ``fit_health_weights``: components measured at a past cutoff, regressed on whether the customer
churned afterwards, with non-negative coefficients, normalised to sum to 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.metrics import roc_auc_score

COMPONENTS = ("activity", "value", "service", "engagement")
EQUAL_WEIGHTS: dict[str, float] = {c: 1 / len(COMPONENTS) for c in COMPONENTS}


@dataclass(frozen=True)
class _Input:
    column: str
    higher_is_better: bool
    missing: float  # value for a null; NaN = leave the input out of this customer's component
    optional: bool = False


_INPUTS: dict[str, tuple[_Input, ...]] = {
    "activity": (_Input("recency_days", False, math.inf), _Input("orders_365d", True, 0.0)),
    "value": (
        _Input("revenue_365d", True, 0.0), _Input("revenue", True, 0.0), _Input("clv_12m", True, 0.0, optional=True),
    ),
    "service": (
        _Input("open_tickets", False, 0.0), _Input("avg_satisfaction_365d", True, math.nan),
        _Input("last_nps", True, math.nan),
    ),
    "engagement": (
        _Input("email_opens_90d", True, 0.0), _Input("email_clicks_90d", True, 0.0),
        _Input("web_visits_90d", True, 0.0),
    ),
}

# health_score >= lower bound -> band (checked top down).
HEALTH_BANDS: tuple[tuple[float, str], ...] = ((70.0, "healthy"), (40.0, "watch"), (-math.inf, "at risk"))

COMPONENT_COLUMNS = ("customer_key", *COMPONENTS)
HEALTH_COLUMNS = (*COMPONENT_COLUMNS, "health_score", "health_band")


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


def health_components(frame: pd.DataFrame | None) -> pd.DataFrame:
    """customer_key plus the four 0-1 components, relative to the customers in ``frame``."""
    if frame is None or frame.empty:
        empty = {"customer_key": pd.Series(dtype="str"), **{c: pd.Series(dtype="float64") for c in COMPONENTS}}
        return pd.DataFrame(empty)
    out = pd.DataFrame({"customer_key": frame["customer_key"].astype("str").reset_index(drop=True)})
    for component, inputs in _INPUTS.items():
        used = [spec for spec in inputs if not (spec.optional and spec.column not in frame)]
        # Every component has an input that is never NaN, so the mean is always defined.
        out[component] = np.nanmean(np.vstack([_input_score(frame, spec) for spec in used]), axis=0)
    return out


def _input_score(frame: pd.DataFrame, spec: _Input) -> np.ndarray:
    values = frame[spec.column].astype("float64").fillna(spec.missing).to_numpy()
    return tie_aware_percentile(values if spec.higher_is_better else -values)


@dataclass(frozen=True)
class HealthWeights:
    weights: dict[str, float]  # non-negative, sum to 1, keyed by COMPONENTS
    auc: float                 # AUC of (100 - health score) against later churn on the fitting sample; NaN if undefined
    n_customers: int
    n_churned: int
    fallback: bool             # True = EQUAL_WEIGHTS were used, see reason
    reason: str = ""


def fit_health_weights(
    features_at_past_cutoff: pd.DataFrame,
    churned_later: pd.Series | np.ndarray,
    *,
    min_customers: int = 200,
    min_per_class: int = 20,
) -> HealthWeights:
    """Non-negative logistic regression of later churn on the components measured at a past cutoff.

    ``features_at_past_cutoff`` is ``health_components`` of a snapshot taken at that cutoff; ``churned_later`` holds
    one flag per row of it, in the same order (e.g. no paid order in the year after the cutoff).

    P(churn) = sigmoid(b - sum_i w_i * component_i) with w_i >= 0, so a component can only raise health; the fitted
    w are normalised to sum to 1. Falls back to ``EQUAL_WEIGHTS`` (flagged, with the reason) when there are fewer
    than ``min_customers`` rows or ``min_per_class`` churners / non-churners, or when no component predicts churn.
    The AUC is in-sample, which with five parameters on hundreds+ of customers is close to out-of-sample.
    """
    x = features_at_past_cutoff[list(COMPONENTS)].to_numpy(dtype="float64")
    y = np.asarray(churned_later, dtype=bool)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} feature rows but {len(y)} churn labels")
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
    score = x @ np.array([weights[c] for c in COMPONENTS])
    auc = float(roc_auc_score(y, -score)) if 0 < churned < n else math.nan
    return HealthWeights({c: float(w) for c, w in weights.items()}, auc, n, churned, bool(reason), reason)


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


def health_scores(
    customer_360: pd.DataFrame, weights: HealthWeights | Mapping[str, float] = EQUAL_WEIGHTS
) -> pd.DataFrame:
    """0-100 health score = 100 * weighted mean of the components, with its band (``HEALTH_BANDS``)."""
    w = weights.weights if isinstance(weights, HealthWeights) else weights
    total = sum(w[c] for c in COMPONENTS)
    out = health_components(customer_360)
    out["health_score"] = 100 * sum(out[c] * (w[c] / total) for c in COMPONENTS)
    bounds, labels = zip(*HEALTH_BANDS)
    band = np.select([out["health_score"] >= b for b in bounds], labels, default=labels[-1])
    out["health_band"] = pd.array(band, dtype="str")
    return out[list(HEALTH_COLUMNS)]
