"""Forecasts on a cadence: the backtest and the production fits (``forecast.run_forecasts``) run when the saved
models are due (``model_store.decide``: every ``CRM_FORECAST_REFIT_DAYS`` as-of days, ``--retrain``, another
reporting currency, holiday country, configuration or library version), when the set of series changed, or when the
horizon reaches a year the saved holiday table does not cover; in between, each series' saved method forecasts the
90 days after the as-of date from the latest actuals, and the forecast made at the fit is scored against the actuals
that arrived since (one evaluation row per method and metric in ``model_runs``).

Saved per series, in the libraries' own formats: Prophet's JSON (``prophet.serialize``), AutoETS's fitted state as
NumPy arrays (.npz, read without pickle); the seasonal-naive baseline has nothing to fit. Also the backtest, the
summary (the method chosen per series, which stays until the next fit) and the forecast made at the fit, as Parquet.

Between fits, AutoETS keeps its parameters and runs its states through the latest window (statsforecast's forward,
as the backtest's later folds do); Prophet, which cannot take new actuals without a refit, extends its fitted trend
and seasonality to the new dates; seasonal naive repeats the latest week. On the day of the fit the saved models
reproduce the fit's forecasts exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from prophet.serialize import model_from_json, model_to_json

from dagster_project.analytics import forecast
from dagster_project.analytics.forecast_contenders import forecast_rows
from dagster_project.analytics.forecast_ets import ets_forecast, load_ets, save_ets
from dagster_project.analytics.forecast_metrics import mase, naive_forecast
from dagster_project.analytics.forecast_prophet import predict_prophet
from dagster_project.analytics.forecast_warnings import library_warnings, warning_lines, working_on
from dagster_project.analytics.model_runs import ModelRun, tagged
from dagster_project.analytics.model_store import (
    FORECAST_MODEL, Decision, Identity, ModelStore, Policy, Saved, base_metadata, decide, fingerprint, read_json,
    write_json,
)
from dagster_project.analytics.progress import silent

MODEL = FORECAST_MODEL
FORMAT = 1
SERIES_FILE, SUMMARY_FILE, BACKTEST_FILE, FORECAST_FILE = ("series.json", "summary.parquet", "backtest.parquet",
                                                           "forecast.parquet")
LIBRARIES = ("prophet", "cmdstanpy", "statsforecast", "holidays")


@dataclass
class Cadenced:
    result: forecast.ForecastResult
    version: str | None
    refitted: bool
    reason: str


def identity(config: forecast.ForecastConfig, reporting_currency: str) -> Identity:
    return Identity(FORMAT, settings={"reporting_currency": reporting_currency,
                                      "holiday_country": config.country or "none"},
                    config=json.loads(json.dumps(_identity_config(config))), libraries=LIBRARIES)


def _identity_config(config: forecast.ForecastConfig) -> dict:
    """The configuration a saved model must match: where the series are fitted (a worker process or not) changes no
    number, so it is not part of it."""
    return {key: value for key, value in asdict(config).items() if key != "worker"}


def run_on_cadence(con: duckdb.DuckDBPyConnection, series: pd.DataFrame, as_of: date, config: forecast.ForecastConfig,
                   store: ModelStore, policy: Policy, reporting_currency: str,
                   progress: Callable[[str], None] = silent) -> Cadenced:
    """Forecast with the saved models when they may be reused, else backtest, fit and save (module docstring)."""
    wanted = identity(config, reporting_currency)
    decision = decide(store.current(MODEL), wanted, as_of, policy)
    if not decision.refit:
        saved = decision.saved
        try:
            result, stale = score_saved(series, as_of, config, saved, decision.reason)
        except Exception as error:  # noqa: BLE001 - unusable saved models are refitted, and the reason says why
            result, stale = None, f"could not be used ({type(error).__name__}: {error})"
        if stale is None:
            return Cadenced(result, saved.version, False, decision.reason)
        decision = Decision(True, f"saved model {saved.version} not reused: {stale}", saved)
    progress(f"backtesting and fitting the forecasts ({decision.reason})")
    result = forecast.run_forecasts(series, as_of, config, progress)
    version = store.new_version() if result.models else None
    tagged(result.runs, version, decision.reason)
    if version:
        _save(store, version, result, con, as_of, wanted, decision.reason)
    return Cadenced(result, version, True, decision.reason)


# --------------------------------------------------------------------------------------------------- saving

def _save(store: ModelStore, version: str, result: forecast.ForecastResult, con: duckdb.DuckDBPyConnection,
          as_of: date, wanted: Identity, reason: str) -> Saved:
    entries = []
    methods = dict(zip(zip(result.summary["series_id"], result.summary["metric"]), result.summary["model"]))

    def write(folder: Path) -> None:
        for number, (key, fitted) in enumerate(result.models.items()):
            method = methods.get(key)
            entry = {"series_id": key[0], "metric": key[1], "method": None if pd.isna(method) else method}
            if "prophet" in fitted:
                entry["file"] = f"prophet_{number}.json"
                (folder / entry["file"]).write_text(model_to_json(fitted["prophet"]), encoding="utf-8")
            elif "auto_ets" in fitted:
                entry["file"] = f"auto_ets_{number}.npz"
                save_ets(fitted["auto_ets"], folder / entry["file"])
            entries.append(entry)
        write_json(folder / SERIES_FILE, {"series": entries, "holiday_years": list(result.holiday_years),
                                          "note": result.note})
        result.summary.to_parquet(folder / SUMMARY_FILE, index=False)
        result.backtest.to_parquet(folder / BACKTEST_FILE, index=False)
        future = result.forecasts[~result.forecasts["is_history"]]
        future[["series_id", "metric", "ds", "yhat", "model"]].to_parquet(folder / FORECAST_FILE, index=False)

    quality = result.quality
    metrics = {"overall_revenue_mase": quality.published_value, "overall_revenue_naive_mase": quality.baseline_value,
               "series": int(len(result.summary))}
    history = int(result.summary["history_days"].max()) if len(result.summary) else 1
    window = (as_of - timedelta(days=max(history - 1, 0)), as_of)  # the longest series' first day to the as-of date
    metadata = base_metadata(wanted, as_of, window, fingerprint(con, as_of), metrics, reason)
    return store.save(MODEL, version, metadata, write)


# --------------------------------------------------------------------------------------------------- scoring

def score_saved(series: pd.DataFrame, as_of: date, config: forecast.ForecastConfig, saved: Saved, reason: str
                ) -> tuple[forecast.ForecastResult | None, str | None]:
    """(the saved models' forecasts from ``as_of``, None), or (None, why they cannot be reused)."""
    started = time.perf_counter()
    state = read_json(saved.path(SERIES_FILE))
    as_of_ts = pd.Timestamp(as_of).normalize()
    prepared = forecast.prepare(series, as_of_ts)
    entries = {(e["series_id"], e["metric"]): e for e in state["series"]}
    if set(prepared) != set(entries):
        new, gone = sorted(set(prepared) - set(entries)), sorted(set(entries) - set(prepared))
        return None, f"the series changed (new: {_names(new)}; gone: {_names(gone)})"
    reach = (as_of_ts + pd.Timedelta(days=config.horizon_days)).year
    if reach > state["holiday_years"][1]:
        return None, f"the forecast reaches {reach}, the saved holiday table ends in {state['holiday_years'][1]}"
    rows = []
    with library_warnings() as found:
        for key, y in prepared.items():
            with working_on(f"{key[0]}/{key[1]}"):
                future = _saved_forecast(entries[key], y, saved, as_of_ts, config)
            if future is not None:
                rows.append(({"series_id": key[0], "metric": key[1], "model": entries[key]["method"]},
                             forecast_rows(y, future, config)))
    summary = pd.read_parquet(saved.path(SUMMARY_FILE)).reindex(columns=list(forecast.SUMMARY_SCHEMA)).astype(
        forecast.SUMMARY_SCHEMA)
    backtest = pd.read_parquet(saved.path(BACKTEST_FILE)).reindex(columns=list(forecast.BACKTEST_SCHEMA)).astype(
        forecast.BACKTEST_SCHEMA)
    runs = _tracking_runs(prepared, pd.read_parquet(saved.path(FORECAST_FILE)), saved, as_of_ts, config, reason,
                          time.perf_counter() - started)
    fitted = (f"forecast by the models fitted with data up to {saved.as_of} (model version {saved.version}) from the "
              f"actuals up to {as_of}")
    quality = forecast.forecast_quality(summary, backtest, config)
    quality = replace(quality, note="; ".join(n for n in (fitted, quality.note) if n))
    note = "; ".join(n for n in (fitted, state.get("note")) if n)
    return forecast.ForecastResult(forecast._concat(rows, forecast.FORECAST_SCHEMA), backtest, summary, runs, quality,
                                   note, warnings=warning_lines(found),
                                   holiday_years=tuple(state["holiday_years"])), None


def _saved_forecast(entry: dict, y: pd.Series, saved: Saved, as_of: pd.Timestamp, config: forecast.ForecastConfig
                    ) -> pd.DataFrame | None:
    """The ``horizon_days`` after ``as_of`` by the series' saved method; None for a series skipped at the fit."""
    method = entry["method"]
    if method == "prophet":
        model = model_from_json(saved.path(entry["file"]).read_text(encoding="utf-8"))
        dates = pd.date_range(as_of + pd.Timedelta(days=1), periods=config.horizon_days)
        return predict_prophet(model, dates, config.prophet, intervals=True)
    if method == "auto_ets":
        return ets_forecast(y, config.horizon_days, config.interval_width, config.ets_window_days,
                            model=load_ets(saved.path(entry["file"])))
    if method == "seasonal_naive":
        return naive_forecast(y, config.horizon_days, config.interval_width)
    return None


def _tracking_runs(prepared: dict[tuple[str, str], pd.Series], made: pd.DataFrame, saved: Saved,
                   as_of: pd.Timestamp, config: forecast.ForecastConfig, reason: str, seconds: float
                   ) -> list[ModelRun]:
    """Per metric and published method: the forecast made at the fit against the actuals since (median MASE over
    the series, the overall series' MASE, MAE and totals), as an evaluation run of the saved version."""
    fitted_at = pd.Timestamp(saved.as_of)
    made = made.assign(ds=pd.to_datetime(made["ds"]))
    scored = []
    for (series_id, metric, method), rows in made.groupby(["series_id", "metric", "model"], sort=True):
        y = prepared.get((series_id, metric))
        if y is None:
            continue
        actual = y.loc[fitted_at + pd.Timedelta(days=1): as_of]
        predicted = rows.set_index("ds")["yhat"].reindex(actual.index)
        scored.append({"series_id": series_id, "metric": metric, "method": method, "days": len(actual),
                       "mase": mase(actual, predicted, y.loc[:fitted_at]),
                       "mae": float(np.mean(np.abs(predicted - actual))) if len(actual) else None,
                       "actual": float(actual.sum()), "forecast": float(predicted.sum())})
    table = pd.DataFrame(scored, columns=["series_id", "metric", "method", "days", "mase", "mae", "actual",
                                          "forecast"])
    runs = []
    for (metric, method), group in table.groupby(["metric", "method"], sort=True):
        overall = group[group["series_id"] == "overall"]
        metrics = {"days_scored": int(group["days"].max()), "n_series": len(group),
                   "median_mase": float(group["mase"].median()) if group["mase"].notna().any() else None}
        if not overall.empty and overall["days"].iloc[0] > 0:
            metrics |= {f"overall_series_{k}": float(overall[k].iloc[0]) for k in ("mase", "mae", "actual",
                                                                                   "forecast")}
        runs.append(ModelRun(
            model_name=f"{method}_{metric}", purpose="production", as_of_date=as_of.date(), train_start=None,
            train_end=saved.as_of, holdout_end=as_of.date(), params=config.params(method), metrics=metrics,
            libraries=forecast.LIBRARIES[method], fit_seconds=seconds, run_kind="evaluation",
            model_version=saved.version, reason=reason))
    return runs


def _names(keys: list[tuple[str, str]], limit: int = 5) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(f"{s}/{m}" for s, m in keys[:limit]) + more

