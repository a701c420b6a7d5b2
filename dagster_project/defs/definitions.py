"""Dagster definitions of the CRM analytics warehouse (loaded by workspace.yaml and the `crm-warehouse` CLI)."""

import os

from dagster import Definitions, definitions, in_process_executor

from dagster_project.defs.assets.analytics import ANALYTICS_ASSETS
from dagster_project.defs.assets.checks import quality_checks
from dagster_project.defs.assets.dbt import dbt_models, dbt_resource
from dagster_project.defs.assets.gate import publishable
from dagster_project.defs.assets.ingest import raw_exports
from dagster_project.defs.assets.publish import build_published_warehouse
from dagster_project.defs.assets.reporting import report
from dagster_project.defs.erasure import forget_customer_job
from dagster_project.process_environment import prepare_process
from dagster_project.defs.resources import SavedModels, Warehouse
from dagster_project.defs.schedules import daily_refresh_schedule, full_rebuild_job, full_refresh_job
from dagster_project.defs.sensors import new_drop_sensor
from dagster_project.refresh_state import warehouse_config
from dagster_project.settings import Settings
from dagster_project.warehouse_files import models_dir



def build_definitions(settings: Settings) -> Definitions:
    """The definitions of a refresh with these settings; the CLI builds them from its flags, `dagster dev` and the
    daemon (workspace.yaml) through `defs` below from their environment."""
    prepare_process()
    # dbt runs in a child process and reads the working database's path from its profile.
    os.environ.update(settings.dbt_profile_environment())
    # Everything the refresh builds in the working database; publishing runs after all of it.
    warehouse_assets = [raw_exports, dbt_models(), *ANALYTICS_ASSETS, report]
    return Definitions(
        assets=[*warehouse_assets, build_published_warehouse(warehouse_assets)],
        asset_checks=[*quality_checks(), publishable],
        jobs=[full_refresh_job, full_rebuild_job, forget_customer_job],
        schedules=[daily_refresh_schedule(settings)],
        sensors=[new_drop_sensor(settings)],
        resources={
            "warehouse": Warehouse(**warehouse_config(settings)),
            "models": SavedModels(
                path=str(models_dir(settings.warehouse)), retrain=settings.retrain,
                retrain_days=settings.retrain_days, forecast_refit_days=settings.forecast_refit_days,
                retrain_metric_drop=settings.retrain_metric_drop,
            ),
            "dbt": dbt_resource(),
        },
        # Steps run one after another in the run's process: DuckDB allows one writing process per file, and
        # in-process execution saves the process start a subprocess executor pays per step.
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """Loaded lazily (once, when Dagster asks for them), with the settings of the loading process's environment."""
    return build_definitions(Settings.load())
