"""Rolling-origin backtest: which folds, how a fold is scored, and how the published method is chosen.

Origins are ``as_of - horizon - k * spacing`` (k = 0..n_folds-1), so every fold forecasts the full horizon with
actuals on or before as_of, and trains only on data dated on or before its origin. The latest fold is the
*evaluation* fold: its errors are the ones reported as unseen. The earlier folds are *selection* folds: the
published method is the one with the lowest mean MASE on them. With the default spacing (= horizon) their actuals
end where the evaluation fold begins, so the choice never sees the days it is judged on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dagster_project.analytics.forecast_metrics import mape, mase, smape

EVALUATION, SELECTION = "evaluation", "selection"
# Contenders, simplest first: on a tie the simpler method is published.
METHODS = ("seasonal_naive", "auto_ets", "prophet")
BASELINE = "seasonal_naive"
ERRORS = ("mase", "smape", "mape", "mae")


@dataclass(frozen=True)
class Fold:
    origin: pd.Timestamp
    role: str  # EVALUATION or SELECTION

    def train(self, y: pd.Series) -> pd.Series:
        return y.loc[: self.origin]

    def actual(self, y: pd.Series, horizon: int) -> pd.Series:
        return y.loc[self.origin + pd.Timedelta(days=1) : self.origin + pd.Timedelta(days=horizon)]


def folds(as_of: pd.Timestamp, horizon: int, n_folds: int, spacing: int) -> list[Fold]:
    """Latest first; the latest fold's horizon ends exactly at as_of."""
    latest = as_of - pd.Timedelta(days=horizon)
    return [Fold(latest - pd.Timedelta(days=k * spacing), EVALUATION if k == 0 else SELECTION)
            for k in range(n_folds)]


def buckets(horizon: int) -> list[tuple[str, int, int]]:
    """(label, first day, last day) of each horizon bucket, 1-based, plus 'overall'."""
    edges = [0] + [edge for edge in (7, 30) if edge < horizon] + [horizon]
    return [(f"days_{lo + 1}_{hi}", lo + 1, hi) for lo, hi in zip(edges, edges[1:])] + [("overall", 1, horizon)]


def score_fold(fold: Fold, actual: pd.Series, predictions: dict[str, np.ndarray], train: pd.Series) -> list[dict]:
    """One row per horizon bucket x method that forecast this fold."""
    rows = []
    for label, first, last in buckets(len(actual)):
        observed = actual.to_numpy()[first - 1 : last]
        for method, predicted in predictions.items():
            predicted = np.asarray(predicted, float)[first - 1 : last]
            rows.append({
                "fold_origin": fold.origin, "role": fold.role, "horizon_bucket": label, "model": method,
                "mape": mape(observed, predicted), "smape": smape(observed, predicted),
                "mase": mase(observed, predicted, train), "mae": float(np.mean(np.abs(predicted - observed))),
                "n_days": len(observed),
            })
    return rows


def fold_means(backtest: pd.DataFrame, role: str) -> pd.DataFrame:
    """Per method: mean overall errors over the folds of ``role`` (and how many folds); only methods that forecast
    every one of those folds, so none is judged on easier folds than another. A mean leaves out undefined errors
    (NaN), as pandas' does. In numpy: it runs twice per series on a few rows, where a pandas group-by's fixed cost
    was a fifth of a small export's forecast."""
    kept = (backtest["role"].to_numpy() == role) & (backtest["horizon_bucket"].to_numpy() == "overall")
    models, origins = backtest["model"].to_numpy()[kept], backtest["fold_origin"].to_numpy()[kept]
    errors = np.column_stack([backtest[error].to_numpy(dtype=float) for error in ERRORS])[kept]
    n_folds = len(set(origins))
    index, means = [], []
    for method in sorted(set(models)):
        mine = models == method
        if len(set(origins[mine])) != n_folds:
            continue
        values = errors[mine]
        defined = ~np.isnan(values)
        counts = defined.sum(axis=0)
        totals = np.where(defined, values, 0.0).sum(axis=0)
        index.append(method)
        means.append(np.where(counts > 0, totals / np.maximum(counts, 1), np.nan))
    return pd.DataFrame(np.array(means, dtype=float).reshape(len(index), len(ERRORS)),
                        index=pd.Index(index, name="model", dtype=object), columns=list(ERRORS))


def lowest(means: pd.DataFrame) -> tuple[str, str]:
    """(method, basis): lowest mean MASE, or MAE when a MASE is undefined (an exactly weekly-periodic training
    window); ties go to the simpler method (METHODS order)."""
    means = means.reindex([m for m in METHODS if m in means.index])
    error = "mase" if means["mase"].notna().all() else "mae"
    best = means[error].idxmin()
    figures = ", ".join(f"{method} {value:.3g}" for method, value in means[error].items())
    return str(best), f"{error.upper()} {figures}" + ("" if error == "mase" else " (MASE undefined)")


def choose(selection: pd.DataFrame, evaluation: pd.DataFrame) -> tuple[str | None, str]:
    """(published method, how it was chosen) from one series' fold means (fold_means) on the selection and the
    evaluation folds; (None, reason) when nothing was scored. Chosen on the selection folds; on the evaluation fold
    itself only when there is no selection fold."""
    for means, where in ((selection, "on the selection folds"),
                         (evaluation, "on the evaluation fold itself (no earlier fold had enough history)")):
        if not means.empty:
            method, basis = lowest(means)
            return method, f"lowest {where}: {basis}"
    return None, "not backtested"


def beats(errors: pd.DataFrame, method: str, baseline: str = BASELINE) -> bool | None:
    """Whether ``method`` had a lower error than ``baseline`` on these errors (MAE where MASE is undefined); None
    when either is missing. The baseline never beats itself."""
    if method not in errors.index or baseline not in errors.index:
        return None
    error = "mase" if errors.loc[[method, baseline], "mase"].notna().all() else "mae"
    return bool(errors.loc[method, error] < errors.loc[baseline, error])
