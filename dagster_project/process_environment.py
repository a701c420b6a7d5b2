"""The environment every process of a refresh runs with, set once at its entry points (the CLI, the Dagster
definitions, the test session) rather than as a side effect of importing a module.

- No usage tracking: nothing the refresh starts (dbt, Great Expectations, Dagster) may wait on the network.
- LightGBM's OpenMP threads sleep while they wait instead of spinning: on two cores shared with DuckDB, spinning made a
  churn fit several times slower. OpenMP reads this when LightGBM loads, so it must be set before the first fit
  imports it (dagster_project.analytics imports LightGBM only inside the functions that fit).
"""

from __future__ import annotations

import os

TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}
PROCESS_DEFAULTS = {**TELEMETRY_OFF, "OMP_WAIT_POLICY": "PASSIVE"}


def prepare_process() -> None:
    """Set the defaults above where the environment does not set them already."""
    for key, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)
