"""The analytics modules that bring in the model libraries (statsforecast, Prophet, scikit-learn, SciPy, xarray).

The analytics assets import them when they run, not when the definitions load: `dagster dev`, the daemon, the code
server and every `crm-warehouse` process load the definitions, and these libraries take seconds to import.
`load_in_background` imports them in a thread of the run's process while dbt builds the marts in its own process:
this process mostly waits for dbt's events then, and cannot start the analytics before dbt releases the working
database anyway. LightGBM is not among them: it loads where it is used, after the entry point has set OpenMP's
environment (dagster_project.process_environment).
"""

from __future__ import annotations

import importlib
import threading

from dagster import AssetKey

from dagster_project.defs.assets.analytics.common import SCHEMA

MODULES = (
    "dagster_project.analytics.forecast_cadence",
    "dagster_project.analytics.forecast_inputs",
    "dagster_project.analytics.churn_cadence",
    "dagster_project.analytics.health_cadence",
    "dagster_project.analytics.clv",
    "dagster_project.analytics.campaigns",
)


def analytics_selected(asset_selection: frozenset[AssetKey] | None) -> bool:
    """Whether a run with this asset selection materialises any analytics asset. A run of the whole job has none
    (None, or an empty set when it was executed in process)."""
    return not asset_selection or any(key.path[0] == SCHEMA for key in asset_selection)


def load_in_background() -> threading.Thread:
    """Start importing MODULES in a daemon thread; the assets' own imports then find them loaded (or wait for the
    module being loaded: Python's import locks are per module)."""
    thread = threading.Thread(target=_load, name="load-model-libraries", daemon=True)
    thread.start()
    return thread


def _load() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the asset that needs the module imports it again and fails with the reason
            return
