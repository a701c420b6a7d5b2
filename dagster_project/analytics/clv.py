"""Customer lifetime value: expected purchases (BG/NBD or MBG/NBD, whichever predicts the holdout better) x
Gamma-Gamma spend (maximum likelihood in scipy, or pymc-marketing for other fits), discounted over the CLV horizon;
the entry point ``run_clv``.

The RFM summary is in ``clv_rfm``, the models and their closed-form predictions in ``clv_models`` and the holdout
validation that chooses the purchase model in ``clv_validation``; their public names are importable from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dagster_project.analytics.clv_models import (  # noqa: F401 - also re-exported for the churn model and tests
    BG_PARAMS, PURCHASE_MODELS, _bg_expected_purchases, _bg_p_alive, _expected_purchases, _expected_spend, _p_alive,
    _params, fit_bgnbd, fit_gamma_gamma, fit_mbgnbd, fit_purchase_model, model_run, timed,
)
from dagster_project.analytics.clv_rfm import (  # noqa: F401 - also re-exported
    SUMMARY_COLUMNS, _first_date, _insufficient, _purchase_days, _PurchaseDays, _summarise, _summarise_until,
    purchase_days, rfm_summary,
)
from dagster_project.analytics.clv_validation import (
    DEFAULT_PURCHASE_MODEL, VALIDATION_COLUMNS, HoldoutValidation, _floats, unevaluated_quality, validate,
)
from dagster_project.analytics.model_quality import ModelQuality
from dagster_project.analytics.model_runs import ModelRun
from dagster_project.analytics.progress import silent

if TYPE_CHECKING:
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel


@dataclass(frozen=True)
class ClvConfig:
    holdout_days: int = 90
    discount_rate_annual: float = 0.10
    horizon_months: int = 12
    # "map" (default) or any pymc-marketing fit method ("mcmc", "advi", ...). Priors are pymc-marketing model_config
    # dicts; when None, "map" uses flat priors (= MLE) and the sampling methods use the library's default priors.
    method: str = "map"
    bg_priors: dict | None = None  # for both purchase models (BG/NBD and MBG/NBD share the names r, alpha, a, b)
    gg_priors: dict | None = None

    @property
    def clv_column(self) -> str:
        return f"clv_{self.horizon_months}m"

    @property
    def score_columns(self) -> list[str]:
        return SUMMARY_COLUMNS + [
            "p_alive", "expected_purchases_30d", "expected_purchases_90d", "expected_purchases_365d",
            "expected_avg_order_value", self.clv_column,
        ]


@dataclass
class ClvResult:
    scores: pd.DataFrame
    validation: pd.DataFrame
    runs: list[ModelRun]
    metrics: dict
    note: str | None
    purchase_model: str  # "bg_nbd" or "mbg_nbd": the purchase model behind p_alive, expected purchases and CLV
    quality: ModelQuality  # its holdout error next to the best simple baseline's


# ---------------------------------------------------------------------------------------------------------------------
# Scoring


def score_customers(
    purchases: BetaGeoModel, gg: GammaGammaModel, summary: pd.DataFrame, config: ClvConfig = ClvConfig()
) -> pd.DataFrame:
    """p_alive, expected purchases over 30/90/365 days (``purchases``: a fitted BG/NBD or MBG/NBD), expected order
    value and discounted CLV per customer."""
    scores = summary[SUMMARY_COLUMNS].reset_index(drop=True)
    scores["p_alive"] = _p_alive(purchases, summary)
    expected = _expected_purchases(purchases, summary, sorted({30, 90, 365, *_clv_days(config)}))
    for days in (30, 90, 365):
        scores[f"expected_purchases_{days}d"] = expected[days]
    # Frequency-0 customers get weight 0 on their own spend, i.e. the population mean p*v/(q-1).
    scores["expected_avg_order_value"] = _expected_spend(gg, summary)
    scores[config.clv_column] = _clv(expected, scores["expected_avg_order_value"].to_numpy(), config)
    return scores


def _clv_days(config: ClvConfig) -> np.ndarray:
    """Ends of the CLV's monthly periods in days: pymc-marketing's months of 30 days for time_unit="D"."""
    return 30 * np.arange(1, config.horizon_months + 1)


def _clv(expected: dict[int, np.ndarray], spend: np.ndarray, config: ClvConfig) -> np.ndarray:
    """Sum over months of the month's expected purchases x expected spend, discounted monthly.

    pymc-marketing's ``expected_customer_lifetime_value`` with a monthly rate equivalent to the annual one; both it
    and this sum take posterior means of the expected purchases, so the result is the same.
    """
    monthly_rate = (1 + config.discount_rate_annual) ** (1 / 12) - 1
    clv, previous = np.zeros(len(spend)), 0.0
    for month, days in enumerate(_clv_days(config), start=1):
        clv += spend * (expected[days] - previous) / (1 + monthly_rate) ** month
        previous = expected[days]
    return clv


# ---------------------------------------------------------------------------------------------------------------------
# Holdout validation and entry point


def validate_holdout(transactions: pd.DataFrame, as_of: date, config: ClvConfig = ClvConfig()) -> HoldoutValidation:
    """Fit on orders up to ``as_of - holdout_days``, predict each calibration customer's holdout purchases and revenue
    with BG/NBD and MBG/NBD and choose the one that predicts who buys nothing better (see ``clv_validation``)."""
    return validate(_purchase_days(transactions, as_of), as_of, config)


def run_clv(transactions: pd.DataFrame | _PurchaseDays, as_of: date, config: ClvConfig = ClvConfig(),
            progress: Callable[[str], None] = silent) -> ClvResult:
    """Validate on a holdout (which chooses the purchase model), then fit on everything up to ``as_of`` and score
    every customer.

    ``transactions``: customer_key, order_date (date or datetime), amount (paid orders only), or their purchase days
    up to ``as_of`` (``purchase_days``). ``progress`` receives a line as each model starts fitting.
    """
    days = transactions if isinstance(transactions, _PurchaseDays) else _purchase_days(transactions, as_of)
    summary = _summarise(days, as_of)
    note = _insufficient(summary)
    if note:
        note = f"CLV not computed: {note}"
        return ClvResult(pd.DataFrame(columns=config.score_columns), pd.DataFrame(columns=VALIDATION_COLUMNS), [], {},
                         note, DEFAULT_PURCHASE_MODEL, unevaluated_quality(config.holdout_days, note))

    validation = validate(days, as_of, config, progress)
    chosen = validation.purchase_model
    label = PURCHASE_MODELS[chosen].label
    # Only the published purchase model is refitted on all the data: the other's fit would serve no output and its
    # cost grows with the customers. Its MAP search starts from the calibration fit's MLE (see _fit_kwargs); Gamma-Gamma's
    # does not: its likelihood has a flat ridge in (p, q, v) and L-BFGS stops on its tolerance near wherever it
    # starts, ~0.7% off in p on the M sample.
    calibrated = {run.model_name: run.params for run in validation.runs}
    progress(f"fitting {label} and Gamma-Gamma on {len(summary):,} customers' purchases up to {as_of}")
    (purchases, purchase_params), purchase_seconds = timed(
        fit_purchase_model, chosen, summary, config.method, config.bg_priors, calibrated.get(chosen))
    (gg, gg_params), gg_seconds = timed(fit_gamma_gamma, summary, config.method, config.gg_priors)
    progress(f"scoring {len(summary):,} customers with {label}")
    scores = score_customers(purchases, gg, summary, config)

    purchase_metrics = _floats({
        "customers": len(scores),
        "repeat_customers": int((scores["frequency"] > 0).sum()),
        "mean_p_alive": scores["p_alive"].mean(),
        "expected_purchases_365d": scores["expected_purchases_365d"].sum(),
    })
    gg_metrics = _floats({
        "fit_customers": int(((summary["frequency"] > 0) & (summary["monetary_value"] > 0)).sum()),
        "population_mean_spend": gg_params["p"] * gg_params["v"] / (gg_params["q"] - 1),
        f"{config.clv_column}_total": scores[config.clv_column].sum(),
    })
    start = _first_date(days)
    runs = validation.runs + [
        model_run(chosen, "production", as_of, start, as_of, purchase_params, {**purchase_metrics, "chosen": True},
                  purchase_seconds),
        model_run("gamma_gamma", "production", as_of, start, as_of, gg_params, gg_metrics, gg_seconds),
    ]
    notes = [validation.note] if validation.note else []
    quality = validation.quality
    if quality.evaluated and not quality.beats_baseline:
        notes.append(f"expected purchases do not beat {quality.baseline} on the holdout ({quality.metric} "
                     f"{quality.published_value:.3f} vs {quality.baseline_value:.3f})")
    if gg_params["q"] <= 1:
        notes.append("Gamma-Gamma q <= 1: population mean spend is undefined, spend and CLV are unreliable")
    # The published model's figures under their usual names, and each contender's holdout figures under its name.
    contenders = {f"{run.model_name}_{key}": run.metrics[key] for run in validation.runs
                  if run.model_name in PURCHASE_MODELS
                  for key in ("holdout_no_purchase_log_loss", "holdout_mae", "holdout_rmse",
                              "calibration_mean_p_alive")}
    metrics = {**validation.metrics, **purchase_metrics, **gg_metrics, **contenders}
    return ClvResult(scores, validation.comparison, runs, metrics, "; ".join(notes) or None, chosen, quality)
