"""docs/scale_out.png: the DuckDB refresh's wall time and peak memory at S, M and L as measured (docs/benchmarks.md),
extrapolated past L with the power law through M and L, against one machine's memory and a nightly window.

    .venv/bin/python benchmarks/scale_out.py  # writes docs/scale_out.png and prints the crossings
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Export rows (all entities) per size, and the measured full refresh (one `crm-warehouse refresh` from nothing: ingest,
# dbt, checks, analytics, publish) on the project's 2-core, 24 GiB machine, from docs/benchmarks.md
# (`benchmarks/daily.py`, 2026-12-05): S and M medians of 3, L one run; peak RSS of the refresh or its dbt child, in
# GiB (the benchmark's "MB" are MiB: ru_maxrss / 1024), like the machines' memory below.
MEASURED = {
    "S": {"rows": 0.6e6, "seconds": 53.9, "peak_gb": 928 / 1024},
    "M": {"rows": 6.0e6, "seconds": 137.2, "peak_gb": 2015 / 1024},
    "L": {"rows": 60e6, "seconds": 821.5, "peak_gb": 5990 / 1024},
}
MACHINE_GB = 24.0
BIG_MACHINE_GB = 64.0
WINDOW_SECONDS = 3600.0


def power_law(a: dict, b: dict, key: str) -> tuple[float, float]:
    """(exponent, value at b): value = b[key] * (rows / b.rows) ** exponent."""
    exponent = math.log(b[key] / a[key]) / math.log(b["rows"] / a["rows"])
    return exponent, b[key]


def rows_where(limit: float, key: str) -> float:
    """Export rows at which the M-L power law reaches `limit`."""
    exponent, at_l = power_law(MEASURED["M"], MEASURED["L"], key)
    return MEASURED["L"]["rows"] * (limit / at_l) ** (1 / exponent)


def main() -> None:
    sizes = list(MEASURED)
    rows = [MEASURED[s]["rows"] for s in sizes]
    future = [60e6 * 10 ** (k / 10) for k in range(0, 21)]
    fig, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label, limits in (
        (time_ax, "seconds", "full refresh, wall seconds", [(WINDOW_SECONDS, "1-hour window")]),
        (memory_ax, "peak_gb", "peak memory, GiB", [(MACHINE_GB, "24 GiB machine"), (BIG_MACHINE_GB, "64 GiB machine")]),
    ):
        exponent, at_l = power_law(MEASURED["M"], MEASURED["L"], key)
        ax.plot(rows, [MEASURED[s][key] for s in sizes], "o-", color="#1f77b4", label="DuckDB, measured")
        for size, x in zip(sizes, rows, strict=True):
            ax.annotate(size, (x, MEASURED[size][key]), textcoords="offset points", xytext=(4, -12))
        ax.plot(future, [at_l * (x / 60e6) ** exponent for x in future], "--", color="#1f77b4",
                label=f"extrapolated (∝ rows^{exponent:.2f})")
        for limit, name in limits:
            ax.axhline(limit, color="#d62728", linewidth=0.8)
            ax.annotate(name, (future[8], limit), textcoords="offset points", xytext=(2, -12), color="#d62728")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("export rows (all entities)")
        ax.set_ylabel(label)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(True, which="both", alpha=0.2)
    fig.suptitle("One machine, DuckDB: when to switch to Spark (2 cores; measured S, M, L)")
    fig.tight_layout()
    out = Path(__file__).resolve().parent.parent / "docs" / "scale_out.png"
    fig.savefig(out, dpi=110)
    for limit, key in ((MACHINE_GB, "peak_gb"), (BIG_MACHINE_GB, "peak_gb"), (WINDOW_SECONDS, "seconds")):
        print(f"{key} reaches {limit:g} at ~{rows_where(limit, key) / 1e6:,.0f}M export rows")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
