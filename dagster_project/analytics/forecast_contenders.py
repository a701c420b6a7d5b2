"""One series, in a worker thread: every contender forecasts the same backtest folds, the best on the selection
folds is published, and only that one is fitted on the full history.

Contenders: the seasonal-naive baseline always; AutoETS once the series has enough history; Prophet only for the
series named in ``config.prophet_series`` (the top-level ones), where its yearly, holiday and shopping-event terms
can be estimated and the report reads the result. AutoETS chooses its form (error, trend, season, damping) once, at
the earliest fold, and is carried to the later folds by statsforecast's forward (new states, same parameters), which
keeps a refresh of ~100 series fast. So the form is what the backtest judged, and production fits that form's
parameters on the latest window rather than choosing again among up to 15 forms, at a fraction of the fitting time
and as accurate on held-out days (benchmarks/ets_form_holdout.py). Prophet is refitted at every fold with the same
terms production uses.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dagster_project.analytics import forecast_backtest as bt
from dagster_project.analytics.forecast_ets import FIT_ERRORS, ets_form, ets_point_forecast, fit_ets, fitted_ets
from dagster_project.analytics.forecast_metrics import SEASON, naive_forecast, seasonal_naive
from dagster_project.analytics.forecast_prophet import (
    YEARLY_MIN_SPAN, fit_prophet, predict_prophet, prophet_forecast, spans_two_years,
)
from dagster_project.analytics.forecast_warnings import working_on

if TYPE_CHECKING:
    from dagster_project.analytics.forecast import ForecastConfig

NAME = {"seasonal_naive": "seasonal naive", "auto_ets": "AutoETS", "prophet": "Prophet"}


@dataclass
class SeriesOutcome:
    # The last history_days_shown days of actuals and the published method's forecast, and the scored folds; without
    # the series' key and the published method, which the concatenation of every series' rows adds
    # (dagster_project.analytics.forecast: a column per frame of ~100 series was a tenth of a small export's forecast).
    forecast: pd.DataFrame
    backtest: pd.DataFrame
    summary: dict
    seconds: dict[str, float]  # fit time per "method:backtest" and "method:production"
    # The published method's fitted model, to save: {"prophet": Prophet} or {"auto_ets": AutoETS}; {} for the
    # baseline (nothing fitted) and for a series that was skipped.
    model: dict = field(default_factory=dict)


def _ready(y: pd.Series, config: ForecastConfig) -> bool:
    """Enough history for AutoETS and Prophet (the baseline needs two weeks only)."""
    return len(y) >= config.min_history_days and int((y > 0).sum()) >= config.min_nonzero_days


def yearly_terms(y: pd.Series, usable: list[bt.Fold]) -> tuple[bool, str | None]:
    """Yearly seasonality only when every backtest fold can fit it too, so production never uses a term the
    backtest did not judge; (enabled, why not) — the reason names what could not be backtested."""
    days = YEARLY_MIN_SPAN.days + 1
    if not spans_two_years(y.index):
        return False, f"no yearly seasonality: {len(y)} days of history, {days} needed"
    short = [f for f in usable if not spans_two_years(f.train(y).index)]
    if short:
        trained = len(short[-1].train(y))
        return False, (f"yearly seasonality not backtested (the earliest fold trains on {trained} days, {days} "
                       "needed), so left out in production too")
    return True, None


def _backtest(y: pd.Series, usable: list[bt.Fold], config: ForecastConfig, holidays, use_prophet: bool,
              yearly: bool, seconds: dict[str, float]) -> tuple[pd.DataFrame, str | None]:
    """The scored folds, and the form AutoETS chose at the earliest fold (None if it could not be fitted)."""
    rows, ets_model = [], None
    for fold in reversed(usable):  # earliest first: AutoETS is fitted there and carried forward
        train, actual = fold.train(y), fold.actual(y, config.horizon_days)
        predictions = {"seasonal_naive": seasonal_naive(train, config.horizon_days)}
        started = time.perf_counter()
        try:
            ets_model = ets_model or fit_ets(train, config.ets_window_days)
            predictions["auto_ets"] = ets_point_forecast(ets_model, train, config.horizon_days,
                                                         config.ets_window_days)
        except FIT_ERRORS:
            pass
        seconds["auto_ets:backtest"] += time.perf_counter() - started
        if use_prophet:
            started = time.perf_counter()
            try:
                predictions["prophet"] = prophet_forecast(train, config.horizon_days, config.prophet, holidays,
                                                          yearly)["yhat"].to_numpy()
            except FIT_ERRORS:
                pass
            seconds["prophet:backtest"] += time.perf_counter() - started
        rows += bt.score_fold(fold, actual, predictions, train)
    scored = pd.DataFrame(rows, columns=["fold_origin", "role", "horizon_bucket", "model", "mape", "smape", "mase",
                                         "mae", "n_days"])
    return scored, ets_form(ets_model) if ets_model is not None else None


def _production(method: str, y: pd.Series, config: ForecastConfig, holidays, yearly: bool, form: str | None
                ) -> tuple[pd.DataFrame, dict]:
    """The published method fitted on the whole history: its forecast and the fitted model ({method: model}).
    AutoETS fits the form the backtest judged (`form`; chosen anew when there was no backtest)."""
    horizon, width = config.horizon_days, config.interval_width
    if method == "prophet":
        model = fit_prophet(y, config.prophet, holidays, yearly, width, intervals=True)
        dates = pd.date_range(y.index[-1] + pd.Timedelta(days=1), periods=horizon)
        return predict_prophet(model, dates, config.prophet, intervals=True), {"prophet": model}
    if method == "auto_ets":
        frame, model = fitted_ets(y, horizon, width, config.ets_window_days, form)
        return frame, {"auto_ets": model}
    return naive_forecast(y, horizon, width), {}


def _untested_choice(y: pd.Series, config: ForecastConfig, use_prophet: bool) -> str | None:
    """Without a backtest: the richest method the history allows (as before there was a choice)."""
    if _ready(y, config):
        return "prophet" if use_prophet else "auto_ets"
    return "seasonal_naive" if len(y) >= 2 * SEASON else None


def forecast_one(series_id: str, metric: str, y: pd.Series, as_of: pd.Timestamp, config: ForecastConfig,
                 holidays: pd.DataFrame | None, use_prophet: bool) -> SeriesOutcome:
    key = {"series_id": series_id, "metric": metric}
    seconds: dict[str, float] = defaultdict(float)
    notes: list[str] = []
    with working_on(f"{series_id}/{metric}"):
        folds = bt.folds(as_of, config.horizon_days, config.n_folds, config.fold_spacing_days)
        usable = [f for f in folds if _ready(f.train(y), config)]
        yearly, why_not = yearly_terms(y, usable) if use_prophet else (False, None)
        notes += [why_not] if why_not else []
        backtest, backtested_form = _backtest(y, usable, config, holidays, use_prophet, yearly, seconds)
        selection, evaluation = bt.fold_means(backtest, bt.SELECTION), bt.fold_means(backtest, bt.EVALUATION)
        method, chosen = bt.choose(selection, evaluation)
        if method is None:
            method = _untested_choice(y, config, use_prophet)
            chosen = (f"not backtested ({len(y)} days of history; a fold needs "
                      f"{config.min_history_days + config.horizon_days})" if config.n_folds else
                      "not backtested (n_folds is 0)")
        future, model = None, {}
        if method is not None:
            started = time.perf_counter()
            try:
                future, model = _production(method, y, config, holidays, yearly, backtested_form)
            except FIT_ERRORS as error:
                notes.append(f"{NAME[method]} failed to fit ({error}): seasonal naive published instead")
                method, future = "seasonal_naive", naive_forecast(y, config.horizon_days, config.interval_width)
            seconds[f"{method}:production"] += time.perf_counter() - started
            if "auto_ets" in model and backtested_form and (refitted := ets_form(model["auto_ets"])) != backtested_form:
                notes.append(f"AutoETS form {backtested_form} (backtested) does not fit the latest "
                             f"{config.ets_window_days} days; {refitted} chosen again, not backtested")
    summary = key | _summary(y, method, backtest, selection, evaluation, chosen, yearly if use_prophet else None,
                             notes)
    forecast = forecast_rows(y, future, config) if future is not None else None
    return SeriesOutcome(forecast=forecast, backtest=backtest, summary=summary, seconds=dict(seconds),
                         model=model)


def forecast_rows(y: pd.Series, future: pd.DataFrame, config: ForecastConfig) -> pd.DataFrame:
    """The last history_days_shown days of actuals (y), then the forecast days (yhat and its interval). Built from
    arrays: a pandas concat of the two per series was ~5% of S's forecast."""
    history = y.iloc[-config.history_days_shown :]
    shown, ahead = np.full(len(history), np.nan), np.full(len(future), np.nan)
    rows = {"ds": history.index.append(future.index).rename("ds"),
            "y": np.concatenate([history.to_numpy(float), ahead]),
            "is_history": np.concatenate([np.ones(len(history), bool), np.zeros(len(future), bool)])}
    for column in ("yhat", "yhat_lower", "yhat_upper"):
        values = future[column].to_numpy(float) if column in future.columns else ahead
        rows[column] = np.concatenate([shown, values])
    return pd.DataFrame(rows)


def _summary(y: pd.Series, method: str | None, backtest: pd.DataFrame, selection: pd.DataFrame,
             evaluation: pd.DataFrame, chosen: str, yearly: bool | None, notes: list[str]) -> dict:
    row = {"model": method, "history_days": len(y), "nonzero_days": int((y > 0).sum()),
           "n_folds": backtest["fold_origin"].nunique(), "yearly_seasonality": yearly, "chosen": chosen,
           "note": "; ".join(notes) or None}
    for name, prefix in (("prophet", "prophet"), ("auto_ets", "ets"), ("seasonal_naive", "naive")):
        row[f"{prefix}_mase"] = evaluation["mase"].get(name, np.nan)
        row[f"{prefix}_selection_mase"] = selection["mase"].get(name, np.nan)
    row["published_mase"] = evaluation["mase"].get(method, np.nan) if method else np.nan
    beats = bt.beats(evaluation, method) if method else None
    row["beats_naive"] = beats
    row["verdict"] = _verdict(method, beats, evaluation, chosen)
    return row


def _verdict(method: str | None, beats: bool | None, evaluation: pd.DataFrame, chosen: str) -> str:
    if method is None:
        return "skipped: too little history to forecast"
    published = f"{NAME[method]} published ({chosen})"
    if beats is None:
        return published
    error = "mase" if evaluation["mase"].notna().all() else "mae"
    figures = (f"{error.upper()} {evaluation.loc[method, error]:.3g} vs "
               f"{evaluation.loc[bt.BASELINE, error]:.3g} on the evaluation fold")
    if method == bt.BASELINE:
        return f"{published}; {figures.split(' vs ')[0]} on the evaluation fold"
    return f"{published}; {'beats' if beats else 'does NOT beat'} seasonal naive ({figures})"
