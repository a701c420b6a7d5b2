"""BG/NBD refitted at every churn cutoff: its probability of no purchase over the label horizon (the churn baseline
and a LightGBM feature), p-alive and expected purchases.

The parameters are the maximum-likelihood estimates of Fader, Hardie & Lee (2005, eq. 6), maximised with scipy
(L-BFGS-B with the analytic gradient) on the customers of that cutoff (a seeded random sample above
``ChurnConfig.max_bgnbd_fit_rows``), so no cutoff sees a later purchase. This is the estimate ``clv.fit_bgnbd`` gets
from pymc-marketing with flat priors (a test checks both agree), but a pymc-marketing fit compiles its model graph
each time and churn needs ten fits per refresh; the closed-form likelihood in numpy (``clv_mle``, which the CLV
fits use too) fits 50,000 customers in about a second. The predictions reuse the CLV module's closed forms.

Inputs follow the CLV convention (``clv_rfm``), computed by the churn features at the cutoff: x = purchase days - 1,
t_x = days from the first to the last purchase day, T = days from the first purchase day to the cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from dagster_project.analytics.clv import BG_PARAMS, _bg_expected_purchases, _bg_p_alive
from dagster_project.analytics.clv_mle import Repeats, bgnbd_objective
from dagster_project.analytics.clv_models import no_purchase_given_alive

# Fewer repeat buyers than this: the dropout parameters a, b are not identified, so there is no fit.
MIN_REPEAT_CUSTOMERS = 20
BGNBD_COLUMNS = ("p_alive", "expected_purchases_90d", "bgnbd_p_no_purchase")
_START = np.log([0.5, 20.0, 1.0, 5.0])  # r, alpha (days), a, b: a neutral start when there is no earlier fit


@dataclass(frozen=True)
class BgnbdFit:
    params: dict[str, float]  # r, alpha, a, b
    n_customers: int
    log_likelihood: float


def rfm_arrays(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in days from the churn features ``purchase_days``, ``tenure_days`` and ``recency_days``."""
    T = features["tenure_days"].to_numpy(dtype=float)
    return features["purchase_days"].to_numpy(dtype=float) - 1, T - features["recency_days"].to_numpy(dtype=float), T


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, start: dict[str, float] | None = None) -> BgnbdFit | None:
    """Maximum-likelihood BG/NBD; None when there are too few repeat buyers or the search fails.

    ``start``: parameters to search from (the previous cutoff's fit converges in fewer steps).
    """
    if int((x > 0).sum()) < MIN_REPEAT_CUSTOMERS:
        return None
    theta = np.log([start[name] for name in BG_PARAMS]) if start else _START
    # Parameters on the log scale keep them positive; bounds stop a flat likelihood from wandering to overflow.
    result = minimize(bgnbd_objective, theta, args=(Repeats.of(x), t_x, T), jac=True, method="L-BFGS-B",
                      bounds=[(-9.0, 9.0)] * 4)
    if not np.isfinite(result.fun):
        return None
    return BgnbdFit(dict(zip(BG_PARAMS, map(float, np.exp(result.x)))), len(x), -float(result.fun) * len(x))


def p_no_purchase(params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                  horizon_days: float) -> np.ndarray:
    """P(no purchase in (T, T + H]) = 1 - p_alive + p_alive * ((alpha + T) / (alpha + T + H)) ** (r + x).

    Dropout only happens right after a purchase, so a customer alive at T buys nothing in the next H days exactly
    when the Poisson process has no event there: e^(-lambda H), averaged over lambda | alive, history ~
    Gamma(r + x, rate alpha + T). A one-time buyer (p_alive = 1 in the BG/NBD) still gets a probability below 1
    that grows with T, which is why this ranks churners far better than 1 - p_alive.
    """
    alive = _bg_p_alive(params, x, t_x, T)
    return 1.0 - alive + alive * no_purchase_given_alive(params, x, T, horizon_days)


def predictions(params: dict[str, float], features: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """``BGNBD_COLUMNS`` for every row of ``features`` (indexed like it)."""
    x, t_x, T = rfm_arrays(features)
    return pd.DataFrame({
        "p_alive": _bg_p_alive(params, x, t_x, T),
        "expected_purchases_90d": _bg_expected_purchases(params, x, t_x, T, 90),
        "bgnbd_p_no_purchase": p_no_purchase(params, x, t_x, T, horizon_days),
    }, index=features.index)


def fit_sample(features: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """The rows a BG/NBD fit uses: all of them, or ``max_rows`` drawn with a fixed seed."""
    return features.sample(max_rows, random_state=seed) if len(features) > max_rows else features
