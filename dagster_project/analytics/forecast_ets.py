"""AutoETS (statsforecast) for one daily series: the exponential-smoothing model (error, trend, weekly season;
additive or multiplicative, damped or not) with the lowest AICc, fitted on the last ``window`` days.

ETS weights recent days most, so older history adds little to the fit but its cost grows with the window; it has
no yearly or holiday terms, which is what Prophet adds where the series is large enough to pay for it."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from statsforecast.models import AutoETS

from dagster_project.analytics.forecast_metrics import SEASON

WINDOW_DAYS = 126  # 18 weekly cycles
# What a failed optimisation raises (statsforecast's here, Stan's in forecast_contenders); it costs that fit, not the
# refresh.
FIT_ERRORS = (RuntimeError, ValueError, FloatingPointError, ZeroDivisionError, np.linalg.LinAlgError)
# A form as statsforecast writes it: error, trend, season, then D (damped) or N.
FORM = re.compile(r"[AM][NAM][NAM][DN]")


def fit_ets(train: pd.Series, window: int = WINDOW_DAYS, form: str | None = None) -> AutoETS:
    """AutoETS on the last ``window`` days: the form with the lowest AICc, or, given a ``form`` (``ets_form`` of an
    earlier fit, e.g. "AAAN"), that form's parameters only. Should that form not fit these days (a multiplicative
    one once a zero day is in the window), the choice is made again: ``ets_form`` of the result then differs."""
    values = np.asarray(train, float)[-window:]
    if form is not None:
        if not FORM.fullmatch(form):
            raise ValueError(f"not an ETS form: {form!r}")
        try:
            return AutoETS(season_length=SEASON, model=form[:3], damped=form[3] == "D").fit(values)
        except Exception:  # noqa: BLE001 - one form's failures include a bare Exception ("no model able to be fitted")
            pass
    return AutoETS(season_length=SEASON).fit(values)


def ets_form(model: AutoETS) -> str:
    """A fitted model's form: error, trend and season type, then D (damped) or N ("AAAN", "MNMN")."""
    return str(model.model_["components"])


def ets_point_forecast(model: AutoETS, train: pd.Series, horizon: int, window: int = WINDOW_DAYS) -> np.ndarray:
    """The ``horizon`` days after ``train`` with ``model``'s fitted parameters, clipped at 0. Its states are run
    through the last ``window`` days of ``train`` first (statsforecast's forward), so a model fitted at an earlier
    fold origin forecasts from a later one without being re-estimated."""
    return np.clip(model.forward(y=np.asarray(train, float)[-window:], h=horizon)["mean"], 0, None)


def ets_forecast(train: pd.Series, horizon: int, interval_width: float, window: int = WINDOW_DAYS,
                 model: AutoETS | None = None) -> pd.DataFrame:
    """Fit on the last ``window`` days of ``train`` (or, given a fitted ``model``, run its states through them with
    its parameters: statsforecast's forward); yhat and its ``interval_width`` interval, clipped at 0."""
    if model is None:
        return fitted_ets(train, horizon, interval_width, window)[0]
    level = round(100 * interval_width)
    return _frame(model.forward(y=np.asarray(train, float)[-window:], h=horizon, level=[level]), train, level)


def fitted_ets(train: pd.Series, horizon: int, interval_width: float, window: int = WINDOW_DAYS,
               form: str | None = None) -> tuple[pd.DataFrame, AutoETS]:
    """``ets_forecast`` of a new fit (of ``form``, if given: ``fit_ets``), and the fitted model."""
    model, level = fit_ets(train, window, form), round(100 * interval_width)
    return _frame(model.predict(h=horizon, level=[level]), train, level), model


def _frame(predicted: dict, train: pd.Series, level: int) -> pd.DataFrame:
    index = pd.date_range(train.index[-1] + pd.Timedelta(days=1), periods=len(predicted["mean"]), name="ds")
    frame = pd.DataFrame({"yhat": predicted["mean"], "yhat_lower": predicted[f"lo-{level}"],
                          "yhat_upper": predicted[f"hi-{level}"]}, index)
    return frame.clip(lower=0)


# What a fitted AutoETS needs to forecast again (statsforecast's ets_f with a given model): saved as arrays in a
# NumPy .npz file, read back without pickle.
SAVED_KEYS = ("components", "par", "m", "nstate", "sigma2", "n_params", "method", "loglik", "aic", "bic", "aicc",
              "mse", "amse", "residuals", "fitted", "states", "actual_residuals")


def save_ets(model: AutoETS, path) -> None:
    np.savez(path, **{key: np.asarray(model.model_[key]) for key in SAVED_KEYS if key in model.model_})


def load_ets(path) -> AutoETS:
    with np.load(path, allow_pickle=False) as arrays:
        state = {key: arrays[key] for key in arrays.files}
    for key in ("components", "method"):
        state[key] = str(state[key])
    for key in ("m", "nstate", "n_params"):
        state[key] = int(state[key])
    for key in ("sigma2", "loglik", "aic", "bic", "aicc", "mse", "amse"):
        if key in state:
            state[key] = float(state[key])
    state["fit"] = None  # the optimiser's report: carried along by statsforecast, not used to forecast
    model = AutoETS(season_length=SEASON)
    model.model_ = state
    return model
