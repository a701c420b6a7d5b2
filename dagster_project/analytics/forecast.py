"""Daily revenue / order-count forecasts: Prophet, AutoETS and the seasonal-naive baseline compete on a
rolling-origin backtest per series, and the best one is published.

The caller builds the series (overall, per region, per product category) as a long frame
``series_id, metric ('revenue'|'orders'), ds, y``. Each series is handled independently (forecast_contenders), in
parallel threads and a worker process (forecast_workers). The backtest (forecast_backtest) chooses the published
method per series on the earlier folds and reports its errors on the latest fold, which the choice did not see: one
method for every series would put Prophet's cost on a hundred small regional series, or leave the overall series
without its yearly and shopping-event terms. Errors are reported per horizon bucket (days 1-7, 8-30, 31-horizon,
overall).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date

import cmdstanpy
import numpy as np
import pandas as pd

from dagster_project.analytics import forecast_backtest as bt
from dagster_project.analytics import forecast_workers
from dagster_project.analytics.forecast_contenders import SeriesOutcome, forecast_one
from dagster_project.analytics.forecast_ets import WINDOW_DAYS
from dagster_project.analytics.forecast_events import SHOPPING_EVENTS, holiday_frame
from dagster_project.analytics.forecast_prophet import ProphetSettings
from dagster_project.analytics.forecast_warnings import library_warnings, warning_lines
from dagster_project.analytics.model_quality import ModelQuality
from dagster_project.analytics.model_runs import ModelRun
from dagster_project.analytics.progress import Progress, silent

METRICS = ("revenue", "orders")
MODELS = bt.METHODS
LIBRARIES = {"prophet": ("prophet", "cmdstanpy", "holidays"), "auto_ets": ("statsforecast",),
             "seasonal_naive": ("numpy",)}
QUESTION = "daily revenue over the next {horizon} days"
BASELINE_WORDS = "same weekday last week (seasonal naive)"

# Output schemas, so that even empty outputs carry column types (a warehouse table is created from them).
_KEY = {"series_id": "str", "metric": "str"}
FORECAST_SCHEMA = _KEY | {"ds": "datetime64[us]", "y": "float64", "yhat": "float64", "yhat_lower": "float64",
                          "yhat_upper": "float64", "model": "str", "is_history": "bool"}
BACKTEST_SCHEMA = _KEY | {"fold_origin": "datetime64[us]", "role": "str", "horizon_bucket": "str", "model": "str",
                          "mape": "float64", "smape": "float64", "mase": "float64", "mae": "float64",
                          "n_days": "int64"}
SUMMARY_SCHEMA = _KEY | {
    "model": "str", "history_days": "int64", "nonzero_days": "int64", "n_folds": "int64",
    "yearly_seasonality": "boolean", "prophet_mase": "float64", "ets_mase": "float64", "naive_mase": "float64",
    "published_mase": "float64", "prophet_selection_mase": "float64", "ets_selection_mase": "float64",
    "naive_selection_mase": "float64", "beats_naive": "boolean", "chosen": "str", "verdict": "str", "note": "str",
}
FORECAST_COLUMNS, BACKTEST_COLUMNS, SUMMARY_COLUMNS = (tuple(s) for s in (FORECAST_SCHEMA, BACKTEST_SCHEMA,
                                                                          SUMMARY_SCHEMA))


@dataclass(frozen=True)
class ForecastConfig:
    horizon_days: int = 90
    # ISO code of the country whose public holidays and shopping events (forecast_events) Prophet models; None:
    # neither.
    country: str | None = "CN"
    interval_width: float = 0.8
    n_folds: int = 3  # the latest is the evaluation fold, the others choose the method; 0 disables the backtest
    # = horizon: the selection folds' actuals end where the evaluation fold's begin.
    fold_spacing_days: int = 90
    # Threads fitting series in this process (1: one at a time, in the caller's thread, and no worker process).
    n_jobs: int = 2
    # With n_jobs > 1: a worker process fits AutoETS series too, on another core (forecast_workers).
    worker: bool = True
    min_nonzero_days: int = 30
    history_days_shown: int = 365
    # Series that Prophet competes for (exact series_id); the others choose between AutoETS and seasonal naive.
    prophet_series: tuple[str, ...] = ("overall",)
    ets_window_days: int = WINDOW_DAYS
    prophet: ProphetSettings = ProphetSettings()

    @property
    def min_history_days(self) -> int:
        return 2 * self.horizon_days

    def params(self, method: str) -> dict[str, float | str]:
        common = {"horizon_days": self.horizon_days, "interval_width": self.interval_width, "n_folds": self.n_folds,
                  "fold_spacing_days": self.fold_spacing_days}
        if method == "prophet":
            events = ", ".join(e.name for e in SHOPPING_EVENTS.get((self.country or "").upper(), ()))
            return common | {"holiday_country": self.country or "none", "shopping_events": events or "none",
                             "changepoint_prior_scale": self.prophet.changepoint_prior_scale,
                             "seasonality_prior_scale": self.prophet.seasonality_prior_scale,
                             "uncertainty_samples": self.prophet.uncertainty_samples}
        if method == "auto_ets":
            return common | {"season_length": 7, "window_days": self.ets_window_days,
                             "form": "chosen at the earliest backtest fold"}
        return common | {"season_length": 7}


@dataclass
class ForecastResult:
    forecasts: pd.DataFrame  # future rows (is_history=False) + the last history_days_shown days of actuals in `y`
    backtest: pd.DataFrame  # one row per series x fold x horizon bucket x method
    summary: pd.DataFrame  # one row per series: the published method, evaluation-fold errors, a plain verdict
    runs: list[ModelRun]
    quality: ModelQuality  # overall daily revenue: the published method against seasonal naive, unseen fold
    note: str | None
    # What Prophet, Stan or statsforecast warned about, one line per distinct message with the series it concerns.
    warnings: list[str] = field(default_factory=list)
    # Per (series_id, metric): the published method's fitted model ({"prophet": Prophet} / {"auto_ets": AutoETS}, {}
    # for the baseline), and the years the holiday table covers: what forecast_cadence saves.
    models: dict[tuple[str, str], dict] = field(default_factory=dict)
    holiday_years: tuple[int, int] | None = None
    fitted_in_worker: int = 0  # series fitted by the worker process (forecast_workers)


# --- many series ---------------------------------------------------------------------------------------------


def prepare(series: pd.DataFrame, as_of: pd.Timestamp) -> dict[tuple[str, str], pd.Series]:
    """One gap-free daily series per (series_id, metric), from its first day with y > 0 to as_of.

    Missing days are 0 (no orders); leading zeros are dropped because a series that had not started yet would
    otherwise drag the trend towards zero.
    """
    missing = {"series_id", "metric", "ds", "y"} - set(series.columns)
    if missing:
        raise ValueError(f"series is missing columns {sorted(missing)}")
    unknown = set(series["metric"].unique()) - set(METRICS)
    if unknown:
        raise ValueError(f"metric must be one of {METRICS}, got {sorted(unknown)}")
    frame = series.assign(ds=pd.to_datetime(series["ds"]).dt.normalize(),
                          y=pd.to_numeric(series["y"]).fillna(0.0).astype(float))
    daily = frame[frame["ds"] <= as_of].groupby(["series_id", "metric", "ds"])["y"].sum()
    prepared = {}
    for key, y in daily.groupby(level=["series_id", "metric"]):
        y = y.droplevel(["series_id", "metric"])
        started = y.index[y > 0]
        start = started[0] if len(started) else as_of + pd.Timedelta(days=1)
        prepared[key] = y.reindex(pd.date_range(start, as_of, name="ds"), fill_value=0.0)
    return prepared


def run_forecasts(series: pd.DataFrame, as_of: date, config: ForecastConfig = ForecastConfig(),
                  progress: Callable[[str], None] = silent) -> ForecastResult:
    """Forecast every (series_id, metric) in the long frame ``series_id, metric, ds, y``, using data up to as_of.

    ``progress`` receives a line now and then while the series are fitted ("40/108 series forecast")."""
    as_of = pd.Timestamp(as_of).normalize()
    prepared = prepare(series, as_of)
    if not prepared:
        return _empty_result("no series to forecast: the input has no rows on or before as_of", config)
    starts = [y.index[0] for y in prepared.values() if len(y)]
    end = as_of + pd.Timedelta(days=config.horizon_days)
    years = (min(starts, default=as_of).year, end.year)
    holidays = holiday_frame(config.country, range(years[0], years[1] + 1))
    # Prophet's series first: they take longest, and the threads then share out the small ones.
    order = sorted(prepared, key=lambda key: key[0] not in config.prophet_series)
    counter = Progress(progress, "series forecast", len(prepared))
    outcomes: dict[tuple[str, str], SeriesOutcome] = {}
    in_worker = 0
    with library_warnings() as found, cmdstanpy.disable_logging():
        for key, outcome, by_worker in _in_parallel(order, prepared, as_of, config, holidays, found):
            outcomes[key] = outcome
            in_worker += by_worker
            counter.advance()
    ordered = [outcomes[key] for key in prepared]  # outputs in a reproducible order
    summary = pd.DataFrame([o.summary for o in ordered]).reindex(columns=list(SUMMARY_SCHEMA)).astype(SUMMARY_SCHEMA)
    keys = [{"series_id": series_id, "metric": metric} for series_id, metric in prepared]
    backtest = _concat([(key, o.backtest) for key, o in zip(keys, ordered)], BACKTEST_SCHEMA)
    return ForecastResult(
        forecasts=_concat([(key | {"model": o.summary["model"]}, o.forecast) for key, o in zip(keys, ordered)
                           if o.forecast is not None], FORECAST_SCHEMA),
        backtest=backtest,
        summary=summary,
        runs=_model_runs(ordered, summary, backtest, as_of, config),
        quality=forecast_quality(summary, backtest, config),
        note=_note(summary),
        warnings=warning_lines(found),
        models={key: outcomes[key].model for key in prepared},
        holiday_years=years,
        fitted_in_worker=in_worker,
    )


def _in_parallel(order, prepared, as_of, config, holidays, found
                 ) -> Iterator[tuple[tuple[str, str], SeriesOutcome, bool]]:
    """(key, outcome, whether the worker fitted it) as each series finishes: in threads here (Prophet's Stan runs in a
    subprocess, so its fits overlap, and threads share the imported libraries) and, with ``config.worker``, in a
    worker process for the AutoETS series, whose fits hold Python's lock (forecast_workers)."""
    def arguments(key):
        return (*key, prepared[key], as_of, config, holidays, key[0] in config.prophet_series)

    def one(key):
        return forecast_one(*arguments(key))

    if config.n_jobs <= 1:
        yield from ((key, one(key), False) for key in order)
        return
    yield from forecast_workers.fit_all(order, one, lambda key: None if key[0] in config.prophet_series else
                                        arguments(key), config.n_jobs, config.worker, found)


def _concat(parts: list[tuple[dict[str, str], pd.DataFrame]], schema: dict[str, str]) -> pd.DataFrame:
    """The frames one below the other, each with its constant columns (the series' key, the method) added."""
    parts = [(constants, frame) for constants, frame in parts if not frame.empty]
    if not parts:
        return _empty(schema)
    joined = pd.concat([frame for _, frame in parts], ignore_index=True)
    lengths = [len(frame) for _, frame in parts]
    for column in parts[0][0]:
        joined[column] = np.repeat(np.array([constants[column] for constants, _ in parts], dtype=object), lengths)
    return joined[list(schema)].astype(schema)


def _empty(schema: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in schema.items()})


def _empty_result(note: str, config: ForecastConfig) -> ForecastResult:
    summary = _empty(SUMMARY_SCHEMA)
    return ForecastResult(_empty(FORECAST_SCHEMA), _empty(BACKTEST_SCHEMA), summary, [],
                          forecast_quality(summary, _empty(BACKTEST_SCHEMA), config), note)


# --- what the refresh records --------------------------------------------------------------------------------


def forecast_quality(summary: pd.DataFrame, backtest: pd.DataFrame, config: ForecastConfig) -> ModelQuality:
    """Overall daily revenue: the published method's MASE on the evaluation fold next to seasonal naive's."""
    question = QUESTION.format(horizon=config.horizon_days)
    common = {"model": "forecast", "question": question, "metric": "MASE", "higher_is_better": False,
              "baseline": BASELINE_WORDS}
    row = summary[(summary["series_id"] == "overall") & (summary["metric"] == "revenue")]
    if row.empty or pd.isna(row["model"].iloc[0]):
        return ModelQuality(**common, published="none", published_value=None, baseline_value=None,
                            beats_baseline=False, n_eval=0, evaluation="no overall revenue series to forecast",
                            note="no overall daily revenue with enough history")
    row = row.iloc[0]
    fold = backtest[(backtest["series_id"] == "overall") & (backtest["metric"] == "revenue")
                    & (backtest["role"] == bt.EVALUATION) & (backtest["horizon_bucket"] == "overall")]
    notes = [row["note"]] if pd.notna(row["note"]) else []
    if fold.empty:
        return ModelQuality(**common, published=row["model"], published_value=None, baseline_value=None,
                            beats_baseline=False, n_eval=0, evaluation="not backtested",
                            note="; ".join(notes + [row["chosen"]]))
    origin, n_days = fold["fold_origin"].iloc[0], int(fold["n_days"].iloc[0])
    last = origin + pd.Timedelta(days=n_days)
    n_selection = int(backtest.loc[(backtest["series_id"] == "overall") & (backtest["metric"] == "revenue")
                                   & (backtest["role"] == bt.SELECTION), "fold_origin"].nunique())
    evaluation = (f"overall daily revenue on the {n_days} days {(origin + pd.Timedelta(days=1)).date()} to "
                  f"{last.date()}, forecast with data up to {origin.date()} only; the method was chosen on "
                  f"{n_selection} earlier {config.horizon_days}-day folds")
    if n_selection == 0:
        notes.append("chosen on the evaluation fold itself: its figure flatters the published method")
    if row["model"] == bt.BASELINE:
        notes.append("the seasonal-naive baseline itself is published: neither Prophet nor AutoETS beat it")
    return ModelQuality(**common, published=row["model"], published_value=row["published_mase"],
                        baseline_value=row["naive_mase"], beats_baseline=bool(row["beats_naive"]) if pd.notna(row["beats_naive"]) else False,
                        n_eval=n_days, evaluation=evaluation, note="; ".join(notes) or None)


def _model_runs(outcomes: list[SeriesOutcome], summary: pd.DataFrame, backtest: pd.DataFrame, as_of: pd.Timestamp,
                config: ForecastConfig) -> list[ModelRun]:
    """Per metric and method: a 'backtest' run (medians across series of the evaluation-fold errors) and, when the
    method is published for some series, a 'production' run. fit_seconds is worker time summed over series."""
    runs = []
    for metric in METRICS:
        mine = summary[summary["metric"] == metric]
        if mine.empty:
            continue
        train_start = (as_of - pd.Timedelta(days=int(mine["history_days"].max()) - 1)).date()
        for method in MODELS:
            seconds = {kind: sum(o.seconds.get(f"{method}:{kind}", 0.0) for o in outcomes
                                 if o.summary["metric"] == metric) for kind in ("backtest", "production")}
            common = {"model_name": f"{method}_{metric}", "as_of_date": as_of.date(), "train_start": train_start,
                      "params": config.params(method), "libraries": LIBRARIES[method]}
            published = int((mine["model"] == method).sum())
            if published:
                runs.append(ModelRun(purpose="production", train_end=as_of.date(), fit_seconds=seconds["production"],
                                     metrics={"n_series": len(mine), "n_series_published": published}, **common))
            scored = backtest[(backtest["metric"] == metric) & (backtest["model"] == method)]
            evaluated = scored[scored["role"] == bt.EVALUATION]
            if not evaluated.empty:
                origin = evaluated["fold_origin"].max()
                runs.append(ModelRun(
                    purpose="backtest", train_end=origin.date(),
                    holdout_end=(origin + pd.Timedelta(days=config.horizon_days)).date(),
                    fit_seconds=seconds["backtest"], metrics=_backtest_metrics(scored, mine, method), **common,
                ))
    return runs


def _backtest_metrics(scored: pd.DataFrame, summary: pd.DataFrame, method: str) -> dict[str, float]:
    """Medians across series of the evaluation-fold errors per bucket, the selection folds' median MASE, the
    overall series' evaluation MASE, and for how many series the method was published."""
    evaluated = scored[scored["role"] == bt.EVALUATION]
    medians = evaluated.groupby("horizon_bucket")[["mase", "smape", "mape"]].median()
    metrics = {f"{error}_{bucket}": value for bucket, errors in medians.iterrows() for error, value in errors.items()}
    selection = scored[(scored["role"] == bt.SELECTION) & (scored["horizon_bucket"] == "overall")]
    if not selection.empty:
        metrics["selection_mase_overall"] = selection.groupby("series_id")["mase"].mean().median()
    overall = evaluated[(evaluated["series_id"] == "overall") & (evaluated["horizon_bucket"] == "overall")]
    if not overall.empty:
        metrics["overall_series_mase"] = float(overall["mase"].iloc[0])
    return metrics | {"n_series_backtested": int(evaluated["series_id"].nunique()),
                      "n_series_published": int((summary["model"] == method).sum())}


def _note(summary: pd.DataFrame) -> str | None:
    parts = []
    published = summary["model"].value_counts()
    if len(published):
        parts.append("published: " + ", ".join(f"{method} for {count} series" for method, count in published.items()))
    skipped = summary[summary["model"].isna()]
    if len(skipped):
        parts.append(f"{len(skipped)} series skipped: {_names(skipped)}")
    judged = summary[summary["beats_naive"].notna() & (summary["model"] != bt.BASELINE)]
    lost = judged[~judged["beats_naive"].astype(bool)]
    if len(lost):
        parts.append(f"{len(lost)} of {len(judged)} published model forecasts do not beat seasonal naive on the "
                     f"evaluation fold ({_names(lost)})")
    if len(summary["note"].dropna()):
        parts.append(f"{summary['note'].notna().sum()} series with notes (forecast_summary.note)")
    if len(published):
        parts.append("MAPE covers only days with y > 0")
    return "; ".join(parts) or None


def _names(rows: pd.DataFrame, limit: int = 10) -> str:
    names = [f"{s}/{m}" for s, m in zip(rows["series_id"], rows["metric"])]
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more

