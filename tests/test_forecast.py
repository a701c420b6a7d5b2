"""Forecast tests: error metrics by hand, the seasonal-naive baseline, leakage-free folds, and Prophet vs the
baseline on synthetic series where the right answer is known."""

from __future__ import annotations

from datetime import date

import holidays
import numpy as np
import pandas as pd
import pytest

from dagster_project.analytics.forecast import (
    BACKTEST_COLUMNS, BASELINE_WINS, FORECAST_COLUMNS, PROPHET_WINS, SUMMARY_COLUMNS, ForecastConfig, fold_forecast,
    holiday_frame, mape, mase, run_forecasts, seasonal_naive, smape,
)
from dagster_project.analytics.model_runs import model_runs_frame

# Prophet 1.5 itself still calls pandas with inplace=True, which pandas 3.1 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword::prophet")

AS_OF = date(2024, 12, 31)
WEEKLY_SHAPE = np.array([0.9, 0.85, 0.9, 0.95, 1.1, 1.25, 1.2])  # Monday .. Sunday


def synthetic(days: int = 1096, level: float = 1000.0, noise: float = 0.05, seed: int = 0) -> pd.Series:
    """Daily revenue ending at AS_OF: trend + weekly + yearly seasonality, Spring Festival dip, 11.11 peak, noise."""
    ds = pd.date_range(end=AS_OF, periods=days, name="ds")
    t = np.arange(days)
    yearly = 1 + 0.2 * np.sin(2 * np.pi * (ds.day_of_year - 80) / 365.25)
    y = level * (1 + t / 1096) * WEEKLY_SHAPE[ds.day_of_week] * yearly
    calendar = holidays.country_holidays("CN", years=range(ds[0].year, AS_OF.year + 1), language="en_US")
    spring_festival = pd.to_datetime([d for d, name in calendar.items() if "Spring Festival" in name])
    y = np.where(ds.isin(spring_festival), 0.5 * y, y)
    y = np.where((ds.month == 11) & (ds.day == 11), 3 * y, y)
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


def test_holiday_frame_gives_bridge_and_observed_days_their_holiday_name():
    frame = holiday_frame("CN", [2024], extra_events=(("Singles' Day", "11-11"),))
    spring = frame.loc[frame["holiday"] == "Chinese New Year (Spring Festival)", "ds"]
    assert list(spring.dt.day) == list(range(10, 17))  # Feb 10-16 incl. observed and substituted days off
    assert not frame["holiday"].str.contains("Day off|observed").any()
    assert (frame.loc[frame["holiday"] == "Singles' Day", "ds"] == pd.Timestamp("2024-11-11")).all()


def test_holidays_follow_the_configured_country_and_none_means_no_holidays():
    us = holiday_frame("US", [2024])
    assert "Independence Day" in set(us["holiday"])
    assert not us["holiday"].str.contains("Spring Festival|Singles").any()  # no Chinese days for a US forecast
    assert holiday_frame(None, [2024]).empty
    events_only = holiday_frame(None, [2024], extra_events=(("Singles' Day", "11-11"),))
    assert events_only.to_dict("list") == {"holiday": ["Singles' Day"], "ds": [pd.Timestamp("2024-11-11")]}


def test_the_forecast_asset_takes_its_holiday_country_from_the_resource():
    from dagster_project.assets.analytics import forecast_config

    series = long_frame("overall", "revenue", synthetic(days=60))
    assert forecast_config(series, "US").country == "US"
    assert forecast_config(series, "none").country is None and forecast_config(series, None).country is None
    assert forecast_config(series, "US").extra_events == ()  # commercial peaks are never added for another market
    assert ForecastConfig(country=None).params()["holiday_country"] == "none"


def test_a_forecast_without_holidays_fits_and_records_it():
    y = synthetic(days=400)
    config = ForecastConfig(country=None, n_folds=1)
    folded = fold_forecast(y, pd.Timestamp("2024-09-01"), config)
    assert len(folded) == config.horizon_days and folded["prophet"].notna().all()
    result = run_forecasts(long_frame("all", "revenue", y), AS_OF, config)
    assert result.summary.iloc[0]["model"] == "prophet"
    assert {run.params["holiday_country"] for run in result.runs} == {"none"}


# --------------------------------------------------------------------------------------------------- backtest

def test_fold_uses_no_data_after_its_origin():
    y = synthetic()
    origin = pd.Timestamp("2024-08-02")
    config = ForecastConfig()
    clean = fold_forecast(y, origin, config)
    garbage = y.copy()
    after = garbage.index > origin
    garbage[after] = np.random.default_rng(1).uniform(0, 1e6, after.sum())
    pd.testing.assert_frame_equal(fold_forecast(garbage, origin, config), clean)
    assert clean.index[0] == origin + pd.Timedelta(days=1) and len(clean) == config.horizon_days


def test_prophet_beats_seasonal_naive_on_trend_seasonality_and_holidays():
    result = run_forecasts(long_frame("all", "revenue", synthetic()), AS_OF)

    row = result.summary.iloc[0]
    assert row["model"] == "prophet" and row["n_folds"] == 3
    assert row["prophet_mase"] < row["naive_mase"]
    assert row["prophet_wins"] and row["verdict"].startswith(f"{PROPHET_WINS} on MASE")

    backtest = result.backtest
    assert list(backtest.columns) == list(BACKTEST_COLUMNS)
    assert set(backtest["horizon_bucket"]) == {"days_1_7", "days_8_30", "days_31_90", "overall"}
    assert (backtest["fold_origin"] + pd.Timedelta(days=90) <= pd.Timestamp(AS_OF)).all()
    assert len(backtest) == 3 * 4 * 2

    forecasts = result.forecasts
    assert list(forecasts.columns) == list(FORECAST_COLUMNS)
    future = forecasts[~forecasts["is_history"]]
    assert len(future) == 90 and future["y"].isna().all() and future["ds"].min() == pd.Timestamp("2025-01-01")
    assert (future["yhat_lower"] <= future["yhat"]).all() and (future["yhat"] <= future["yhat_upper"]).all()
    assert forecasts["is_history"].sum() == 365

    runs = model_runs_frame(result.runs)
    assert list(runs["purpose"]) == ["production", "backtest"]
    assert set(runs["model_name"]) == {"prophet_revenue"}
    backtest_run = result.runs[1]
    assert backtest_run.holdout_end == AS_OF and backtest_run.metrics["n_prophet_wins"] == 1
    assert {"horizon_days", "n_folds", "interval_width", "changepoint_prior_scale"} <= set(backtest_run.params)
    assert "MAPE covers only days with y > 0" in result.note


def test_extra_event_lets_prophet_forecast_the_singles_day_peak():
    y = synthetic()
    origin, peak = pd.Timestamp("2024-10-02"), pd.Timestamp("2024-11-11")
    plain = fold_forecast(y, origin, ForecastConfig())
    with_event = fold_forecast(y, origin, ForecastConfig(extra_events=(("Singles' Day", "11-11"),)))
    assert abs(with_event.loc[peak, "prophet"] - y[peak]) < 0.5 * abs(plain.loc[peak, "prophet"] - y[peak])


def test_baseline_wins_on_a_noiseless_weekly_pattern():
    days = pd.date_range(end=AS_OF, periods=730, name="ds")
    y = pd.Series(100 * WEEKLY_SHAPE[days.day_of_week], index=days)
    result = run_forecasts(long_frame("weekly", "orders", y), AS_OF, ForecastConfig(n_folds=2))

    row = result.summary.iloc[0]
    assert np.isnan(row["naive_mase"])  # the in-sample naive error is 0, so MASE is undefined: MAE decides
    assert not row["prophet_wins"] and row["verdict"].startswith(BASELINE_WINS)
    assert "the seasonal-naive baseline wins for 1 of 1 backtested series" in result.note


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
    assert pd.isna(summary.loc["tiny", "model"]) and pd.isna(summary.loc["dead", "model"])
    assert summary["note"].str.contains("fallback|skipped").all()
    assert result.backtest.empty and list(result.backtest.columns) == list(BACKTEST_COLUMNS)

    future = result.forecasts[~result.forecasts["is_history"]]
    assert set(future["series_id"]) == {"young"} and (future["model"] == "seasonal_naive").all()
    np.testing.assert_allclose(future["yhat"], seasonal_naive(young, 90))
    assert result.forecasts["ds"].max() == as_of + pd.Timedelta(days=90)

    assert [(r.model_name, r.purpose) for r in result.runs] == [("prophet_revenue", "production")]
    assert result.runs[0].metrics == {"n_series": 2, "n_prophet": 0, "n_seasonal_naive": 1, "n_skipped": 1}
    assert "1 series forecast with the seasonal-naive fallback" in result.note and "2 series skipped" in result.note


def test_empty_input_gives_empty_outputs_and_a_note():
    empty = pd.DataFrame(columns=["series_id", "metric", "ds", "y"])
    result = run_forecasts(empty, AS_OF)
    assert result.forecasts.empty and result.backtest.empty and result.summary.empty and result.runs == []
    assert list(result.summary.columns) == list(SUMMARY_COLUMNS)
    assert "no series" in result.note


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="metric"):
        run_forecasts(long_frame("all", "margin", synthetic(days=30)), AS_OF)


def test_parallel_run_over_eight_series_matches_a_sequential_run():
    frames = [
        long_frame(f"region_{i}", metric, synthetic(days=400, level=level, seed=i))
        for i in range(4) for metric, level in (("revenue", 1000.0), ("orders", 20.0))
    ]
    series = pd.concat(frames)
    config = ForecastConfig(n_folds=1, n_jobs=2)
    parallel = run_forecasts(series, AS_OF, config)

    assert len(parallel.summary) == 8 and (parallel.summary["model"] == "prophet").all()
    assert parallel.summary["n_folds"].eq(1).all()
    assert len(parallel.forecasts) == 8 * (365 + 90)
    assert sorted((r.model_name, r.purpose) for r in parallel.runs) == [
        ("prophet_orders", "backtest"), ("prophet_orders", "production"),
        ("prophet_revenue", "backtest"), ("prophet_revenue", "production"),
    ]
    # Same numbers without worker processes (intervals too: their sampling is seeded).
    region_0 = series[series["series_id"] == "region_0"]
    sequential = run_forecasts(region_0, AS_OF, ForecastConfig(n_folds=1, n_jobs=1))
    pd.testing.assert_frame_equal(
        sequential.forecasts, parallel.forecasts[parallel.forecasts["series_id"] == "region_0"].reset_index(drop=True),
    )
