"""Benchmark: generate S / M / L sample exports and time each refresh stage through the real Dagster job.

Each stage runs in its own child process, so its peak RSS is its own. Prints a table of medians over --repeats
runs (generation runs once per size: it is the input, not the product).

    python benchmarks/run.py                      # S and M, 3 repeats
    python benchmarks/run.py --sizes L --repeats 1
    python benchmarks/run.py --sizes M --stages warehouse --reuse-export   # ingest + dbt in one process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dagster_project.warehouse_files import work_database_path

SIZES = {"S": 10_000, "M": 100_000, "L": 1_000_000}
STAGES = {  # stage -> Dagster asset groups it materialises (with the asset checks on them: dbt tests, GE suites)
    "ingest": ["ingest"],
    "dbt": ["reference", "staging", "intermediate", "marts", "audit", "restricted"],
    "analytics": ["analytics"],
    "publish": ["reporting", "publish"],
}
# Ingest and dbt in one process, as `crm-warehouse refresh` runs them (libraries imported and the run started once):
# what the warehouse targets are judged on. Not with --stages ingest or dbt, which it repeats; analytics may follow it.
STAGES["warehouse"] = STAGES["ingest"] + STAGES["dbt"]
DEFAULT_STAGES = ["ingest", "dbt", "analytics", "publish"]
# The slow steps on their own, under their stage (CLV, churn, forecasts have their own targets; GE suites and
# publishing are overheads of every refresh).
REPORTED_STEPS = ("raw_expectations", "crm_dbt_models", "mart_expectations", "analytics__customer_clv",
                  "analytics__churn_predictions", "analytics__sales_forecast", "analytics__product_associations",
                  "reporting__report", "publish__warehouse")

# Runs one stage in a fresh interpreter and reports its wall time and peak RSS (its own and its children's: dbt).
STAGE_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from dagster import DagsterInstance
from dagster_project.defs.refresh import run_refresh
from dagster_project.settings import Settings
exports, warehouse, groups = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
settings = Settings(exports_dir=exports, warehouse=warehouse, as_of=None, schedule_timezone="UTC")
started = time.perf_counter()
with DagsterInstance.ephemeral() as instance:
    run_id = run_refresh(settings, instance, groups=groups).run_id
    starts, steps = {}, {}
    for entry in instance.all_logs(run_id):
        kind = entry.dagster_event.event_type_value if entry.dagster_event else None
        if kind == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif kind == "STEP_SUCCESS":
            steps[entry.step_key] = entry.timestamp - starts[entry.step_key]
seconds = time.perf_counter() - started
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print("BENCH_RESULT " + json.dumps({"seconds": seconds, "peak_rss_mb": rss / 1024, "steps": steps}))
"""

GENERATE_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from dagster_project.sample_data import generate
started = time.perf_counter()
summary = generate(Path(sys.argv[1]), customers=int(sys.argv[2]), seed=42)
print("BENCH_RESULT " + json.dumps({"seconds": time.perf_counter() - started, "rows": sum(summary.rows.values()),
                                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""




def run_child(script: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"benchmark stage failed:\n{result.stderr[-4000:]}")
    # Libraries print on stdout too (Stan, Prophet), sometimes without a final newline, so the tag can follow
    # their text on the same line: the result is what follows the last tag.
    return json.loads(result.stdout.rpartition("BENCH_RESULT ")[2].splitlines()[0])


def bench_size(name: str, customers: int, repeats: int, workdir: Path, stages: list[str],
               reuse_export: bool) -> list[dict]:
    exports = workdir / name / "exports"
    results = []
    if reuse_export and exports.is_dir():
        rows = sum(sum(1 for _ in open(f, "rb")) - 1 for f in exports.glob("*/*.csv"))
    else:
        if exports.exists():
            shutil.rmtree(exports.parent)
        generated = run_child(GENERATE_SCRIPT, str(exports), str(customers))
        rows = generated["rows"]
        results.append({"size": name, "stage": "generate", "seconds": generated["seconds"], "rows": rows,
                        "peak_rss_mb": generated["peak_rss_mb"]})
        report(results[-1])
    timings: dict[str, list[dict]] = {stage: [] for stage in stages}
    for _ in range(repeats):
        warehouse = workdir / name / "crm.duckdb"
        for built in (warehouse, work_database_path(warehouse)):  # each repeat refreshes from scratch
            built.unlink(missing_ok=True)
        for stage in stages:
            timings[stage].append(run_child(STAGE_SCRIPT, str(exports), str(warehouse), json.dumps(STAGES[stage])))
            report({"size": name, "stage": stage, "rows": rows, **timings[stage][-1]})
    for stage, runs in timings.items():
        results.append({"size": name, "stage": stage, "seconds": statistics.median(r["seconds"] for r in runs),
                        "rows": rows, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs": len(runs)})
        for step in REPORTED_STEPS:
            step_runs = [r["steps"][step] for r in runs if step in r["steps"]]
            if step_runs:
                results.append({"size": name, "stage": "  " + step.removeprefix("analytics__"),
                                "seconds": statistics.median(step_runs), "rows": rows, "peak_rss_mb": float("nan"),
                                "runs": len(step_runs)})
    total = sum(r["seconds"] for r in results if r["stage"] in stages)
    results.append({"size": name, "stage": "refresh total", "seconds": total, "rows": rows,
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in results if r["stage"] in stages), "runs": repeats})
    return results


def report(result: dict) -> None:
    """Each stage's figures as soon as it finishes, so a long run's partial results are never lost."""
    print(f"  {result['size']} {result['stage']}: {result['seconds']:.1f} s, "
          f"peak {result['peak_rss_mb']:,.0f} MB", file=sys.stderr, flush=True)


def print_table(results: list[dict]) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'size':<5}{'stage':<24}{'wall s':>9}{'input rows':>13}{'rows/s':>12}{'peak RSS MB':>13}{'runs':>6}")
    for r in results:
        rss = "" if r["peak_rss_mb"] != r["peak_rss_mb"] else f"{r['peak_rss_mb']:,.0f}"
        print(f"{r['size']:<5}{r['stage']:<24}{r['seconds']:>9.1f}{r['rows']:>13,}"
              f"{r['rows'] / r['seconds']:>12,.0f}{rss:>13}{r.get('runs', 1):>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="S,M", help="comma-separated from S, M, L (default S,M)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage; the median is reported")
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES), help=f"comma-separated from {', '.join(STAGES)}")
    parser.add_argument("--reuse-export", action="store_true",
                        help="keep an export generated by an earlier run (generation is then not timed)")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    results = []
    for name in args.sizes.split(","):
        started = time.perf_counter()
        results += bench_size(name, SIZES[name], args.repeats, args.workdir, args.stages.split(","),
                              args.reuse_export)
        print(f"{name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print_table(results)


if __name__ == "__main__":
    main()
