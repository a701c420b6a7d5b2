"""Prophet (MAP fit, no MCMC) for one daily series: trend, weekly and, when the history allows it, yearly
seasonality, and the configured country's holidays and shopping events (forecast_events)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import cmdstanpy
import numpy as np
import pandas as pd
from prophet import Prophet

# Prophet's own rule: fewer than two yearly cycles cannot separate yearly seasonality from trend. It measures the
# span from the first to the last day, so 730 daily points span 729 days and are too short: 731 points are needed.
YEARLY_MIN_SPAN = pd.Timedelta(days=730)
# Prophet samples its intervals from NumPy's global RNG: series fitted in parallel threads take turns seeding it.
_GLOBAL_RNG = threading.Lock()


def spans_two_years(index: pd.DatetimeIndex) -> bool:
    return len(index) > 0 and index[-1] - index[0] >= YEARLY_MIN_SPAN


@dataclass(frozen=True)
class ProphetSettings:
    changepoint_prior_scale: float = 0.05
    seasonality_prior_scale: float = 10.0
    uncertainty_samples: int = 200  # production intervals only; backtests score yhat and skip sampling
    seed: int = 0  # Prophet draws its intervals from NumPy's global RNG; seeding keeps refreshes reproducible


def prophet_forecast(
    train: pd.Series, horizon: int, settings: ProphetSettings, holidays: pd.DataFrame | None, yearly: bool,
    interval_width: float = 0.8, intervals: bool = False,
) -> pd.DataFrame:
    """Fit on ``train`` and forecast the next ``horizon`` days (yhat, and yhat_lower/upper with ``intervals``),
    clipped at 0. ``yearly`` must only be True when ``train`` spans two years (Prophet warns otherwise)."""
    model = fit_prophet(train, settings, holidays, yearly, interval_width, intervals)
    return predict_prophet(model, model.make_future_dataframe(horizon, include_history=False)["ds"], settings,
                           intervals)


def fit_prophet(train: pd.Series, settings: ProphetSettings, holidays: pd.DataFrame | None, yearly: bool,
                interval_width: float = 0.8, intervals: bool = False) -> Prophet:
    if yearly and not spans_two_years(train.index):
        raise ValueError(f"yearly seasonality needs {YEARLY_MIN_SPAN.days + 1} days of history, got {len(train)}")
    model = Prophet(
        weekly_seasonality=True,
        yearly_seasonality=yearly,
        daily_seasonality=False,
        holidays=holidays if holidays is not None and not holidays.empty else None,
        changepoint_prior_scale=settings.changepoint_prior_scale,
        seasonality_prior_scale=settings.seasonality_prior_scale,
        interval_width=interval_width,
        mcmc_samples=0,
        uncertainty_samples=settings.uncertainty_samples if intervals else 0,
    )
    with cmdstanpy.disable_logging():  # two INFO lines per fit otherwise
        model.fit(pd.DataFrame({"ds": train.index, "y": train.to_numpy()}))
    return model


def predict_prophet(model: Prophet, dates: pd.Series | pd.DatetimeIndex, settings: ProphetSettings,
                    intervals: bool = False) -> pd.DataFrame:
    """A fitted model's forecast for ``dates`` (a saved model forecasts days after its history without a refit:
    trend and seasonality extrapolated from its fit), clipped at 0."""
    with _seeded_global_rng(settings.seed):
        predicted = model.predict(pd.DataFrame({"ds": pd.to_datetime(dates)})).set_index("ds")
    columns = ["yhat", "yhat_lower", "yhat_upper"] if intervals else ["yhat"]
    # Revenue and order counts cannot be negative; a negative forecast is always a worse one.
    return predicted[columns].clip(lower=0)


@contextmanager
def _seeded_global_rng(seed: int):
    with _GLOBAL_RNG:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)

