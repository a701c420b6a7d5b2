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

def bgnbd_terms(theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
    """BG/NBD per-customer log-likelihood and the share of its dropped-out term (for the gradient)."""
    r, alpha, a, b = theta
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    still_active = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    dropped = np.where(x > 0, betaln(a + 1, b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    total = np.logaddexp(still_active, dropped)
    return common + total, np.exp(dropped - total)


def bgnbd_objective(log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
                    ) -> tuple[float, np.ndarray]:
    """Mean negative BG/NBD log-likelihood and its gradient in log_params."""
    theta = np.exp(log_params)
    r, alpha, a, b = theta
    terms, w = bgnbd_terms(theta, x, t_x, T)
    repeat = np.maximum(x, 1)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - (1 - w) * np.log(alpha + T) - w * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * ((1 - w) / (alpha + T) + w / (alpha + t_x))
    d_a = (digamma(a + b) - digamma(a) + (1 - w) * digamma(a) + w * digamma(a + 1) - digamma(a + b + x))
    d_b = (digamma(a + b) - digamma(b) + (1 - w) * digamma(b + x)
           + np.where(x > 0, w * digamma(b + repeat - 1), 0.0) - digamma(a + b + x))
    gradient = np.array([d.mean() for d in (d_r, d_alpha, d_a, d_b)]) * theta
    return -float(terms.mean()), -gradient


def mbgnbd_objective(log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
                     ) -> tuple[float, np.ndarray]:
    """Mean negative MBG/NBD log-likelihood (pymc-marketing's ModifiedBetaGeoNBD.logp) and its gradient."""
    theta = np.exp(log_params)
    r, alpha, a, b = theta
    log_t, log_tx = np.log(alpha + T), np.log(alpha + t_x)
    a4 = np.log(a) - np.log(b + x) + (r + x) * (log_t - log_tx)
    terms = (gammaln(r + x) - gammaln(r) + r * np.log(alpha)
             + gammaln(a + b) + gammaln(b + x + 1) - gammaln(b) - gammaln(a + b + x + 1)
             - (r + x) * log_t + np.logaddexp(a4, 0.0))
    w = expit(a4)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - log_t + w * (log_t - log_tx)
    d_alpha = r / alpha - (r + x) / (alpha + T) + w * (r + x) * (1 / (alpha + T) - 1 / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x + 1) + w / a
    d_b = digamma(a + b) + digamma(b + x + 1) - digamma(b) - digamma(a + b + x + 1) - w / (b + x)
    gradient = np.array([d.mean() for d in (d_r, d_alpha, d_a, d_b)]) * theta
    return -float(terms.mean()), -gradient


def gamma_gamma_objective(log_params: np.ndarray, x: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative Gamma-Gamma log-likelihood of mean spends ``m`` over ``x`` repeat purchases (pymc-marketing's
    GammaGammaModel potential) and its gradient."""
    theta = np.exp(log_params)
    p, q, v = theta
    px, log_total = p * x, np.log(x * m + v)
    terms = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m) + px * np.log(x)
             - (px + q) * log_total)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_total)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_total
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
    params, mean = _maximise(objective, BG_PARAMS, (x, t_x, T), start)
    return MleFit(kind, params, mean * len(x), len(x))


def fit_spend(summary: pd.DataFrame, start: dict | None = None) -> MleFit:
    """Gamma-Gamma on the customers with a repeat purchase and positive mean spend."""
    spenders = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    x, m = (spenders[column].to_numpy(dtype=float) for column in ("frequency", "monetary_value"))
    params, mean = _maximise(gamma_gamma_objective, GG_PARAMS, (x, m), start)
    return MleFit("gamma_gamma", params, mean * len(x), len(x))
