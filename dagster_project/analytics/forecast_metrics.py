"""Forecast error metrics and the seasonal-naive baseline (the value on the same weekday of the last week).

MAPE, sMAPE and MASE are fractions (0.1 = 10%); MAPE only covers days with y > 0, since a zero day has no
percentage error.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

SEASON = 7  # daily data, weekly cycle


def mape(actual, predicted) -> float:
    """Mean absolute percentage error over days with actual > 0 only; NaN if there are none."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    positive = actual > 0
    if not positive.any():
        return float("nan")
    return float(np.mean(np.abs(predicted[positive] - actual[positive]) / actual[positive]))


def smape(actual, predicted) -> float:
    """Mean of 2|F - A| / (|A| + |F|), in [0, 2]; a day where both are 0 is a perfect forecast (0), not 0/0."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    if actual.size == 0:
        return float("nan")
    denominator = np.abs(actual) + np.abs(predicted)
    ratio = np.divide(2 * np.abs(predicted - actual), denominator, out=np.zeros_like(denominator),
                      where=denominator > 0)
    return float(np.mean(ratio))


def mase(actual, predicted, training, season: int = SEASON) -> float:
    """MAE scaled by the in-sample seasonal-naive MAE of ``training``.

    NaN when that scale is 0 (an exactly periodic training window) or undefined (training shorter than a season
    plus one day): the ratio is then meaningless, so callers compare on MAE instead.
    """
    actual, predicted, training = (np.asarray(a, float) for a in (actual, predicted, training))
    if actual.size == 0 or training.size <= season:
        return float("nan")
    scale = np.mean(np.abs(training[season:] - training[:-season]))
    if scale == 0:
        return float("nan")
    return float(np.mean(np.abs(predicted - actual)) / scale)


def seasonal_naive(history: pd.Series, horizon: int, season: int = SEASON) -> np.ndarray:
    """Repeat the last ``season`` values: the forecast for day t is the last observed value at t - k*season."""
    values = np.asarray(history, float)
    if values.size < season:
        raise ValueError(f"seasonal naive needs at least {season} values, got {values.size}")
    return np.resize(values[-season:], horizon)


def naive_forecast(history: pd.Series, horizon: int, interval_width: float) -> pd.DataFrame:
    """Seasonal-naive forecast with normal intervals from the in-sample seasonal differences.

    The standard error grows with the number of whole seasons ahead (sigma * sqrt(k + 1)).
    """
    yhat = seasonal_naive(history, horizon)
    residuals = history.to_numpy()[SEASON:] - history.to_numpy()[:-SEASON]
    sigma = float(np.sqrt(np.mean(residuals**2)))
    half_width = NormalDist().inv_cdf((1 + interval_width) / 2) * sigma * np.sqrt(np.arange(horizon) // SEASON + 1)
    index = pd.date_range(history.index[-1] + pd.Timedelta(days=1), periods=horizon, name="ds")
    frame = pd.DataFrame({"yhat": yhat, "yhat_lower": yhat - half_width, "yhat_upper": yhat + half_width}, index)
    return frame.clip(lower=0)
