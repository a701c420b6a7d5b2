"""Forecast tests: error metrics by hand, the country's events, backtest folds long enough for the terms production
uses, leakage-free folds, the published method chosen by backtest MASE, and the forecast against seasonal naive on
generated data over three seeds."""

from __future__ import annotations

import os
import signal
import tempfile
from datetime import date
from pathlib import Path

import holidays
import numpy as np
import pandas as pd
import pytest

from dagster_project.analytics import forecast as forecast_module
from dagster_project.analytics import forecast_workers
from dagster_project.analytics.forecast import (
    BACKTEST_COLUMNS, FORECAST_COLUMNS, SUMMARY_COLUMNS, ForecastConfig, run_forecasts,
)
from dagster_project.analytics.forecast_backtest import EVALUATION, SELECTION, fold_means, lowest
from dagster_project.analytics.forecast_contenders import forecast_one, yearly_terms
from dagster_project.analytics.forecast_ets import ets_form
from dagster_project.analytics.forecast_events import holiday_frame
from dagster_project.analytics.forecast_metrics import mape, mase, seasonal_naive, smape
from dagster_project.analytics.forecast_prophet import ProphetSettings, prophet_forecast
from dagster_project.analytics.model_runs import model_runs_frame
from dagster_project.sample_data import generate

# Prophet 1.5 itself still calls pandas with inplace=True, which pandas 3.1 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword::prophet")

AS_OF = date(2024, 12, 31)
WEEKLY_SHAPE = np.array([0.9, 0.85, 0.9, 0.95, 1.1, 1.25, 1.2])  # Monday .. Sunday


def synthetic(days: int = 1096, level: float = 1000.0, noise: float = 0.05, seed: int = 0,
              peaks: tuple[str, ...] = ("11-11",)) -> pd.Series:
    """Daily revenue ending at AS_OF: trend + weekly + yearly seasonality, a Spring Festival dip, a threefold peak
    on each of ``peaks`` ("MM-DD" or a full date), noise."""
    ds = pd.date_range(end=AS_OF, periods=days, name="ds")
    t = np.arange(days)
    yearly = 1 + 0.2 * np.sin(2 * np.pi * (ds.day_of_year - 80) / 365.25)
    y = level * (1 + t / 1096) * WEEKLY_SHAPE[ds.day_of_week] * yearly
    calendar = holidays.country_holidays("CN", years=range(ds[0].year, AS_OF.year + 1), language="en_US")
    spring_festival = pd.to_datetime([d for d, name in calendar.items() if "Spring Festival" in name])
    y = np.where(ds.isin(spring_festival), 0.5 * y, y)
    for peak in peaks:
        on_peak = ds.strftime("%m-%d") == peak if len(peak) == 5 else ds == pd.Timestamp(peak)
        y = np.where(on_peak, 3 * y, y)
    y = y + np.random.default_rng(seed).normal(0, noise * level, days)
    return pd.Series(np.clip(y, 0, None), index=ds, name="y")


def long_frame(series_id: str, metric: str, y: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"series_id": series_id, "metric": metric, "ds": y.index.date, "y": y.to_numpy()})


# ----------------------------------------------------------------------------------------------------- metrics

def test_mape_skips_zero_days_and_smape_treats_zero_zero_as_perfect():
    actual, predicted = [100, 0, 50], [110, 10, 40]
    assert mape(actual, predicted) == pytest.approx((10 / 100 + 10 / 50) / 2)
    assert smape(actual, predicted) == pytest.approx((20 / 210 + 20 / 10 + 20 / 90) / 3)
    assert smape([0, 0], [0, 0]) == 0.0
    assert np.isnan(mape([0, 0], [1, 2]))


def test_mase_scales_by_in_sample_weekly_naive_mae():
    training = [1, 2, 3, 4, 5, 6, 7, 3, 2, 3, 4, 5, 6, 9]  # |y_t - y_{t-7}| = 2,0,0,0,0,0,2 -> scale 4/7
    assert mase([10, 12], [11, 10], training) == pytest.approx(1.5 / (4 / 7))
    assert np.isnan(mase([10], [11], [1, 2, 3, 4, 5, 6, 7] * 2))  # exactly periodic: scale 0, undefined
    assert np.isnan(mase([10], [11], [1, 2, 3]))  # shorter than a season


def test_seasonal_naive_repeats_the_last_week():
    forecast = seasonal_naive(pd.Series(np.arange(1.0, 11.0)), horizon=9)
    np.testing.assert_array_equal(forecast, [4, 5, 6, 7, 8, 9, 10, 4, 5])
    with pytest.raises(ValueError):
        seasonal_naive(pd.Series([1.0, 2.0]), horizon=3)


# ------------------------------------------------------------------------------------------------------ events

def test_cn_calendar_has_618_and_singles_day_with_their_presales_and_the_public_holidays():
    frame = holiday_frame("CN", [2024])
    days = frame.groupby("holiday")["ds"].agg(["min", "max", "count"])
    assert days.loc["618", "min"] == pd.Timestamp("2024-06-18")
    assert (days.loc["618 pre-sale", ["min", "max", "count"]].tolist()
            == [pd.Timestamp("2024-06-01"), pd.Timestamp("2024-06-17"), 17])
    singles = frame[frame["holiday"] == "Singles' Day"].iloc[0]
    assert singles["ds"] == pd.Timestamp("2024-11-11") and singles["upper_window"] == 1
    assert days.loc["Singles' Day pre-sale", "count"] == 10
    # Bridge and observed days carry their holiday's name: Feb 10-16 is all Spring Festival.
    spring = frame.loc[frame["holiday"] == "Chinese New Year (Spring Festival)", "ds"]
    assert list(spring.dt.day) == list(range(10, 17))
    assert not frame["holiday"].str.contains("Day off|observed").any()


def test_events_follow_the_configured_country_and_none_means_no_events():
    us = holiday_frame("US", [2024, 2025])
    friday = us.loc[us["holiday"] == "Black Friday", "ds"].tolist()
    assert friday == [pd.Timestamp("2024-11-29"), pd.Timestamp("2025-11-28")]  # the day after Thanksgiving
    assert us.loc[us["holiday"] == "Cyber Monday", "ds"].tolist() == [pd.Timestamp("2024-12-02"),
                                                                       pd.Timestamp("2025-12-01")]
    assert "Independence Day" in set(us["holiday"])
    assert not us["holiday"].str.contains("Spring Festival|Singles|618").any()  # no Chinese days for a US forecast
    assert holiday_frame(None, [2024]).empty


def test_the_forecast_asset_takes_its_country_and_events_from_the_resource():
    from dagster_project.analytics.forecast_inputs import forecast_config

    series = long_frame("overall", "revenue", synthetic(days=60))
    assert forecast_config(series, "US").country == "US"
    assert forecast_config(series, "US").params("prophet")["shopping_events"] == "Black Friday, Cyber Monday"
    assert forecast_config(series, "CN").params("prophet")["shopping_events"] == "618, Singles' Day"
    assert forecast_config(series, "none").country is None and forecast_config(series, None).country is None
    assert ForecastConfig(country=None).params("prophet")["holiday_country"] == "none"


@pytest.mark.parametrize("country, peak", [("CN", "2024-11-11"), ("US", "2024-11-29")])
def test_the_countrys_shopping_event_lets_prophet_forecast_its_peak(country, peak):
    y = synthetic(peaks=(peak[5:],) if country == "CN" else ("2022-11-25", "2023-11-24", peak))
    train = y.loc[:"2024-10-02"]
    events = holiday_frame(country, range(2022, 2025))
    plain, with_events = (prophet_forecast(train, 90, ProphetSettings(), frame, yearly=True)["yhat"]
                          for frame in (None, events))
    peak = pd.Timestamp(peak)
    assert abs(with_events[peak] - y[peak]) < 0.5 * abs(plain[peak] - y[peak])


# ---------------------------------------------------------------------------------------------------- backtest

def test_three_years_backtest_the_yearly_terms_production_uses_without_warnings_and_publish_the_lowest_mase():
    result = run_forecasts(long_frame("overall", "revenue", synthetic()), AS_OF)
    assert result.warnings == []  # no "less than 730 days" warning, nor any other, from Prophet or statsforecast

    row = result.summary.iloc[0]
    assert bool(row["yearly_seasonality"]) and pd.isna(row["note"])
    backtest = result.backtest
    assert list(backtest.columns) == list(BACKTEST_COLUMNS)
    folds = backtest.groupby("fold_origin")["role"].first().sort_index()
    assert list(folds) == [SELECTION, SELECTION, EVALUATION]
    assert (folds.index[-1] + pd.Timedelta(days=90)) == pd.Timestamp(AS_OF)
    # Every fold trains on at least two years, so the yearly term production fits is the one backtested.
    first_day = pd.Timestamp(AS_OF) - pd.Timedelta(days=1095)
    assert ((folds.index - first_day).days >= 730).all()
    assert set(backtest["model"]) == {"prophet", "auto_ets", "seasonal_naive"}

    # Published: the lowest mean MASE on the selection folds, recomputed here from the backtest table.
    selection = backtest[(backtest["role"] == SELECTION) & (backtest["horizon_bucket"] == "overall")]
    assert row["model"] == selection.groupby("model")["mase"].mean().idxmin() == "prophet"
    assert row["published_mase"] == row["prophet_mase"] < row["naive_mase"] and row["beats_naive"]

    future = result.forecasts[~result.forecasts["is_history"]]
    assert list(result.forecasts.columns) == list(FORECAST_COLUMNS) and (future["model"] == "prophet").all()
    assert len(future) == 90 and future["ds"].min() == pd.Timestamp("2025-01-01")
    assert (future["yhat_lower"] <= future["yhat"]).all() and (future["yhat"] <= future["yhat_upper"]).all()

    quality = result.quality
    assert (quality.model, quality.metric, quality.higher_is_better, quality.published) == (
        "forecast", "MASE", False, "prophet")
    assert quality.published_value == row["prophet_mase"] and quality.baseline_value == row["naive_mase"]
    assert quality.beats_baseline and quality.n_eval == 90 and "2 earlier 90-day folds" in quality.evaluation

    runs = {(run.model_name, run.purpose): run for run in result.runs}
    assert set(runs) == {("prophet_revenue", "production"), ("prophet_revenue", "backtest"),
                         ("auto_ets_revenue", "backtest"), ("seasonal_naive_revenue", "backtest")}
    assert runs["prophet_revenue", "backtest"].params["shopping_events"] == "618, Singles' Day"
    assert runs["auto_ets_revenue", "backtest"].metrics["overall_series_mase"] == pytest.approx(row["ets_mase"])
    assert model_runs_frame(result.runs)["model_name"].notna().all()


def test_history_too_short_to_backtest_yearly_seasonality_leaves_it_out_and_says_so():
    # 900 days: production could fit yearly seasonality, but the earliest fold trains on 630 days.
    result = run_forecasts(long_frame("overall", "revenue", synthetic(days=900)), AS_OF)
    row = result.summary.iloc[0]
    assert not row["yearly_seasonality"] and result.warnings == []
    assert "yearly seasonality not backtested (the earliest fold trains on 630 days, 731 needed)" in row["note"]
    assert "yearly seasonality not backtested" in result.quality.note


def test_two_years_are_730_days_of_span_not_of_points():
    """Prophet measures first to last day: 730 daily points span 729 days, too short for yearly seasonality."""
    assert yearly_terms(synthetic(days=730), [])[0] is False
    assert "730 days of history, 731 needed" in yearly_terms(synthetic(days=730), [])[1]
    assert yearly_terms(synthetic(days=731), []) == (True, None)
    with pytest.raises(ValueError, match="731 days"):
        prophet_forecast(synthetic(days=730), 30, ProphetSettings(), None, yearly=True)


def test_selection_folds_see_no_day_of_the_evaluation_fold():
    """Whatever happens after the evaluation fold's origin cannot change the selection folds or the choice."""
    y = synthetic(days=500, seed=3)
    origin = pd.Timestamp(AS_OF) - pd.Timedelta(days=90)
    garbage = y.copy()
    garbage[garbage.index > origin] = np.random.default_rng(1).uniform(0, 1e6, (garbage.index > origin).sum())
    config = ForecastConfig(prophet_series=())  # AutoETS carries a model across folds: the one that could leak
    clean, dirty = (run_forecasts(long_frame("small", "orders", s), AS_OF, config) for s in (y, garbage))
    selection = [r.backtest[r.backtest["role"] == SELECTION].reset_index(drop=True) for r in (clean, dirty)]
    assert len(selection[0]) == 2 * 4 * 2  # two folds x four buckets x two methods
    pd.testing.assert_frame_equal(*selection)
    assert clean.summary["model"].iloc[0] == dirty.summary["model"].iloc[0]


def test_lowest_mase_ties_go_to_the_simpler_method_and_undefined_mase_falls_back_to_mae():
    means = pd.DataFrame({"mase": [1.0, 1.0, 1.2], "mae": [5.0, 6.0, 4.0]},
                         index=["prophet", "seasonal_naive", "auto_ets"])
    assert lowest(means)[0] == "seasonal_naive"
    means.loc["seasonal_naive", "mase"] = np.nan
    assert lowest(means) == ("auto_ets", "MAE seasonal_naive 6, auto_ets 4, prophet 5 (MASE undefined)")


def test_fold_means_leave_out_a_method_missing_a_fold():
    rows = [{"fold_origin": pd.Timestamp(f"2024-0{k}-01"), "role": SELECTION, "horizon_bucket": "overall",
             "model": model, "mase": 1.0, "smape": 0.1, "mape": 0.1, "mae": 1.0} for k in (1, 2)
            for model in ("seasonal_naive", "auto_ets")]
    means = fold_means(pd.DataFrame(rows[:-1]), SELECTION)  # auto_ets failed on the second fold
    assert list(means.index) == ["seasonal_naive"]


# ------------------------------------------------------------------------------------------ generated data

def _daily_paid(exports: Path) -> pd.DataFrame:
    """Overall daily paid revenue and orders from the generator's order drops (the last drop's row per order wins;
    the few rows the generator makes unreadable on purpose are dropped, which a daily total can afford)."""
    orders = pd.concat([pd.read_csv(p, dtype=str) for p in sorted(exports.glob("*/orders.csv"))])
    paid = orders.drop_duplicates("order_id", keep="last").query("status.str.strip().str.lower() == 'paid'")
    frame = pd.DataFrame({"ds": pd.to_datetime(paid["order_date"], errors="coerce", format="mixed").dt.normalize(),
                          "y": pd.to_numeric(paid["amount"], errors="coerce")}).dropna()
    revenue = frame.groupby("ds")["y"].sum().reset_index().assign(series_id="overall", metric="revenue")
    orders = frame.groupby("ds")["y"].size().reset_index().assign(series_id="overall", metric="orders")
    return pd.concat([revenue, orders], ignore_index=True)


def test_published_forecast_beats_seasonal_naive_on_generated_data_over_three_seeds():
    """3,000 customers over three years per seed. Measured (evaluation-fold MASE, published / seasonal naive, seeds
    1-3): revenue 0.80, 0.83, 0.62 and orders 0.68, 0.72, 0.63, always Prophet. Every seed must beat the baseline by
    5% and the mean ratio be below 0.85 (the measured mean, 0.75 for revenue, plus about half the seeds' range)."""
    ratios = {"revenue": [], "orders": []}
    for seed in (1, 2, 3):
        with tempfile.TemporaryDirectory() as folder:
            generate(Path(folder) / "exports", customers=3000, days=1095, seed=seed, end_date=date(2026, 10, 31))
            series = _daily_paid(Path(folder) / "exports")
        result = run_forecasts(series, date(2026, 10, 31))
        for row in result.summary.itertuples():
            assert row.model in ("prophet", "auto_ets") and row.published_mase < 0.95 * row.naive_mase, (seed, row)
            ratios[row.metric].append(row.published_mase / row.naive_mase)
        assert result.quality.beats_baseline and result.warnings == []
    assert np.mean(ratios["revenue"]) < 0.85 and np.mean(ratios["orders"]) < 0.85, ratios


def test_production_ets_fits_the_form_the_backtest_judged_on_the_latest_window():
    """AutoETS chooses its form at the earliest fold and the later folds judge that form; production fits the
    same form's parameters on the latest window instead of choosing again."""
    from dagster_project.analytics import forecast_backtest as bt
    from dagster_project.analytics.forecast_ets import ets_form, fit_ets

    config = ForecastConfig(country=None, prophet_series=(), n_jobs=1)
    y = synthetic(days=700, level=20.0, noise=0.3, seed=4)
    result = run_forecasts(long_frame("region_x", "orders", y), AS_OF, config)
    assert result.summary["model"].tolist() == ["auto_ets"]
    earliest = min(bt.folds(pd.Timestamp(AS_OF), config.horizon_days, config.n_folds, config.fold_spacing_days),
                   key=lambda fold: fold.origin)
    judged = ets_form(fit_ets(earliest.train(y), config.ets_window_days))
    published = result.models["region_x", "orders"]["auto_ets"]
    assert ets_form(published) == judged
    # Its parameters are fitted on the latest window (not carried from the fold).
    np.testing.assert_allclose(published.model_["par"], fit_ets(y, config.ets_window_days, judged).model_["par"])


def test_a_form_that_cannot_fit_the_latest_window_is_chosen_again_and_the_summary_says_so():
    from dagster_project.analytics.forecast_ets import ets_form, fit_ets

    window = synthetic(days=126, level=50.0, seed=2).to_numpy().copy()
    assert ets_form(fit_ets(pd.Series(window), form="MNMN")) == "MNMN"  # a form that fits is fitted as it is
    with pytest.raises(ValueError, match="not an ETS form"):
        fit_ets(pd.Series(window), form="AADN")
    window[-10] = 0.0  # multiplicative errors cannot fit a zero day
    assert ets_form(fit_ets(pd.Series(window), form="MNMN"))[0] == "A"

    # Through the forecast: the earliest fold chooses MNMN (a multiplicative form), and a zero day on the latest
    # window then rules it out for production.
    y = synthetic(days=700, level=20.0, noise=0.2, seed=0).copy()
    y.iloc[-5] = 0.0
    result = run_forecasts(long_frame("region_x", "orders", y), AS_OF,
                           ForecastConfig(country=None, prophet_series=(), n_jobs=1))
    row = result.summary.iloc[0]
    assert row["model"] == "auto_ets"
    assert row["note"] == ("AutoETS form MNMN (backtested) does not fit the latest 126 days; ANAN chosen again, "
                           "not backtested")


# ------------------------------------------------------------------------------------------------- edge cases

def test_short_series_fall_back_or_are_skipped_and_later_rows_are_ignored():
    as_of = pd.Timestamp(AS_OF)
    young = synthetic(days=100)
    after_as_of = pd.Series(1e9, index=pd.date_range(as_of + pd.Timedelta(days=1), periods=30))
    frame = pd.concat([
        long_frame("young", "revenue", pd.concat([young, after_as_of])),
        long_frame("tiny", "revenue", young.iloc[-10:]),
        long_frame("dead", "orders", young * 0),
    ])
    result = run_forecasts(frame, AS_OF)

    summary = result.summary.set_index("series_id")
    assert summary.loc["young", "model"] == "seasonal_naive"
    assert summary.loc["young", "chosen"].startswith("not backtested (100 days of history; a fold needs 270)")
    assert pd.isna(summary.loc["tiny", "model"]) and pd.isna(summary.loc["dead", "model"])
    assert result.backtest.empty and list(result.backtest.columns) == list(BACKTEST_COLUMNS)

    future = result.forecasts[~result.forecasts["is_history"]]
    assert set(future["series_id"]) == {"young"} and (future["model"] == "seasonal_naive").all()
    np.testing.assert_allclose(future["yhat"], seasonal_naive(young, 90))
    assert result.forecasts["ds"].max() == as_of + pd.Timedelta(days=90)
    assert [(r.model_name, r.purpose) for r in result.runs] == [("seasonal_naive_revenue", "production")]
    assert "2 series skipped" in result.note
    assert result.quality.n_eval == 0 and not result.quality.beats_baseline  # no overall series


def test_empty_input_gives_empty_outputs_and_a_note():
    empty = pd.DataFrame(columns=["series_id", "metric", "ds", "y"])
    result = run_forecasts(empty, AS_OF)
    assert result.forecasts.empty and result.backtest.empty and result.summary.empty and result.runs == []
    assert list(result.summary.columns) == list(SUMMARY_COLUMNS)
    assert "no series" in result.note and result.quality.published == "none"


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="metric"):
        run_forecasts(long_frame("all", "margin", synthetic(days=30)), AS_OF)


def _seven_series() -> pd.DataFrame:
    frames = [long_frame("overall", "revenue", synthetic(days=400))] + [
        long_frame(f"region_{i}", metric, synthetic(days=400, level=level, seed=i))
        for i in range(3) for metric, level in (("revenue", 1000.0), ("orders", 20.0))
    ]
    return pd.concat(frames)


def test_threads_and_the_worker_process_give_the_same_numbers_as_a_sequential_run():
    series = _seven_series()
    _ready_worker()  # as in a refresh, which starts it while dbt builds
    parallel = run_forecasts(series, AS_OF, ForecastConfig(n_folds=2, n_jobs=2))
    threads = run_forecasts(series, AS_OF, ForecastConfig(n_folds=2, n_jobs=2, worker=False))
    sequential = run_forecasts(series, AS_OF, ForecastConfig(n_folds=2, n_jobs=1))
    assert len(parallel.summary) == 7 and parallel.summary["model"].notna().all()
    # the worker took AutoETS series, never Prophet's (the overall series)
    assert parallel.fitted_in_worker > 0 and threads.fitted_in_worker == sequential.fitted_in_worker == 0
    for result in (parallel, threads):
        _assert_as_sequential(result, sequential)  # intervals too: Prophet's sampling is seeded
        assert result.warnings == sequential.warnings
        # the fitted models the worker sent back are the ones saved: the same kind, the same fitted form
        assert {key: sorted(model) for key, model in result.models.items()} == {
            key: sorted(model) for key, model in sequential.models.items()}
        assert {key: ets_form(model["auto_ets"]) for key, model in result.models.items() if "auto_ets" in model} == {
            key: ets_form(model["auto_ets"]) for key, model in sequential.models.items() if "auto_ets" in model}


def test_what_the_libraries_warn_in_the_worker_comes_back_with_the_series_it_concerns(monkeypatch):
    """forecast_one_collecting is what the worker runs: the warnings raised inside come back beside the outcome, named
    by series as in the threads (forecast_warnings.working_on), for the parent to merge."""
    import warnings

    from dagster_project.analytics import forecast_contenders
    from dagster_project.analytics.forecast_warnings import working_on

    def warns(series_id, metric, *rest):
        with working_on(f"{series_id}/{metric}"):
            warnings.warn("optimiser did not converge", RuntimeWarning)
        return "outcome"

    monkeypatch.setattr(forecast_contenders, "forecast_one", warns)
    assert forecast_workers.forecast_one_collecting(("region_1", "orders")) == (
        "outcome", {"region_1/orders": ["optimiser did not converge"]})


def _ready_worker() -> tuple:
    """The forecast's worker process, once it has imported its libraries (as a refresh has it), and its id."""
    forecast_workers.start()
    pool, warm = forecast_workers.running()
    return pool, warm.result(timeout=120)


def _assert_as_sequential(result, sequential) -> None:
    for name in ("forecasts", "backtest", "summary"):
        pd.testing.assert_frame_equal(getattr(result, name), getattr(sequential, name), check_exact=True)


def test_a_worker_process_killed_mid_forecast_leaves_its_series_to_the_threads(monkeypatch):
    series = _seven_series()
    sequential = run_forecasts(series, AS_OF, ForecastConfig(n_folds=2, n_jobs=1))
    pool, worker_pid = _ready_worker()
    fitted_here = []

    def kill_at_the_second(*args, **kwargs):  # while the worker has series in flight
        fitted_here.append(args[:2])
        if len(fitted_here) == 2:
            os.kill(worker_pid, signal.SIGKILL)
        return forecast_one(*args, **kwargs)

    monkeypatch.setattr(forecast_module, "forecast_one", kill_at_the_second)
    survived = run_forecasts(series, AS_OF, ForecastConfig(n_folds=2, n_jobs=1 + 1))
    assert len(fitted_here) + survived.fitted_in_worker == 7 and len(fitted_here) > 2
    _assert_as_sequential(survived, sequential)
    # the broken worker is forgotten: the next forecast has a new one
    assert forecast_workers.running()[0] is not pool


def test_a_stuck_worker_process_is_killed_and_its_series_fitted_here(monkeypatch):
    series = _seven_series()
    sequential = run_forecasts(series, AS_OF, ForecastConfig(n_folds=2, n_jobs=1))
    pool, worker_pid = _ready_worker()
    os.kill(worker_pid, signal.SIGSTOP)  # alive, answering nothing
    monkeypatch.setattr(forecast_workers, "SERIES_TIMEOUT", 2.0)
    late = run_forecasts(series, AS_OF, ForecastConfig(n_folds=2, n_jobs=2))
    assert late.fitted_in_worker == 0
    _assert_as_sequential(late, sequential)
    status = Path(f"/proc/{worker_pid}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()  # killed (a zombie until reaped)
    assert forecast_workers.running()[0] is not pool
