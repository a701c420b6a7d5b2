"""Benchmark: the sales forecast through the asset's own code path (forecast_series, forecast_config,
run_forecasts), on a built warehouse or on N synthetic series.

--warehouse reads the series of a built warehouse (opened read-only; the demo's is warehouse/crm.duckdb, ~116
series). Otherwise it makes N synthetic daily series: three years each with trend, weekly and yearly seasonality,
Spring Festival dips and noise, half revenue and half order counts. Each run is a fresh process. Prints the median
wall time over --repeats runs, the CPU seconds of the last run (all threads and Stan's subprocesses), how many
series each method was published for, and the median evaluation-fold MASE of each method.

    python benchmarks/forecast_series.py --warehouse warehouse/crm.duckdb   # the demo's series, 3 runs
    python benchmarks/forecast_series.py --series 400 --repeats 1
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
import json, resource, sys, time
import duckdb, numpy as np, pandas as pd
from dagster_project.analytics import forecast
from dagster_project.analytics.forecast_inputs import forecast_config, forecast_series
n_series, as_of, history_days, warehouse = int(sys.argv[1]), pd.Timestamp(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
cpu = lambda: sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for f in ("ru_utime", "ru_stime"))
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
started, cpu_started = time.perf_counter(), cpu()
if warehouse:  # as the asset does: the series from the marts, then the forecast
    with duckdb.connect(warehouse, read_only=True) as con:
        as_of = pd.Timestamp(con.execute("select max(order_date) from marts.fct_orders").fetchone()[0])
        series = forecast_series(con)
else:
    series = pd.concat(frames, ignore_index=True)
config = forecast_config(series)
result = forecast.run_forecasts(series, as_of, config)
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
summary = result.summary
print("BENCH_RESULT " + json.dumps({
    "seconds": seconds, "cpu_seconds": cpu_seconds, "series": len(summary), "n_folds": config.n_folds,
    "published": {m: int((summary["model"] == m).sum()) for m in ("prophet", "auto_ets", "seasonal_naive")},
    "mase": {m: float(summary[f"{m}_mase"].median()) for m in ("prophet", "ets", "naive", "published")},
}))
"""


def run_once(n_series: int, warehouse: str) -> dict:
    result = subprocess.run([sys.executable, "-c", RUN_SCRIPT, str(n_series), AS_OF, str(HISTORY_DAYS), warehouse],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"forecast run failed:\n{result.stderr[-4000:]}")
    # Stan and Prophet print on stdout too: the result is what follows the last tag.
    return json.loads(result.stdout.rpartition("BENCH_RESULT ")[2].splitlines()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=400, help="number of synthetic series (default 400)")
    parser.add_argument("--warehouse", default="", help="a built warehouse's DuckDB file: forecast its series")
    parser.add_argument("--repeats", type=int, default=3, help="runs; the median is reported")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    runs = []
    for _ in range(args.repeats):
        runs.append(run_once(args.series, args.warehouse))
        print(f"  run {len(runs)}: {runs[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    seconds = [r["seconds"] for r in runs]
    last = runs[-1]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average at start {load:.1f}")
    print(f"{'series':>7}{'folds':>6}{'wall s (median)':>17}{'min':>7}{'max':>7}{'CPU s':>7}  published"
          f"{'':>34}MASE (median over series) prophet / auto_ets / naive / published")
    published = ", ".join(f"{m} {n}" for m, n in last["published"].items())
    mase = " / ".join(f"{v:.3f}" for v in last["mase"].values())
    print(f"{last['series']:>7}{last['n_folds']:>6}{statistics.median(seconds):>17.1f}{min(seconds):>7.1f}"
          f"{max(seconds):>7.1f}{last['cpu_seconds']:>7.1f}  {published:<42} {mase}")


if __name__ == "__main__":
    main()
