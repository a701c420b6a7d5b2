"""Benchmark: the sales forecast on many series, through the asset's own code path (forecast_config + run_forecasts).

The generated samples have ~116 series whatever their size, so this makes N synthetic daily series instead: three
years per series with trend, weekly and yearly seasonality, Spring Festival dips and noise, half revenue and half
order counts. Each run is a fresh process, so the joblib workers' start-up is counted as it is in a refresh. Prints
the median wall time over --repeats runs and the backtest's median MASE of Prophet and seasonal-naive.

    python benchmarks/forecast_series.py                   # 400 series, 3 runs
    python benchmarks/forecast_series.py --series 116 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

AS_OF = "2026-10-31"
HISTORY_DAYS = 3 * 365

RUN_SCRIPT = """
import json, sys, time
import numpy as np, pandas as pd
from dagster_project.analytics import forecast
from dagster_project.assets.analytics import forecast_config
n_series, as_of, history_days = int(sys.argv[1]), pd.Timestamp(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
ds = pd.date_range(end=as_of, periods=history_days)
t = np.arange(history_days)
dip = np.isin(ds.strftime("%m-%d"), ["01-28", "01-29", "01-30", "02-10", "02-11", "02-12", "01-22", "01-23"])
frames = []
for i in range(n_series):
    metric = "revenue" if i % 2 == 0 else "orders"
    level = rng.lognormal(8 if metric == "revenue" else 3, 1)
    shape = (1 + rng.normal(0, 3e-4) * t) * (1 + 0.2 * np.sin(2 * np.pi * (t % 7) / 7 + rng.uniform(0, 6)))
    shape *= 1 + 0.15 * np.sin(2 * np.pi * t / 365.25 + rng.uniform(0, 6)) - 0.5 * dip
    mean = np.clip(level * shape, 0, None)
    y = rng.poisson(mean) if metric == "orders" else mean * rng.lognormal(0, 0.25, history_days)
    frames.append(pd.DataFrame({"series_id": f"synthetic:{i // 2}", "metric": metric, "ds": ds, "y": y}))
series = pd.concat(frames, ignore_index=True)
config = forecast_config(series)
started = time.perf_counter()
result = forecast.run_forecasts(series, as_of, config)
seconds = time.perf_counter() - started
summary = result.summary
print("BENCH_RESULT " + json.dumps({
    "seconds": seconds, "series": len(summary), "n_folds": config.n_folds,
    "prophet": int((summary["model"] == "prophet").sum()),
    "prophet_mase": float(summary["prophet_mase"].median()), "naive_mase": float(summary["naive_mase"].median()),
}))
"""


def run_once(n_series: int) -> dict:
    result = subprocess.run([sys.executable, "-c", RUN_SCRIPT, str(n_series), AS_OF, str(HISTORY_DAYS)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"forecast run failed:\n{result.stderr[-4000:]}")
    # Stan and Prophet print on stdout too: the result is what follows the last tag.
    return json.loads(result.stdout.rpartition("BENCH_RESULT ")[2].splitlines()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=400, help="number of series (default 400)")
    parser.add_argument("--repeats", type=int, default=3, help="runs; the median is reported")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    runs = []
    for _ in range(args.repeats):
        runs.append(run_once(args.series))
        print(f"  run {len(runs)}: {runs[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    seconds = [r["seconds"] for r in runs]
    last = runs[-1]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average at start {load:.1f}")
    print(f"{'series':>7}{'days':>6}{'folds':>6}{'prophet':>8}{'wall s (median)':>17}{'min':>7}{'max':>7}"
          f"{'s/series':>9}{'MASE prophet':>14}{'MASE naive':>12}{'runs':>6}")
    print(f"{last['series']:>7}{HISTORY_DAYS:>6}{last['n_folds']:>6}{last['prophet']:>8}"
          f"{statistics.median(seconds):>17.1f}{min(seconds):>7.1f}{max(seconds):>7.1f}"
          f"{statistics.median(seconds) / last['series']:>9.3f}{last['prophet_mase']:>14.3f}"
          f"{last['naive_mase']:>12.3f}{len(runs):>6}")


if __name__ == "__main__":
    main()
