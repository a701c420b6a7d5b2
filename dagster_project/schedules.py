"""The full-refresh job, its daily schedule, and a sensor that starts a refresh when a new drop arrives."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from dagster_project.ingest import exports_fingerprint
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


def new_drop_sensor(settings: Settings):
    @sensor(
        name="new_export_drop",
        job=full_refresh_job,
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.STOPPED,
        description="Starts a full refresh when files under the exports folder are added or changed. "
        "Off by default: turn it on in the UI where drops arrive at unpredictable times.",
    )
    def _sensor(context: SensorEvaluationContext):
        fingerprint = exports_fingerprint(settings.exports_dir)
        if fingerprint == context.cursor:
            return SkipReason(f"no new or changed files under {settings.exports_dir}")
        context.update_cursor(fingerprint)
        return RunRequest(run_key=fingerprint)

    return _sensor
