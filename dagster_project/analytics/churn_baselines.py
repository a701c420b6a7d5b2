"""The two baselines the churn model must beat, each a publishable churn probability with drivers in words.

* ``churn_recency``: days since the last purchase, calibrated into a probability by isotonic regression of churn
  on recency over the training cutoffs (the observed churn rate by recency, forced non-decreasing).
* ``churn_bgnbd_p0``: the BG/NBD probability of no purchase over the label horizon, refitted at each cutoff
  (``churn_bgnbd``). Its drivers are exact Shapley values of that probability over its three inputs (days since
  the last purchase, purchase days, days since the first purchase), measured against the typical (median) customer:
  with three inputs that is eight evaluations of a closed form.

A baseline's drivers only name the features it uses; a "raises risk" driver pushes this customer's probability
above what the typical customer would get.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from dagster_project.analytics.churn_bgnbd import p_no_purchase
from dagster_project.analytics.churn_drivers import top_drivers

RECENCY = "churn_recency"
BGNBD_P0 = "churn_bgnbd_p0"
BASELINE_WORDS = {
    RECENCY: "days since the last purchase",
    BGNBD_P0: "BG/NBD probability of no purchase",
}
P0_FEATURES = ("recency_days", "purchase_days", "tenure_days")


@dataclass
class RecencyBaseline:
    calibration: IsotonicRegression
    n_train: int
    fit_seconds: float


def fit_recency(train: pd.DataFrame) -> RecencyBaseline | None:
    """Observed churn rate by days since the last purchase over ``train`` (None without both classes)."""
    y = train["churned"].to_numpy(dtype=float)
    if not 0 < y.sum() < len(y):
        return None
    started = time.perf_counter()
    calibration = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    calibration.fit(train["recency_days"].to_numpy(dtype=float), y)
    return RecencyBaseline(calibration, len(train), time.perf_counter() - started)


def recency_probability(model: RecencyBaseline, features: pd.DataFrame) -> np.ndarray:
    return model.calibration.predict(features["recency_days"].to_numpy(dtype=float))


def recency_scores(model: RecencyBaseline, features: pd.DataFrame) -> pd.DataFrame:
    """churn_probability and the one driver recency gives (driver_2 and driver_3 stay missing)."""
    probability = recency_probability(model, features)
    typical = model.calibration.predict([float(features["recency_days"].median())])[0]
    x = features[["recency_days"]]
    return top_drivers((probability - typical)[:, None], x).assign(churn_probability=probability)


def p0_scores(params: dict[str, float], features: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """churn_probability = BG/NBD P0 and its three drivers (Shapley values against the median customer)."""
    values = {name: features[name].to_numpy(dtype=float) for name in P0_FEATURES}
    typical = {name: float(np.median(column)) for name, column in values.items()}

    def p0(from_customer: frozenset[str]) -> np.ndarray:
        point = {name: values[name] if name in from_customer else np.full(len(features), typical[name])
                 for name in P0_FEATURES}
        tenure = point["tenure_days"]
        last_purchase = np.clip(tenure - point["recency_days"], 0.0, tenure)  # t_x within [0, T]
        return p_no_purchase(params, point["purchase_days"] - 1, last_purchase, tenure, horizon_days)

    n = len(P0_FEATURES)
    cache = {frozenset(s): p0(frozenset(s)) for k in range(n + 1) for s in combinations(P0_FEATURES, k)}
    contributions = np.zeros((len(features), n))
    for i, name in enumerate(P0_FEATURES):
        others = [f for f in P0_FEATURES if f != name]
        for k in range(n):
            weight = factorial(k) * factorial(n - k - 1) / factorial(n)
            for subset in combinations(others, k):
                contributions[:, i] += weight * (cache[frozenset(subset) | {name}] - cache[frozenset(subset)])
    probability = cache[frozenset(P0_FEATURES)]
    return top_drivers(contributions, features[list(P0_FEATURES)]).assign(churn_probability=probability)
