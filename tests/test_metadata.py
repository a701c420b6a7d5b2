"""What the Dagster UI shows of the analytics assets: figures rounded for people, each asset's row-count badge
counting its main table, small charts; and the progress lines long steps log."""

from __future__ import annotations

import base64
import logging
import math
import re
import warnings
from datetime import date

import numpy as np
import pandas as pd
from dagster import FloatMetadataValue, JsonMetadataValue

from dagster_project.analytics import forecast, forecast_contenders, forecast_prophet, forecast_warnings
from dagster_project.analytics.progress import Progress
from dagster_project.defs.assets.analytics import ANALYTICS_ASSETS, for_people


def test_figures_are_rounded_for_people():
    assert for_people(0.5942517853592671) == 0.594
    assert for_people(-0.016681971297861198) == -0.0167
    assert for_people(12.345) == 12.3
    assert for_people(1089924.972892732) == 1089925.0  # whole numbers from 100 on: totals keep every unit
    assert for_people({"activity": 0.5203493844822361, "counts": [0.123456, 7, "x"]}) == {
        "activity": 0.52, "counts": [0.123, 7, "x"]}
    assert math.isnan(for_people(float("nan"))) and for_people(0.0) == 0.0 and for_people(3) == 3
    assert for_people(True) is True


def test_progress_shows_a_few_lines_and_the_last():
    lines, now = [], [0.0]
    progress = Progress(lines.append, "series forecast", 108, clock=lambda: now[0])
    for _ in range(108):
        now[0] += 0.75  # 81 s in all, like the demo's forecast
        progress.advance()
    assert 5 <= len(lines) <= 20 and lines[-1] == "108/108 series forecast", lines
    quick = []
    fast = Progress(quick.append, "models and tests done", clock=lambda: 0.0)
    for _ in range(400):  # a total learnt on the way; nothing but the end within the same second
        fast.advance(total=400)
    assert quick == ["400/400 models and tests done"]


def _daily(series_id: str, days: int, end: date = date(2026, 6, 30)) -> pd.DataFrame:
    ds = pd.date_range(end=pd.Timestamp(end), periods=days)
    y = 100 + 20 * np.sin(2 * np.pi * ds.day_of_week / 7) + np.random.default_rng(0).normal(0, 5, days)
    return pd.DataFrame({"series_id": series_id, "metric": "revenue", "ds": ds, "y": y})


def test_two_years_of_history_fit_yearly_seasonality_without_prophets_warning():
    """Prophet warns when yearly seasonality is on with a span under 730 days; 730 days of history span 729, so
    yearly seasonality starts at 731 days, and neither length is warned about."""
    for days in (730, 731):
        y = _daily("all", days).set_index("ds")["y"]
        with forecast_warnings.library_warnings() as caught:
            predicted = forecast_prophet.prophet_forecast(y, 30, forecast_prophet.ProphetSettings(), None,
                                                          yearly=forecast_prophet.spans_two_years(y.index))
        assert caught == {} and len(predicted) == 30, (days, caught)


def test_library_warnings_reach_the_result_once_naming_their_series(monkeypatch):
    """What Prophet logs or warns during a fit comes back from the workers as one line per message, with the
    series, for the asset to log (no bare lines on stderr); progress counts the series."""
    real = forecast_contenders._production

    def noisy(*args):
        logging.getLogger("prophet").warning("Something is odd\n  with this series")
        warnings.warn("and this", UserWarning)
        return real(*args)

    monkeypatch.setattr(forecast_contenders, "_production", noisy)  # n_jobs=1: the series run in this thread
    lines = []
    result = forecast.run_forecasts(pd.concat([_daily("a", 200), _daily("b", 200)]), date(2026, 6, 30),
                                    forecast.ForecastConfig(country=None, n_folds=0, n_jobs=1), progress=lines.append)
    assert result.warnings == ["Something is odd with this series (series a/revenue, b/revenue)",
                               "and this (series a/revenue, b/revenue)"]
    assert lines[-1] == "2/2 series forecast"


def _png(markdown: str) -> bytes:
    return base64.b64decode(re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)[1])


def test_analytics_metadata_badges_count_the_main_table_and_figures_are_rounded(refreshed):
    with refreshed.connect() as con:
        for key in (key.to_user_string() for asset in ANALYTICS_ASSETS for key in asset.keys):
            metadata = refreshed.metadata[key]
            table = metadata["dagster/table_name"].value
            assert table.startswith("analytics."), key
            count = con.execute(f"select count(*) from {table}").fetchone()[0]
            assert metadata["dagster/row_count"].value == count > 0, key
            for name, entry in metadata.items():
                if isinstance(entry, FloatMetadataValue) and math.isfinite(entry.value):
                    assert entry.value == for_people(entry.value), (key, name, entry.value)
                if isinstance(entry, JsonMetadataValue):
                    assert entry.data == for_people(entry.data), (key, name)
        churn = refreshed.metadata["analytics/churn_predictions"]
        assert churn["dagster/table_name"].value == "analytics.churn_scores"
        watchlist = con.execute("select count(*) from analytics.churn_watchlist").fetchone()[0]
        assert churn["dagster/row_count"].value > watchlist
        assert churn["watchlist"].md_str.startswith("| ") or churn["watchlist"].md_str == "_empty_"
        assert refreshed.metadata["analytics/sales_forecast"]["dagster/table_name"].value == "analytics.sales_forecast"
    for key, chart in (("analytics/customer_clv", "clv_chart"), ("analytics/churn_predictions", "risk_chart")):
        assert _png(refreshed.metadata[key][chart].md_str).startswith(b"\x89PNG"), key
    assert sum(churn["risk_band_sizes"].data.values()) == churn["dagster/row_count"].value
