"""The full-refresh job and its daily schedule."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
)

from dagster_project.settings import Settings

full_refresh_job = define_asset_job(
    "full_refresh",
    selection=AssetSelection.all(),
    description="Ingest every new export drop, build all dbt models and tests, recompute every analytics asset.",
)


def daily_refresh_schedule(settings: Settings) -> ScheduleDefinition:
    return ScheduleDefinition(
        name="daily_refresh",
        job=full_refresh_job,
        cron_schedule="0 6 * * *",
        execution_timezone=settings.schedule_timezone,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Full refresh every day at 06:00 (timezone from CRM_SCHEDULE_TIMEZONE, default Asia/Shanghai).",
    )
