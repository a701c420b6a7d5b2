"""AutoETS (statsforecast) for one daily series: the exponential-smoothing model (error, trend, weekly season;
additive or multiplicative, damped or not) with the lowest AICc, fitted on the last ``window`` days.

ETS weights recent days most, so older history adds little to the fit but its cost grows with the window; it has
no yearly or holiday terms, which is what Prophet adds where the series is large enough to pay for it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsforecast.models import AutoETS

from dagster_project.analytics.forecast_metrics import SEASON

WINDOW_DAYS = 126  # 18 weekly cycles


def fit_ets(train: pd.Series, window: int = WINDOW_DAYS) -> AutoETS:
    return AutoETS(season_length=SEASON).fit(np.asarray(train, float)[-window:])


def ets_point_forecast(model: AutoETS, train: pd.Series, horizon: int, window: int = WINDOW_DAYS) -> np.ndarray:
    """The ``horizon`` days after ``train`` with ``model``'s fitted parameters, clipped at 0. Its states are run
    through the last ``window`` days of ``train`` first (statsforecast's forward), so a model fitted at an earlier
    fold origin forecasts from a later one without being re-estimated."""
    return np.clip(model.forward(y=np.asarray(train, float)[-window:], h=horizon)["mean"], 0, None)


def ets_forecast(train: pd.Series, horizon: int, interval_width: float, window: int = WINDOW_DAYS) -> pd.DataFrame:
    """Fit on the last ``window`` days of ``train``; yhat and its ``interval_width`` interval, clipped at 0."""
    level = round(100 * interval_width)
    predicted = fit_ets(train, window).predict(h=horizon, level=[level])
    index = pd.date_range(train.index[-1] + pd.Timedelta(days=1), periods=horizon, name="ds")
    frame = pd.DataFrame({"yhat": predicted["mean"], "yhat_lower": predicted[f"lo-{level}"],
                          "yhat_upper": predicted[f"hi-{level}"]}, index)
    return frame.clip(lower=0)
