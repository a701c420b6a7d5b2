"""The analytics modules and the model libraries they bring (statsforecast, Prophet, scikit-learn, SciPy, xarray,
matplotlib for the charts) and the report's (plotly), imported in a thread while dbt builds the marts in its own
process.

The analytics assets import them when they run, not when the definitions load: `dagster dev`, the daemon, the code
server and every `crm-warehouse` process load the definitions, and these take seconds to import. While dbt builds,
the run's process mostly waits for its events, and the analytics cannot start before dbt releases the working
database anyway; imports hold Python's lock (GIL), so this gains only beside such waiting (Great Expectations loaded
the same way beside ingestion made the ingest step slower by as much as it saved).

The sales forecast's worker process (dagster_project.analytics.forecast_workers) is spawned then too when the forecast
will fit every series (SavedModels.forecast_fits_every_series), once these imports are done: it imports its libraries
in its own process, and beside dbt's start and these imports it would make three busy processes on two cores.

LightGBM is not among them: it loads where it is used, after the entry point has set OpenMP's environment
(dagster_project.process_environment).
"""

from __future__ import annotations

import importlib
import threading

from dagster import AssetKey

from dagster_project.defs.assets.analytics.common import SCHEMA

ANALYTICS_MODULES = (
    "dagster_project.analytics.forecast_cadence",
    "dagster_project.analytics.forecast_inputs",
    "dagster_project.analytics.churn_cadence",
    "dagster_project.analytics.health_cadence",
    "dagster_project.analytics.clv",
    "dagster_project.analytics.campaigns",
    "matplotlib.figure",
    "dagster_project.report.render",
)


def analytics_selected(asset_selection: frozenset[AssetKey] | None) -> bool:
    """Whether a run with this asset selection materialises any analytics asset. A run of the whole job has none
    (None, or an empty set when it was executed in process)."""
    return not asset_selection or any(key.path[0] == SCHEMA for key in asset_selection)


FORECAST_KEY = AssetKey([SCHEMA, "sales_forecast"])


def forecast_selected(asset_selection: frozenset[AssetKey] | None) -> bool:
    """Whether a run with this asset selection materialises the sales forecast."""
    return not asset_selection or FORECAST_KEY in asset_selection


def load_in_background(asset_selection: frozenset[AssetKey] | None = None,
                       forecast_worker: bool = True) -> threading.Thread:
    """Start importing ANALYTICS_MODULES in a daemon thread, then the forecast's worker if the run forecasts and
    `forecast_worker`. A step importing one of them meanwhile waits for that module only (Python's import locks are
    per module)."""
    thread = threading.Thread(target=_load, args=(forecast_worker and forecast_selected(asset_selection),),
                              name="background-imports", daemon=True)
    thread.start()
    return thread


def _load(forecast_worker: bool) -> None:
    for name in ANALYTICS_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the step that needs the module imports it again and fails with the reason
            return
    if forecast_worker:
        from dagster_project.analytics import forecast_workers

        forecast_workers.start()
