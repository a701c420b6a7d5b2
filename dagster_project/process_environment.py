"""The environment every process of a refresh runs with, set once at its entry points (the CLI, the Dagster
definitions, the test session) rather than as a side effect of importing a module.

- No usage tracking: nothing the refresh starts (dbt, Great Expectations, Dagster) may wait on the network.
- LightGBM's OpenMP threads sleep while they wait instead of spinning: on two cores shared with DuckDB, spinning made a
  churn fit several times slower. OpenMP reads this when LightGBM loads, so it must be set before the first fit
  imports it (dagster_project.analytics imports LightGBM only inside the functions that fit).
- Umask 077: whatever the refresh and its children create (DuckDB's database, WAL and spill files, dbt's compiled SQL
  and logs, Dagster's storage) is readable by its owner only; what BI readers get is given the published mode
  explicitly (dagster_project.privacy.modes).
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


OWNER_ONLY_UMASK = 0o077


def prepare_process() -> None:
    """Set the defaults above where the environment does not set them already, and the owner-only umask."""
    for key, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.umask(OWNER_ONLY_UMASK)
