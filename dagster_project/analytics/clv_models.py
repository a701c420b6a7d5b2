"""The CLV's models (pymc-marketing): two purchase-count models, BG/NBD and MBG/NBD, and Gamma-Gamma for spend.

BG/NBD (Fader, Hardie & Lee 2005) lets a customer drop out only after a repeat purchase, so every one-time buyer has
p_alive = 1 however long ago the purchase was. MBG/NBD (Batislam, Denizel & Filiztekin 2007) also allows dropout
right after the first purchase. Both are fitted at every refresh and the one with the lower holdout error is
published (``clv_validation``).

By default the models are fitted by maximum likelihood: flat (``HalfFlat``) priors and a MAP fit, which PyMC computes
without the log-transform Jacobian, so the MAP point is the MLE. That default fit runs in scipy (``clv_mle``: the same
likelihoods, no graph to compile); other methods and priors, and ``library=True``, fit with pymc-marketing.

Customers are scored with pymc-marketing's closed-form expressions evaluated in numpy on the fitted parameter draws
(one draw after a MAP fit): the library's xarray versions add alignment overhead on every call and recompute the
monthly expected purchases that the 30/90-day columns also need (scoring 1M customers: 8.1 s -> 4.9 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import expit, hyp2f1

from dagster_project.analytics import clv_mle
from dagster_project.analytics.model_runs import ModelRun

if TYPE_CHECKING:  # pymc-marketing is imported only for a fit that needs it: the import alone takes seconds
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel

BG_PARAMS = ("r", "alpha", "a", "b")  # MBG/NBD has the same four, with a and b of its own dropout process
GG_PARAMS = ("p", "q", "v")
LIBRARIES = ("pymc-marketing", "pymc")

# ---------------------------------------------------------------------------------------------------------------------
# Closed-form predictions for one parameter draw. They are pymc-marketing's (BetaGeoModel / ModifiedBetaGeoModel
# .expected_purchases and .expected_probability_alive, GammaGammaModel.expected_customer_spend), term for term; a test
# checks them against the library.


def _bg_expected_purchases(p: dict, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float) -> np.ndarray:
    """BG/NBD expected purchases in (T, T + t] (Fader, Hardie & Lee 2005, eq. 10)."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    numerator = 1 - _discounted_hyp2f1(r + x, b + x, a + b + x - 1, alpha + T, t)
    numerator *= (a + b + x - 1) / (a - 1)
    denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return numerator / denominator


def _discounted_hyp2f1(A, B, C, alpha_T, t: float) -> np.ndarray:
    """``(alpha_T / (alpha_T + t)) ** A * 2F1(A, B; C; t / (alpha_T + t))``, the term both expectations share.

    scipy's hyp2f1 returns NaN for the huge A of a near-Poisson fit (r and alpha in the millions: every customer buys
    at nearly the same rate, a limit the MLE can reach on small or regular data). By Pfaff's transformation the term
    is ``2F1(A, C - B; C; -t / alpha_T)``; where scipy fails and ``t < alpha_T`` that series converges, and A times
    its small argument is the expected purchases, so it is summed directly."""
    A, B, C, alpha_T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, B, C, alpha_T)))
    with np.errstate(all="ignore"):
        value = np.asarray((alpha_T / (alpha_T + t)) ** A * hyp2f1(A, B, C, t / (alpha_T + t)), dtype=float)
    failed = ~np.isfinite(value) & (t < alpha_T)
    if failed.any():
        value = value.copy()
        value[failed] = _hyp2f1_series(A[failed], C[failed] - B[failed], C[failed], -t / alpha_T[failed])
    return value


def _hyp2f1_series(A: np.ndarray, B: np.ndarray, C: np.ndarray, w: np.ndarray, max_terms: int = 100_000) -> np.ndarray:
    """The Gauss series of 2F1(A, B; C; w) for |w| < 1, summed until the terms no longer change the sum; NaN where
    it did not converge or its terms grew so large that their cancellation leaves no accurate digit."""
    total, term, largest = np.ones_like(w), np.ones_like(w), np.ones_like(w)
    for n in range(max_terms):
        term = term * (A + n) * (B + n) / ((C + n) * (n + 1)) * w
        total = total + term
        largest = np.maximum(largest, np.abs(term))
        if np.all(np.abs(term) <= 1e-16 * np.abs(total)):
            break
    accurate = (np.abs(term) <= 1e-12 * np.abs(total)) & (largest <= 1e8 * np.abs(total))
    return np.where(accurate, total, np.nan)


def _bg_p_alive(p: dict, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    log_div = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))
    return np.where(x == 0, 1.0, expit(-log_div))


def _mbg_expected_purchases(p: dict, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float) -> np.ndarray:
    """MBG/NBD expected purchases in (T, T + t] (Batislam et al. 2007, eq. 6)."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    numerator = 1 - _discounted_hyp2f1(r + x, b + x + 1, a + b + x, alpha + T, t)
    numerator *= (a + b + x) / (a - 1)
    return numerator * _mbg_p_alive(p, x, t_x, T)


def _mbg_p_alive(p: dict, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """MBG/NBD: dropout is possible at the first purchase too, so a one-time buyer's p_alive falls with silence."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    return expit(-((r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + x))))


def no_purchase_given_alive(p: dict, x: np.ndarray, T: np.ndarray, t: float) -> np.ndarray:
    """P(no purchase in (T, T + t] | alive at T), both models: dropout happens only at a purchase, and an alive
    customer's purchase rate is Gamma(r + x, alpha + T) given the history, so this is its Poisson zero term averaged
    over that Gamma. Times P(alive) plus P(dead) it is the probability of no purchase (1 - p_alive for a dead
    customer): pymc-marketing's BetaGeoModel.expected_probability_no_purchase, which MBG/NBD lacks."""
    return ((p["alpha"] + T) / (p["alpha"] + T + t)) ** (p["r"] + x)


def _gg_expected_spend(p: dict, x: np.ndarray, mean_spend: np.ndarray) -> np.ndarray:
    """Conditional expected spend per purchase; frequency 0 gives the population mean p*v/(q-1)."""
    weight = p["p"] * x / (p["p"] * x + p["q"] - 1)
    return (1 - weight) * p["v"] * p["p"] / (p["q"] - 1) + weight * mean_spend


@dataclass(frozen=True)
class _PurchaseModel:
    class_name: str  # pymc-marketing's class (pymc_marketing.clv)
    label: str  # as people write it
    p_alive: Callable[..., np.ndarray]
    expected_purchases: Callable[..., np.ndarray]

    @property
    def model_class(self) -> type[BetaGeoModel]:
        import pymc_marketing.clv

        return getattr(pymc_marketing.clv, self.class_name)


PURCHASE_MODELS = {
    "bg_nbd": _PurchaseModel("BetaGeoModel", "BG/NBD", _bg_p_alive, _bg_expected_purchases),
    "mbg_nbd": _PurchaseModel("ModifiedBetaGeoModel", "MBG/NBD", _mbg_p_alive, _mbg_expected_purchases),
}


def purchase_model_name(model: BetaGeoModel | clv_mle.MleFit) -> str:
    """``bg_nbd`` or ``mbg_nbd``: the model_runs name of a fitted purchase model."""
    if isinstance(model, clv_mle.MleFit):
        return model.kind
    # ModifiedBetaGeoModel subclasses BetaGeoModel, so the exact class decides.
    return next(name for name, spec in PURCHASE_MODELS.items() if type(model).__name__ == spec.class_name)


# ---------------------------------------------------------------------------------------------------------------------
# Fits


def fit_purchase_model(
    name: str, summary: pd.DataFrame, method: str = "map", priors: dict | None = None, start: dict | None = None,
    library: bool = False,
) -> tuple[BetaGeoModel | clv_mle.MleFit, dict]:
    """BG/NBD (``name="bg_nbd"``) or MBG/NBD (``"mbg_nbd"``) on frequency/recency/T; returns the fitted model and its
    parameters r, alpha (days), a, b.

    ``start``: parameters to start the search from (see ``_fit_kwargs``). The default (MAP with flat priors, i.e. the
    MLE) is fitted in scipy unless ``library``.
    """
    if method == "map" and priors is None and not library:
        fit = clv_mle.fit_purchases(name, summary, start)
        return fit, fit.params
    model = PURCHASE_MODELS[name].model_class(model_config=_model_config(BG_PARAMS, method, priors))
    model.fit(_model_frame(summary), method=method, progressbar=False, **_fit_kwargs(method, start))
    return model, _params(model, BG_PARAMS)


def fit_bgnbd(
    summary: pd.DataFrame, method: str = "map", priors: dict | None = None, start: dict | None = None,
    library: bool = False,
) -> tuple[BetaGeoModel | clv_mle.MleFit, dict]:
    """BG/NBD on frequency/recency/T; returns the fitted model and its parameters r, alpha (days), a, b."""
    return fit_purchase_model("bg_nbd", summary, method, priors, start, library)


def fit_mbgnbd(
    summary: pd.DataFrame, method: str = "map", priors: dict | None = None, start: dict | None = None,
    library: bool = False,
) -> tuple[ModifiedBetaGeoModel | clv_mle.MleFit, dict]:
    """MBG/NBD on frequency/recency/T; returns the fitted model and its parameters r, alpha (days), a, b."""
    return fit_purchase_model("mbg_nbd", summary, method, priors, start, library)


def fit_gamma_gamma(
    summary: pd.DataFrame, method: str = "map", priors: dict | None = None, library: bool = False,
) -> tuple[GammaGammaModel | clv_mle.MleFit, dict]:
    """Gamma-Gamma on repeat customers with positive mean spend; returns the model and its parameters p, q, v."""
    if method == "map" and priors is None and not library:
        fit = clv_mle.fit_spend(summary)
        return fit, fit.params
    from pymc_marketing.clv import GammaGammaModel

    spenders = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    model = GammaGammaModel(model_config=_model_config(GG_PARAMS, method, priors))
    model.fit(_model_frame(spenders), method=method, progressbar=False)
    return model, _params(model, GG_PARAMS)


def _fit_kwargs(method: str, start: dict | None) -> dict:
    # A MAP search started near the optimum (the calibration fit's, 90 days earlier) needs fewer likelihood
    # evaluations, each a pass over every customer, and reaches the same BG/NBD MLE (equal log-likelihood on M).
    return {"start": start} if start and method == "map" else {}


def _model_config(names: tuple[str, ...], method: str, priors: dict | None) -> dict | None:
    if priors is not None:
        return priors
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in names} if method == "map" else None


def _model_frame(summary: pd.DataFrame) -> pd.DataFrame:
    # Positional integer ids: pymc-marketing aligns xarrays on customer_id, ~5x slower with 1M string keys.
    return summary.drop(columns="customer_key").assign(customer_id=np.arange(len(summary)))


def _params(model: BetaGeoModel | GammaGammaModel, names: tuple[str, ...]) -> dict[str, float]:
    return {name: float(model.fit_result[name].mean()) for name in names}


def _draws(model: BetaGeoModel | GammaGammaModel, names: tuple[str, ...]) -> list[dict[str, float]]:
    """Parameter values of every posterior draw (a single one after a MAP fit)."""
    stacked = {name: model.fit_result[name].to_numpy().ravel() for name in names}
    return [{name: float(values[i]) for name, values in stacked.items()} for i in range(len(stacked[names[0]]))]


def _posterior_mean(draws: list[dict[str, float]], per_draw: Callable[[dict[str, float]], np.ndarray]) -> np.ndarray:
    """Mean over draws of a per-customer quantity, one draw at a time (memory stays one vector per customer)."""
    return sum(per_draw(draw) for draw in draws) / len(draws)


def timed(fit: Callable, *args):
    """``fit(*args)`` and its wall-clock seconds."""
    start = time.perf_counter()
    result = fit(*args)
    return result, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------------------------------
# Per-customer predictions


def _rfm_arrays(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(summary[column].to_numpy(dtype=float) for column in ("frequency", "recency", "T"))


def _expected_purchases(model: BetaGeoModel, summary: pd.DataFrame, horizons: Iterable[int]) -> dict[int, np.ndarray]:
    """Expected purchases per customer over each horizon (days); draws and RFM columns are read once for all."""
    formula = PURCHASE_MODELS[purchase_model_name(model)].expected_purchases
    draws, (x, t_x, T) = _draws(model, BG_PARAMS), _rfm_arrays(summary)
    return {t: _posterior_mean(draws, lambda p, t=t: formula(p, x, t_x, T, t)) for t in horizons}


def _p_alive(model: BetaGeoModel, summary: pd.DataFrame) -> np.ndarray:
    formula = PURCHASE_MODELS[purchase_model_name(model)].p_alive
    draws, (x, t_x, T) = _draws(model, BG_PARAMS), _rfm_arrays(summary)
    return _posterior_mean(draws, lambda p: formula(p, x, t_x, T))


def _p_no_purchase(model: BetaGeoModel, summary: pd.DataFrame, t: int) -> np.ndarray:
    """Probability that each customer makes no purchase in the next ``t`` days."""
    formula = PURCHASE_MODELS[purchase_model_name(model)].p_alive
    draws, (x, t_x, T) = _draws(model, BG_PARAMS), _rfm_arrays(summary)

    def per_draw(p: dict) -> np.ndarray:
        alive = formula(p, x, t_x, T)
        return 1 - alive + alive * no_purchase_given_alive(p, x, T, t)

    return _posterior_mean(draws, per_draw)


def _expected_spend(gg: GammaGammaModel, summary: pd.DataFrame) -> np.ndarray:
    # Customers whose repeat spend nets to <= 0 were left out of the Gamma-Gamma fit; scoring them at 0 observed spend
    # shrinks them towards the population mean without ever making their expected spend negative.
    x, spend = summary["frequency"].to_numpy(dtype=float), summary["monetary_value"].clip(lower=0).to_numpy(dtype=float)
    return _posterior_mean(_draws(gg, GG_PARAMS), lambda p: _gg_expected_spend(p, x, spend))


# ---------------------------------------------------------------------------------------------------------------------
# Model runs


def model_run(
    name: str, purpose: str, as_of: date, train_start: date, train_end: date, params: dict, metrics: dict,
    seconds: float,
) -> ModelRun:
    # Validation fits stop at train_end and are scored on (train_end, as_of]; production fits use everything.
    return ModelRun(
        model_name=name, purpose=purpose, as_of_date=as_of, train_start=train_start, train_end=train_end,
        holdout_end=as_of if purpose == "validation" else None, params=params, metrics=metrics, time_unit="days",
        libraries=LIBRARIES, fit_seconds=seconds,
    )
