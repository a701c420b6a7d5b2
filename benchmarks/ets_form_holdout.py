"""Holdout check of how production fits AutoETS: choosing the form again on the latest window (before 2026-12-06)
against fitting the form the backtest judged, chosen at the earliest backtest fold (now).

Each daily series is forecast from four as-of dates (90, 120, 150 and 180 days before its end) as the forecast
asset does: the backtest folds of the default ForecastConfig (origins 90, 180 and 270 days before the as-of date),
the earliest fold with enough history choosing the form; then both ways are fitted on the 126 days before the
as-of date and scored (MASE) on the next 90. The table gives the mean MASE of each, how often the backtested form
does better, worse or the same, and the fitting seconds. An as-of date is left out when no fold has enough history
(the forecast would not fit AutoETS there either). Series: those of built warehouses (--warehouse, the working
database, read-only, through the forecast asset's own query), and with --cdnow the CDNOW master log that the
lifetimes 0.11.3 wheel ships (downloaded once into --cache, benchmarks/out/lifetimes): daily revenue, orders and
CDs, overall and per acquisition-month cohort.

    python benchmarks/ets_form_holdout.py --warehouse warehouse/crm.work.duckdb --cdnow
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from dagster_project.analytics import forecast_backtest as bt
from dagster_project.analytics.forecast import ForecastConfig
from dagster_project.analytics.forecast_contenders import _ready
from dagster_project.analytics.forecast_ets import ets_form, fit_ets
from dagster_project.analytics.forecast_inputs import forecast_series
from dagster_project.analytics.forecast_metrics import mase

CONFIG = ForecastConfig()  # the forecast asset's folds, horizon, window and history requirements
AS_OF_BEFORE_END = (90, 120, 150, 180)


def warehouse_series(path: Path) -> list[pd.Series]:
    with duckdb.connect(str(path), read_only=True) as con:
        frame = forecast_series(con)
    frame["ds"] = pd.to_datetime(frame["ds"])
    return [group.set_index("ds")["y"] for _, group in frame.groupby(["series_id", "metric"])]


def cdnow_series(cache: Path) -> list[pd.Series]:
    wheels = list(cache.glob("*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "lifetimes==0.11.3", "-d",
                        str(cache)], check=True)
        wheels = list(cache.glob("*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel, wheel.open("lifetimes/datasets/CDNOW_master.txt") as log:
        orders = pd.read_csv(log, sep=r"\s+", header=0, names=["customer", "day", "cds", "dollars"],
                             dtype={"day": str})
    orders["ds"] = pd.to_datetime(orders["day"], format="%Y%m%d")
    orders["cohort"] = orders.groupby("customer")["ds"].transform("min").dt.month
    groups = [orders] + [group for _, group in orders.groupby("cohort")]
    return [series for group in groups for series in (
        group.groupby("ds")["dollars"].sum(), group.groupby("ds").size().astype(float),
        group.groupby("ds")["cds"].sum().astype(float))]


def compare(series: list[pd.Series]) -> dict:
    rows, seconds = [], {"chosen again": 0.0, "backtested form": 0.0}
    for y in series:
        y = y.asfreq("D", fill_value=0.0)
        for before_end in AS_OF_BEFORE_END:
            as_of = y.index[-1] - pd.Timedelta(days=before_end)
            folds = bt.folds(as_of, CONFIG.horizon_days, CONFIG.n_folds, CONFIG.fold_spacing_days)
            usable = [fold for fold in folds if _ready(fold.train(y), CONFIG)]
            if not usable:
                continue
            form = ets_form(fit_ets(usable[-1].train(y), CONFIG.ets_window_days))  # folds come latest first
            train = y.loc[:as_of]
            actual = y.loc[as_of + pd.Timedelta(days=1):].iloc[: CONFIG.horizon_days].to_numpy()
            errors = []
            for name, fitted_form in (("chosen again", None), ("backtested form", form)):
                started = time.perf_counter()
                model = fit_ets(train, CONFIG.ets_window_days, fitted_form)
                seconds[name] += time.perf_counter() - started
                predicted = np.clip(model.predict(h=CONFIG.horizon_days)["mean"], 0, None)
                errors.append(mase(actual, predicted, train.to_numpy()))
            rows.append(errors)
    errors = np.array([row for row in rows if not np.isnan(row).any()])
    again, backtested = errors[:, 0], errors[:, 1]
    tied = np.isclose(again, backtested)
    return {"cases": len(errors), "MASE chosen again": again.mean(), "MASE backtested form": backtested.mean(),
            "better": int((~tied & (backtested < again)).sum()), "worse": int((~tied & (backtested > again)).sum()),
            "same": int(tied.sum()), "fit s chosen again": seconds["chosen again"],
            "fit s backtested form": seconds["backtested form"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, action="append", default=[],
                        help="a built working database (crm.work.duckdb); repeatable")
    parser.add_argument("--cdnow", action="store_true", help="also the CDNOW master log (lifetimes 0.11.3)")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/out/lifetimes"), help="where the wheel is kept")
    args = parser.parse_args()
    sources = {str(path): warehouse_series(path) for path in args.warehouse}
    if args.cdnow:
        args.cache.mkdir(parents=True, exist_ok=True)
        sources["CDNOW master (lifetimes 0.11.3)"] = cdnow_series(args.cache)
    print("| series | cases | mean MASE, form chosen again | mean MASE, backtested form | better / worse / same "
          "| fit s, chosen again / backtested form |\n|---|---|---|---|---|---|")
    for name, series in sources.items():
        r = compare(series)
        print(f"| {name} | {r['cases']} | {r['MASE chosen again']:.3f} | {r['MASE backtested form']:.3f} "
              f"| {r['better']} / {r['worse']} / {r['same']} "
              f"| {r['fit s chosen again']:.1f} / {r['fit s backtested form']:.1f} |")


if __name__ == "__main__":
    main()
