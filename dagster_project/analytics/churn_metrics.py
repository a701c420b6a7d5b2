"""How well a churn score ranks and calibrates on an unseen window: ROC-AUC (over every customer and over those
active in the year before the cutoff), PR-AUC, Brier score, top-decile lift and capture, and a ten-decile
calibration table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

ACTIVE_DAYS = 365  # "active" customers bought in the year before the cutoff
CALIBRATION_COLUMNS = (
    "decile", "n", "mean_predicted", "observed_rate", "baseline_mean_predicted", "baseline_observed_rate",
)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC; NaN when ``y`` holds a single class."""
    y = np.asarray(y)
    return float(roc_auc_score(y, np.asarray(score, dtype=float))) if 0 < y.sum() < len(y) else math.nan


def auc_standard_error(value: float, positives: int, negatives: int) -> float:
    """Standard error of a ROC-AUC on ``positives`` and ``negatives`` (Hanley & McNeil 1982)."""
    q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
    variance = (value * (1 - value) + (positives - 1) * (q1 - value**2)
                + (negatives - 1) * (q2 - value**2)) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def _top_decile(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Lift (churn rate in the top 10% by score over the overall rate) and the share of churners it captures."""
    top = np.argsort(-score, kind="stable")[: max(1, math.ceil(0.1 * len(y)))]
    if y.sum() == 0:
        return math.nan, math.nan
    return float(y[top].mean() / y.mean()), float(y[top].sum() / y.sum())


def score_metrics(y: np.ndarray, probability: np.ndarray, recency_days: np.ndarray) -> dict[str, float]:
    """Metrics of a churn probability against labels ``y``; ``recency_days`` at the cutoff selects the customers
    active in the last ``ACTIVE_DAYS`` for the second AUC."""
    y, probability = np.asarray(y).astype(int), np.asarray(probability, dtype=float)
    active = np.asarray(recency_days, dtype=float) < ACTIVE_DAYS
    lift, capture = _top_decile(y, probability)
    return {
        "auc": auc(y, probability),
        "auc_active_365d": auc(y[active], probability[active]),
        "pr_auc": float(average_precision_score(y, probability)) if 0 < y.sum() < len(y) else math.nan,
        "brier": float(brier_score_loss(y, probability)) if len(y) else math.nan,
        "top_decile_lift": lift,
        "capture": capture,
        "n_eval": float(len(y)),
        "n_eval_active_365d": float(active.sum()),
        "positive_rate": float(y.mean()) if len(y) else math.nan,
    }


def _deciles(score: np.ndarray) -> np.ndarray:
    ranks = pd.Series(score).rank(method="first").to_numpy() - 1
    return (ranks * 10 // len(score)).astype(int) + 1


def calibration_table(y: np.ndarray, predicted: np.ndarray, baseline: np.ndarray | None) -> pd.DataFrame:
    """Ten rows, one per decile of predicted churn (1 = lowest): mean prediction vs observed churn rate, next to
    the same for the baseline binned by its own score (missing without a baseline)."""
    if len(y) == 0:
        return pd.DataFrame(columns=list(CALIBRATION_COLUMNS))
    frame = pd.DataFrame({"decile": _deciles(predicted), "p": predicted, "y": y})
    table = frame.groupby("decile").agg(n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    if baseline is not None:
        by_baseline = pd.DataFrame({"decile": _deciles(baseline), "p": baseline, "y": y}).groupby("decile").agg(
            baseline_mean_predicted=("p", "mean"), baseline_observed_rate=("y", "mean"))
        table = table.join(by_baseline)
    table = table.reindex(range(1, 11)).reset_index()
    return table.reindex(columns=list(CALIBRATION_COLUMNS))
