"""Daily revenue / order-count forecasts with Prophet, backtested against a weekly seasonal-naive baseline.

The caller builds the series (overall, per region, per product category) as a long frame
``series_id, metric ('revenue'|'orders'), ds, y``; each series is fitted independently, in parallel over
processes, because Prophet fits are single-threaded and independent.

Backtest: rolling origins ``as_of - horizon - k * fold_spacing_days`` (k = 0..n_folds-1), so every fold forecasts
the full horizon with actuals on or before ``as_of``; each fold trains only on data dated on or before its origin.
Errors are reported per horizon bucket (days 1-7, 8-30, 31-horizon, overall) for Prophet and for the
seasonal-naive baseline (the value 7 days earlier, repeated). MAPE, sMAPE and MASE are fractions (0.1 = 10%);
MAPE only covers days with y > 0, since a zero day has no percentage error.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from statistics import NormalDist

import cmdstanpy
import holidays
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from prophet import Prophet

from dagster_project.analytics.model_runs import ModelRun
from dagster_project.analytics.progress import Progress, silent

METRICS = ("revenue", "orders")
MODELS = ("prophet", "seasonal_naive")
SEASON = 7
LIBRARIES = ("prophet", "cmdstanpy")
# Prophet's own rule: fewer than two yearly cycles cannot separate yearly seasonality from trend. Prophet measures
# the span from the first to the last day (730 days of history span 729), and warns when it is shorter.
YEARLY_MIN_DAYS = 730
# Loggers whose warnings during a fit are collected and reported once per asset, with the series they concern.
LIBRARY_LOGGERS = ("prophet", "cmdstanpy")

# Output schemas, so that even empty outputs carry column types (a warehouse table is created from them).
_KEY = {"series_id": "str", "metric": "str"}
FORECAST_SCHEMA = _KEY | {"ds": "datetime64[us]", "y": "float64", "yhat": "float64", "yhat_lower": "float64",
                          "yhat_upper": "float64", "model": "str", "is_history": "bool"}
BACKTEST_SCHEMA = _KEY | {"fold_origin": "datetime64[us]", "horizon_bucket": "str", "model": "str", "mape": "float64",
                          "smape": "float64", "mase": "float64", "mae": "float64", "n_days": "int64"}
SUMMARY_SCHEMA = _KEY | {
    "model": "str", "history_days": "int64", "nonzero_days": "int64", "n_folds": "int64", "prophet_mase": "float64",
    "naive_mase": "float64", "prophet_smape": "float64", "naive_smape": "float64", "prophet_mape": "float64",
    "naive_mape": "float64", "prophet_wins": "boolean", "verdict": "str", "note": "str",
}
FORECAST_COLUMNS, BACKTEST_COLUMNS, SUMMARY_COLUMNS = (tuple(s) for s in (FORECAST_SCHEMA, BACKTEST_SCHEMA,
                                                                          SUMMARY_SCHEMA))
PROPHET_WINS = "Prophet beats seasonal-naive"
BASELINE_WINS = "the seasonal-naive baseline wins"


@dataclass(frozen=True)
class ForecastConfig:
    horizon_days: int = 90
    # ISO code of the country whose public holidays are modelled (the `holidays` package); None: no holidays.
    country: str | None = "CN"
    interval_width: float = 0.8
    n_folds: int = 3  # 0 disables the backtest
    fold_spacing_days: int = 30
    n_jobs: int = 2
    changepoint_prior_scale: float = 0.05
    seasonality_prior_scale: float = 10.0
    uncertainty_samples: int = 200  # production intervals only; backtests score yhat and skip sampling
    min_nonzero_days: int = 30
    history_days_shown: int = 365
    seed: int = 0  # Prophet draws its intervals from NumPy's global RNG; seeding keeps refreshes reproducible
    # Recurring commercial peaks that are not public holidays, as (name, "MM-DD"), e.g. (("Singles' Day", "11-11"),).
    # They belong to a market, not a calendar: set them only with that market's country (618 and Singles' Day: CN).
    extra_events: tuple[tuple[str, str], ...] = ()

    @property
    def min_history_days(self) -> int:
        return 2 * self.horizon_days

    def params(self) -> dict[str, float | str]:
        return {
            "holiday_country": self.country or "none",
            "changepoint_prior_scale": self.changepoint_prior_scale,
            "seasonality_prior_scale": self.seasonality_prior_scale,
            "horizon_days": self.horizon_days,
            "interval_width": self.interval_width,
            "n_folds": self.n_folds,
            "fold_spacing_days": self.fold_spacing_days,
            "uncertainty_samples": self.uncertainty_samples,
        }


@dataclass
class ForecastResult:
    forecasts: pd.DataFrame  # future rows (is_history=False) + the last history_days_shown days of actuals in `y`
    backtest: pd.DataFrame  # one row per series x fold x horizon bucket x model
    summary: pd.DataFrame  # one row per series: fold-mean overall errors of both models and a plain verdict
    runs: list[ModelRun]
    note: str | None
    # What Prophet or Stan warned about, one line per distinct message with the series it concerns.
    warnings: list[str] = field(default_factory=list)


# --- metrics -------------------------------------------------------------------------------------------------


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


# --- holidays ------------------------------------------------------------------------------------------------


def holiday_frame(country: str | None, years, extra_events: tuple[tuple[str, str], ...] = ()) -> pd.DataFrame:
    """Prophet ``holidays`` frame (holiday, ds) built from the ``holidays`` package, so Prophet fetches nothing;
    ``country`` None gives the extra events only.

    The package names observed days and bridge days ("Day off (substituted from 01/28/2023)") individually, which
    would give Prophet a one-off column per year that never recurs in the forecast. Observed days keep their
    holiday's name and each bridge day takes the name of the nearest proper holiday (the Spring Festival week is
    all "Chinese New Year (Spring Festival)").
    """
    frame = pd.DataFrame({"ds": pd.Series(dtype="datetime64[ns]"), "holiday": pd.Series(dtype="str")})
    if country is not None:
        calendar = holidays.country_holidays(country, years=list(years), language="en_US")
        dates = pd.to_datetime(sorted(calendar))
        names = [calendar.get_list(d.date())[0].replace(" (observed)", "") for d in dates]
        frame = pd.DataFrame({"ds": dates, "holiday": names})
        proper = frame[~frame["holiday"].str.startswith("Day off")]
        if not proper.empty:
            frame = pd.merge_asof(frame[["ds"]], proper, on="ds", direction="nearest")
    events = pd.DataFrame(
        [(name, pd.Timestamp(f"{year}-{month_day}")) for year in years for name, month_day in extra_events],
        columns=["holiday", "ds"],
    )
    return pd.concat([frame, events], ignore_index=True)[["holiday", "ds"]].sort_values("ds", ignore_index=True)


# --- single-series models ------------------------------------------------------------------------------------


def _prophet_forecast(
    train: pd.Series, horizon: int, config: ForecastConfig, holiday_df: pd.DataFrame | None, uncertainty_samples: int,
) -> pd.DataFrame:
    """Fit Prophet (MAP, no MCMC) on ``train`` and forecast the next ``horizon`` days, clipped at 0."""
    model = Prophet(
        weekly_seasonality=True,
        yearly_seasonality=train.index[-1] - train.index[0] >= pd.Timedelta(days=YEARLY_MIN_DAYS),
        daily_seasonality=False,
        holidays=holiday_df,
        changepoint_prior_scale=config.changepoint_prior_scale,
        seasonality_prior_scale=config.seasonality_prior_scale,
        interval_width=config.interval_width,
        mcmc_samples=0,
        uncertainty_samples=uncertainty_samples,
    )
    with cmdstanpy.disable_logging():  # two INFO lines per fit otherwise, times hundreds of series
        model.fit(pd.DataFrame({"ds": train.index, "y": train.to_numpy()}))
    with _seeded_global_rng(config.seed):
        predicted = model.predict(model.make_future_dataframe(horizon, include_history=False)).set_index("ds")
    columns = ["yhat", "yhat_lower", "yhat_upper"] if uncertainty_samples else ["yhat"]
    # Revenue and order counts cannot be negative; a negative forecast is always a worse one.
    return predicted[columns].clip(lower=0)


@contextmanager
def _seeded_global_rng(seed: int):
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _naive_forecast(history: pd.Series, horizon: int, interval_width: float) -> pd.DataFrame:
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


def fold_forecast(
    y: pd.Series, origin, config: ForecastConfig = ForecastConfig(), holiday_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Prophet and seasonal-naive point forecasts for the ``horizon_days`` after ``origin``.

    Both models see only ``y`` dated on or before ``origin``: this is the one place a backtest fold touches data.
    """
    train = y.loc[: pd.Timestamp(origin)]
    if holiday_df is None:
        holiday_df = _holidays_for(train.index[0], train.index[-1], config)
    prophet = _prophet_forecast(train, config.horizon_days, config, holiday_df, uncertainty_samples=0)["yhat"]
    return pd.DataFrame({"prophet": prophet, "seasonal_naive": seasonal_naive(train, config.horizon_days)})


def _holidays_for(first: pd.Timestamp, last: pd.Timestamp, config: ForecastConfig) -> pd.DataFrame | None:
    """The holidays of the training window and horizon; None (Prophet's "no holidays") when there are none."""
    end = last + pd.Timedelta(days=config.horizon_days)
    frame = holiday_frame(config.country, range(first.year, end.year + 1), config.extra_events)
    return frame if not frame.empty else None


def _buckets(horizon: int) -> list[tuple[str, int, int]]:
    """(label, first day, last day) of each horizon bucket, 1-based, plus 'overall'."""
    edges = [0] + [edge for edge in (7, 30) if edge < horizon] + [horizon]
    buckets = [(f"days_{lo + 1}_{hi}", lo + 1, hi) for lo, hi in zip(edges, edges[1:])]
    return buckets + [("overall", 1, horizon)]


def _score_fold(actual: pd.Series, predictions: pd.DataFrame, train: pd.Series) -> list[dict]:
    rows = []
    for label, first, last in _buckets(len(actual)):
        observed = actual.to_numpy()[first - 1 : last]
        for model in MODELS:
            predicted = predictions[model].to_numpy()[first - 1 : last]
            rows.append({
                "horizon_bucket": label, "model": model, "mape": mape(observed, predicted),
                "smape": smape(observed, predicted), "mase": mase(observed, predicted, train),
                "mae": float(np.mean(np.abs(predicted - observed))), "n_days": len(observed),
            })
    return rows


def _fold_origins(as_of: pd.Timestamp, config: ForecastConfig) -> list[pd.Timestamp]:
    """Latest origin first; the latest fold's horizon ends exactly at as_of."""
    latest = as_of - pd.Timedelta(days=config.horizon_days)
    return [latest - pd.Timedelta(days=k * config.fold_spacing_days) for k in range(config.n_folds)]


def _prophet_ready(y: pd.Series, config: ForecastConfig) -> bool:
    return len(y) >= config.min_history_days and int((y > 0).sum()) >= config.min_nonzero_days


def _backtest(
    y: pd.Series, as_of: pd.Timestamp, config: ForecastConfig, holiday_df: pd.DataFrame | None,
) -> pd.DataFrame:
    """Score every fold whose training window is long enough for Prophet; shorter folds are left out."""
    rows = []
    for origin in _fold_origins(as_of, config):
        train = y.loc[:origin]
        if not _prophet_ready(train, config):
            continue
        try:
            predictions = fold_forecast(y, origin, config, holiday_df)
        except RuntimeError:  # a failed Stan optimisation costs this fold, not the refresh
            continue
        actual = y.loc[origin + pd.Timedelta(days=1) : origin + pd.Timedelta(days=config.horizon_days)]
        rows += [{"fold_origin": origin, **row} for row in _score_fold(actual, predictions, train)]
    return pd.DataFrame(rows, columns=BACKTEST_COLUMNS[2:])


def _production(y: pd.Series, config: ForecastConfig, holiday_df: pd.DataFrame | None):
    """(model, future frame or None, note): Prophet when the history allows, else seasonal-naive, else skip."""
    if y.empty:
        return None, None, "skipped: no non-zero values on or before as_of"
    shortfall = (f"{len(y)} days / {int((y > 0).sum())} non-zero days of history, Prophet needs "
                 f"{config.min_history_days} / {config.min_nonzero_days}")
    if _prophet_ready(y, config):
        try:
            future = _prophet_forecast(y, config.horizon_days, config, holiday_df, config.uncertainty_samples)
            return "prophet", future, None
        except RuntimeError as error:
            shortfall = f"Prophet failed to fit: {error}"
    if len(y) < 2 * SEASON:  # one season to repeat plus one to estimate the interval width
        return None, None, f"skipped ({shortfall})"
    future = _naive_forecast(y, config.horizon_days, config.interval_width)
    return "seasonal_naive", future, f"seasonal-naive fallback ({shortfall})"


def _forecast_rows(y: pd.Series, future: pd.DataFrame, config: ForecastConfig) -> pd.DataFrame:
    history = y.iloc[-config.history_days_shown :].rename("y").to_frame().assign(is_history=True)
    future = future.reindex(columns=["yhat", "yhat_lower", "yhat_upper"]).assign(is_history=False)
    return pd.concat([history, future]).rename_axis("ds").reset_index()


def _verdict(overall: pd.DataFrame) -> tuple[bool, str]:
    """Compare fold-mean overall errors; MAE decides when MASE is undefined (exactly weekly-periodic training)."""
    prophet, naive = overall.loc["prophet"], overall.loc["seasonal_naive"]
    if np.isfinite(prophet["mase"]) and np.isfinite(naive["mase"]):
        wins, basis = prophet["mase"] < naive["mase"], f"on MASE ({prophet['mase']:.3f} vs {naive['mase']:.3f})"
    else:
        wins = prophet["mae"] < naive["mae"]
        basis = (f"on MAE ({prophet['mae']:.4g} vs {naive['mae']:.4g}; MASE undefined: the training data "
                 "repeats exactly every week)")
    return bool(wins), f"{PROPHET_WINS if wins else BASELINE_WINS} {basis}"


def _summary_row(y: pd.Series, model: str | None, backtest: pd.DataFrame, note: str | None, n_folds: int) -> dict:
    row = {"model": model, "history_days": len(y), "nonzero_days": int((y > 0).sum()),
           "n_folds": backtest["fold_origin"].nunique(), "prophet_wins": None, "note": note}
    if n_folds == 0:
        return row | {"verdict": "not backtested: n_folds is 0"}
    if backtest.empty:
        return row | {"verdict": "not backtested: no fold has enough history for Prophet"}
    overall = backtest[backtest["horizon_bucket"] == "overall"].groupby("model")[["mase", "smape", "mape", "mae"]]
    overall = overall.mean()
    row["prophet_wins"], row["verdict"] = _verdict(overall)
    for name, prefix in (("prophet", "prophet"), ("seasonal_naive", "naive")):
        row |= {f"{prefix}_{metric}": overall.loc[name, metric] for metric in ("mase", "smape", "mape")}
    return row


@dataclass
class _Outcome:
    forecast: pd.DataFrame
    backtest: pd.DataFrame
    summary: dict
    fit_seconds: float
    backtest_seconds: float
    warnings: list[str] = field(default_factory=list)


def _forecast_series(
    series_id: str, metric: str, y: pd.Series, as_of: pd.Timestamp, config: ForecastConfig,
    holiday_df: pd.DataFrame | None,
) -> _Outcome:
    """Everything for one series; runs in a worker process."""
    with _library_warnings() as caught:
        started = time.perf_counter()
        model, future, note = _production(y, config, holiday_df)
        fitted = time.perf_counter()
        backtest = _backtest(y, as_of, config, holiday_df) if model == "prophet" else _empty(BACKTEST_SCHEMA)
        forecast = _forecast_rows(y, future, config) if model else _empty(FORECAST_SCHEMA)
    key = {"series_id": series_id, "metric": metric}
    return _Outcome(
        forecast=forecast.assign(model=model, **key),
        backtest=backtest.assign(**key),
        summary=key | _summary_row(y, model, backtest, note, config.n_folds),
        fit_seconds=fitted - started,
        backtest_seconds=time.perf_counter() - fitted,
        warnings=list(dict.fromkeys(caught)),
    )


class _Collect(logging.Handler):
    def __init__(self, found: list[str]):
        super().__init__(logging.WARNING)
        self.found = found

    def emit(self, record: logging.LogRecord) -> None:
        self.found.append(" ".join(record.getMessage().split()))


@contextmanager
def _library_warnings() -> Iterator[list[str]]:
    """Collect what Prophet and Stan warn about during a fit (their loggers' warnings and Python warnings) instead of
    letting it reach stderr from a worker process, where it names neither the asset nor the series.

    Deprecation warnings of the libraries' own code are passed on to Python's warning filters unchanged."""
    found: list[str] = []
    handler = _Collect(found)
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    propagate = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield found
    finally:
        for logger, before in zip(loggers, propagate):
            logger.removeHandler(handler)
            logger.propagate = before
    for warning in caught:
        if issubclass(warning.category, DeprecationWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        else:
            found.append(" ".join(str(warning.message).split()))


def _warning_lines(keys: list[tuple[str, str]], outcomes: list[_Outcome], shown: int = 5) -> list[str]:
    """One line per distinct library warning, naming the series it came from (the first few, then how many)."""
    series: dict[str, list[str]] = {}
    for (series_id, metric), outcome in zip(keys, outcomes):
        for message in outcome.warnings:
            series.setdefault(message, []).append(f"{series_id}/{metric}")
    return [f"{message} (series {', '.join(names[:shown])}" + (f" and {len(names) - shown} more)" if len(names) > shown
                                                               else ")")
            for message, names in series.items()]


# --- many series ---------------------------------------------------------------------------------------------


def _prepare(series: pd.DataFrame, as_of: pd.Timestamp) -> dict[tuple[str, str], pd.Series]:
    """One gap-free daily series per (series_id, metric), from its first day with y > 0 to as_of.

    Missing days are 0 (no orders); leading zeros are dropped because a series that had not started yet would
    otherwise drag Prophet's trend towards zero.
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
    prepared = _prepare(series, as_of)
    if not prepared:
        return _empty_result("no series to forecast: the input has no rows on or before as_of")
    starts = [y.index[0] for y in prepared.values() if len(y)]
    holiday_df = _holidays_for(min(starts, default=as_of), as_of, config)
    counter = Progress(progress, "series forecast", len(prepared))
    outcomes = []
    # In input order as each finishes (the outputs stay in a reproducible order), for the progress lines.
    for outcome in Parallel(n_jobs=min(config.n_jobs, len(prepared)), backend="loky", return_as="generator")(
        delayed(_forecast_series)(series_id, metric, y, as_of, config, holiday_df)
        for (series_id, metric), y in prepared.items()
    ):
        outcomes.append(outcome)
        counter.advance()
    summary = pd.DataFrame([o.summary for o in outcomes]).reindex(columns=list(SUMMARY_SCHEMA)).astype(SUMMARY_SCHEMA)
    backtest = _concat([o.backtest for o in outcomes], BACKTEST_SCHEMA)
    return ForecastResult(
        forecasts=_concat([o.forecast for o in outcomes], FORECAST_SCHEMA),
        backtest=backtest,
        summary=summary,
        runs=_model_runs(outcomes, summary, backtest, as_of, config),
        note=_note(summary),
        warnings=_warning_lines(list(prepared), outcomes),
    )


def _concat(frames: list[pd.DataFrame], schema: dict[str, str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True)[list(schema)].astype(schema) if frames else _empty(schema)


def _empty(schema: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in schema.items()})


def _empty_result(note: str) -> ForecastResult:
    return ForecastResult(_empty(FORECAST_SCHEMA), _empty(BACKTEST_SCHEMA), _empty(SUMMARY_SCHEMA), [], note)


def _model_runs(
    outcomes: list[_Outcome], summary: pd.DataFrame, backtest: pd.DataFrame, as_of: pd.Timestamp,
    config: ForecastConfig,
) -> list[ModelRun]:
    """One 'production' and one 'backtest' run per metric; per-series detail stays in summary / backtest.

    fit_seconds is worker time summed over series, not wall-clock time.
    """
    runs = []
    for metric in METRICS:
        mine = summary["metric"] == metric
        fitted = summary[mine & summary["model"].notna()]
        if fitted.empty:
            continue
        seconds = [(o.fit_seconds, o.backtest_seconds) for o, m in zip(outcomes, mine) if m]
        train_start = (as_of - pd.Timedelta(days=int(fitted["history_days"].max()) - 1)).date()
        common = {"model_name": f"prophet_{metric}", "as_of_date": as_of.date(), "train_start": train_start,
                  "params": config.params(), "libraries": LIBRARIES}
        runs.append(ModelRun(
            purpose="production", train_end=as_of.date(), fit_seconds=sum(s[0] for s in seconds),
            metrics={"n_series": int(mine.sum()), "n_prophet": int((fitted["model"] == "prophet").sum()),
                     "n_seasonal_naive": int((fitted["model"] == "seasonal_naive").sum()),
                     "n_skipped": int(mine.sum() - len(fitted))},
            **common,
        ))
        scored = backtest[backtest["metric"] == metric]
        if not scored.empty:
            last_origin = scored["fold_origin"].max()
            runs.append(ModelRun(
                purpose="backtest", train_end=last_origin.date(),
                holdout_end=(last_origin + pd.Timedelta(days=config.horizon_days)).date(),
                fit_seconds=sum(s[1] for s in seconds), metrics=_backtest_metrics(scored, summary[mine]), **common,
            ))
    return runs


def _backtest_metrics(scored: pd.DataFrame, summary: pd.DataFrame) -> dict[str, float]:
    """Medians across series of each series' fold-mean error, per model x error x bucket, plus the win count."""
    per_series = scored.groupby(["series_id", "model", "horizon_bucket"])[["mase", "smape", "mape"]].mean()
    medians = per_series.groupby(["model", "horizon_bucket"]).median()
    metrics = {
        f"{'naive' if model == 'seasonal_naive' else model}_{error}_{bucket}": value
        for (model, bucket), errors in medians.iterrows() for error, value in errors.items()
    }
    judged = summary["prophet_wins"].dropna()
    return metrics | {"n_series_backtested": len(judged), "n_prophet_wins": int(judged.sum()),
                      "prophet_win_share": float(judged.mean())}


def _note(summary: pd.DataFrame) -> str | None:
    parts = []
    fallback, skipped = summary[summary["model"] == "seasonal_naive"], summary[summary["model"].isna()]
    if len(fallback):
        parts.append(f"{len(fallback)} series forecast with the seasonal-naive fallback: {_names(fallback)}")
    if len(skipped):
        parts.append(f"{len(skipped)} series skipped: {_names(skipped)}")
    judged = summary[summary["prophet_wins"].notna()]
    if len(judged):
        lost = judged[~judged["prophet_wins"].astype(bool)]
        parts.append(f"the seasonal-naive baseline wins for {len(lost)} of {len(judged)} backtested series"
                     + (f" ({_names(lost)})" if len(lost) else ""))
        parts.append("MAPE covers only days with y > 0")
    return "; ".join(parts) or None


def _names(rows: pd.DataFrame, limit: int = 10) -> str:
    names = [f"{s}/{m}" for s, m in zip(rows["series_id"], rows["metric"])]
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
