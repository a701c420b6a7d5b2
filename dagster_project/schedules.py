"""The full-refresh job, its daily schedule, and a sensor that starts a refresh when a new drop arrives."""

from __future__ import annotations

import hashlib
from pathlib import Path

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

from dagster_project.ingest import SUFFIXES
from dagster_project.mapping import MAPPING_FILE_NAME
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


def exports_fingerprint(exports_dir: Path) -> str:
    """A hash of every export file's path, size and modification time: changes when a drop arrives or changes, or
    the mapping file changes.

    The sensor must not open the warehouse (a refresh may hold DuckDB's write lock), so it compares files only.
    """
    digest = hashlib.sha256()
    if exports_dir.is_dir():
        # The drop files ingestion reads, and the mapping file that says how to read them.
        for path in sorted([*exports_dir.glob("*/*"), exports_dir / MAPPING_FILE_NAME]):
            if path.is_file() and (path.suffix.lower() in SUFFIXES or path.name == MAPPING_FILE_NAME):
                stat = path.stat()
                digest.update(f"{path.relative_to(exports_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


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
