"""The refresh jobs and the daily schedule.

`full_refresh` is the daily job: it runs every asset, each doing only what changed (new drop files, the records they
touch; nothing at all when no drop, setting or code changed). `full_rebuild` runs the same assets tagged to rebuild
everything (dbt's --full-refresh, every table published), as `crm-warehouse refresh --full-refresh` does."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
)

from dagster_project.refresh_state import FULL_REFRESH_TAG
from dagster_project.settings import Settings

full_refresh_job = define_asset_job(
    "full_refresh",
    selection=AssetSelection.all(),
    description="Ingest every new or changed export file, update the dbt models incrementally and run their tests, "
                "recompute the analytics and publish the tables that changed; when no drop, setting or code changed, "
                "do nothing.",
)

full_rebuild_job = define_asset_job(
    "full_rebuild",
    selection=AssetSelection.all(),
    tags={FULL_REFRESH_TAG: "true"},
    description="Rebuild everything from the raw tables: every dbt model in full (--full-refresh), every asset, "
                "every table published.",
)


def daily_refresh_schedule(settings: Settings) -> ScheduleDefinition:
    return ScheduleDefinition(
        name="daily_refresh",
        job=full_refresh_job,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        default_status=DefaultScheduleStatus.RUNNING,
        description="The daily refresh, at 06:00 by default (CRM_SCHEDULE_CRON, in CRM_SCHEDULE_TIMEZONE, default "
                    "Asia/Shanghai).",
    )
