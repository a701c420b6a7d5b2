"""A sensor that starts a refresh when a drop is added or changed under the exports folder."""

from __future__ import annotations

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from dagster_project.defs.schedules import full_refresh_job
from dagster_project.ingest import exports_fingerprint
from dagster_project.settings import Settings


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
