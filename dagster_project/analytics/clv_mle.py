"""Maximum-likelihood fits of the CLV models in scipy: BG/NBD, MBG/NBD and Gamma-Gamma, the default fit.

With flat priors a pymc-marketing MAP fit is the maximum-likelihood estimate (``clv_models``), but every fit compiles
the model's graph in PyTensor first: seconds per fit, five fits per refresh, more than the optimisation itself even at
a million customers. Here the same log-likelihoods (pymc-marketing's, term for term: Fader, Hardie & Lee 2005 eq. 6;
Batislam, Denizel & Filiztekin 2007; Fader, Hardie & Lee 2005b eq. 1a) are maximised with L-BFGS-B and their
analytic gradients on the log scale, from the point pymc-marketing starts at (all parameters 1) or a given one, to a
tighter tolerance than PyMC's default. Tests check the fits against pymc-marketing's and an independent scipy
maximisation.

A fit is returned as ``MleFit``: its ``fit_result`` holds each parameter as a one-draw posterior (chain, draw), so
the scoring code reads it exactly as a pymc-marketing model fitted by MAP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln

BG_PARAMS = ("r", "alpha", "a", "b")
GG_PARAMS = ("p", "q", "v")
# Where pymc-marketing's MAP search starts with flat priors: every parameter at 1.
_START = {name: 1.0 for name in BG_PARAMS + GG_PARAMS}
# Parameters on the log scale keep them positive; bounds stop a flat likelihood from wandering to overflow.
_BOUNDS = (-20.0, 20.0)
_OPTIONS = {"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000}


@dataclass(frozen=True)
class MleFit:
    """A fitted model: ``kind`` (``bg_nbd``, ``mbg_nbd``, ``gamma_gamma``), its parameters and log-likelihood."""

    kind: str
    params: dict[str, float]
    log_likelihood: float
    n_customers: int

    @property
    def fit_result(self) -> xr.Dataset:
        return xr.Dataset({name: (("chain", "draw"), [[value]]) for name, value in self.params.items()})


# --------------------------------------------------------------------------------------------------- likelihoods

@dataclass(frozen=True)
class Repeats:
    """Repeat purchases per customer and their distinct values: the special functions of x alone (log-gamma,
    digamma, beta) are evaluated once per distinct count, a few hundred values for any number of customers."""

    x: np.ndarray
    values: np.ndarray
    index: np.ndarray

    @classmethod
    def of(cls, x) -> Repeats:
        if isinstance(x, Repeats):
            return x
        x = np.asarray(x, dtype=float)
        values, index = np.unique(x, return_inverse=True)
        return cls(x, values, index)

    def map(self, function) -> np.ndarray:
        """``function`` of every customer's count, evaluated on the distinct counts."""
        return function(self.values)[self.index]


def bgnbd_terms(theta: np.ndarray, x, t_x: np.ndarray, T: np.ndarray):
    """BG/NBD per-customer log-likelihood and the share of its dropped-out term (for the gradient)."""
    r, alpha, a, b = theta
    counts = Repeats.of(x)
    x = counts.x
    common = counts.map(lambda v: gammaln(r + v)) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    still_active = counts.map(lambda v: betaln(a, b + v)) - (r + x) * np.log(alpha + T)
    dropped = np.where(x > 0, counts.map(lambda v: betaln(a + 1, b + np.maximum(v, 1) - 1))
                       - (r + x) * np.log(alpha + t_x), -np.inf)
    total = np.logaddexp(still_active, dropped)
    return common + total, np.exp(dropped - total)


def bgnbd_objective(log_params: np.ndarray, x, t_x: np.ndarray, T: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative BG/NBD log-likelihood and its gradient in log_params (``x``: counts or ``Repeats``)."""
    theta = np.exp(log_params)
    r, alpha, a, b = theta
    counts = Repeats.of(x)
    x = counts.x
    terms, w = bgnbd_terms(theta, counts, t_x, T)
    log_t, log_tx = np.log(alpha + T), np.log(alpha + t_x)
    d_r = counts.map(lambda v: digamma(r + v)) - digamma(r) + np.log(alpha) - (1 - w) * log_t - w * log_tx
    d_alpha = r / alpha - (r + x) * ((1 - w) / (alpha + T) + w / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a) + (1 - w) * digamma(a) + w * digamma(a + 1) \
        - counts.map(lambda v: digamma(a + b + v))
    d_b = (digamma(a + b) - digamma(b) + (1 - w) * counts.map(lambda v: digamma(b + v))
           + np.where(x > 0, w * counts.map(lambda v: digamma(b + np.maximum(v, 1) - 1)), 0.0)
           - counts.map(lambda v: digamma(a + b + v)))
    gradient = np.array([d.mean() for d in (d_r, d_alpha, d_a, d_b)]) * theta
    return -float(terms.mean()), -gradient


def mbgnbd_objective(log_params: np.ndarray, x, t_x: np.ndarray, T: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative MBG/NBD log-likelihood (pymc-marketing's ModifiedBetaGeoNBD.logp) and its gradient."""
    theta = np.exp(log_params)
    r, alpha, a, b = theta
    counts = Repeats.of(x)
    x = counts.x
    log_t, log_tx = np.log(alpha + T), np.log(alpha + t_x)
    a4 = np.log(a) - counts.map(lambda v: np.log(b + v)) + (r + x) * (log_t - log_tx)
    of_x = counts.map(lambda v: gammaln(r + v) + gammaln(b + v + 1) - gammaln(a + b + v + 1))
    terms = (of_x - gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b) - (r + x) * log_t
             + np.logaddexp(a4, 0.0))
    w = expit(a4)
    d_r = counts.map(lambda v: digamma(r + v)) - digamma(r) + np.log(alpha) - log_t + w * (log_t - log_tx)
    d_alpha = r / alpha - (r + x) / (alpha + T) + w * (r + x) * (1 / (alpha + T) - 1 / (alpha + t_x))
    d_a = digamma(a + b) - counts.map(lambda v: digamma(a + b + v + 1)) + w / a
    d_b = (digamma(a + b) - digamma(b) + counts.map(lambda v: digamma(b + v + 1) - digamma(a + b + v + 1))
           - w / counts.map(lambda v: b + v))
    gradient = np.array([d.mean() for d in (d_r, d_alpha, d_a, d_b)]) * theta
    return -float(terms.mean()), -gradient


def gamma_gamma_objective(log_params: np.ndarray, x, m: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative Gamma-Gamma log-likelihood of mean spends ``m`` over ``x`` repeat purchases (pymc-marketing's
    GammaGammaModel potential) and its gradient."""
    theta = np.exp(log_params)
    p, q, v = theta
    counts = Repeats.of(x)
    x = counts.x
    px, log_total, log_m = p * x, np.log(x * m + v), np.log(m)
    terms = (counts.map(lambda c: gammaln(p * c + q) - gammaln(p * c) + p * c * np.log(c)) - gammaln(q)
             + q * np.log(v) + (px - 1) * log_m - (px + q) * log_total)
    d_p = x * (counts.map(lambda c: digamma(p * c + q) - digamma(p * c) + np.log(c)) + log_m - log_total)
    d_q = counts.map(lambda c: digamma(p * c + q)) - digamma(q) + np.log(v) - log_total
    d_v = q / v - (px + q) / (x * m + v)
    gradient = np.array([d.mean() for d in (d_p, d_q, d_v)]) * theta
    return -float(terms.mean()), -gradient


# --------------------------------------------------------------------------------------------------- fits

def _maximise(objective, names: tuple[str, ...], args: tuple, start: dict | None) -> tuple[dict[str, float], float]:
    start = {**_START, **(start or {})}
    result = minimize(objective, np.log([start[name] for name in names]), args=args, jac=True, method="L-BFGS-B",
                      bounds=[_BOUNDS] * len(names), options=_OPTIONS)
    if not np.isfinite(result.fun):
        raise FloatingPointError(f"the likelihood is not finite at the fitted point ({result.message})")
    return dict(zip(names, map(float, np.exp(result.x)))), -float(result.fun)


def fit_purchases(kind: str, summary: pd.DataFrame, start: dict | None = None) -> MleFit:
    """BG/NBD (``kind="bg_nbd"``) or MBG/NBD (``"mbg_nbd"``) on the summary's frequency, recency and T."""
    x, t_x, T = (summary[column].to_numpy(dtype=float) for column in ("frequency", "recency", "T"))
    objective = {"bg_nbd": bgnbd_objective, "mbg_nbd": mbgnbd_objective}[kind]
    params, mean = _maximise(objective, BG_PARAMS, (Repeats.of(x), t_x, T), start)
    return MleFit(kind, params, mean * len(x), len(x))


def fit_spend(summary: pd.DataFrame, start: dict | None = None) -> MleFit:
    """Gamma-Gamma on the customers with a repeat purchase and positive mean spend."""
    spenders = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    x, m = (spenders[column].to_numpy(dtype=float) for column in ("frequency", "monetary_value"))
    params, mean = _maximise(gamma_gamma_objective, GG_PARAMS, (Repeats.of(x), m), start)
    return MleFit("gamma_gamma", params, mean * len(x), len(x))
