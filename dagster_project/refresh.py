"""One full refresh: materialise every Dagster asset of the warehouse, in this process, with progress lines."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dagster import AssetCheckSeverity, DagsterInstance

from dagster_project.definitions import build_definitions
from dagster_project.settings import Settings


class RefreshError(Exception):
    """The refresh did not complete; the message says why in one line."""


@dataclass
class RefreshResult:
    run_id: str
    success: bool


def run_refresh(settings: Settings, instance: DagsterInstance,
                progress: Callable[[str], None] = lambda line: None,
                groups: Sequence[str] | None = None) -> RefreshResult:
    """Run the `full_refresh` job (the same job the daily schedule runs) and raise RefreshError on failure.

    `groups` limits the run to the assets of those groups (the benchmark times ingest, dbt and analytics apart).
    """
    if not settings.exports_dir.is_dir():
        raise RefreshError(f"exports folder {settings.exports_dir} does not exist")
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def("full_refresh")
    selection = None
    if groups is not None:
        graph = definitions.resolve_asset_graph()
        selection = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name in groups]
    run_id = str(uuid.uuid4())
    # dagster-dbt echoes every dbt event on stdout (for Dagster's compute logs); dbt/logs/dbt.log has them all.
    with _FollowRunLog(instance, run_id, progress), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        result = job.execute_in_process(
            instance=instance,
            run_id=run_id,
            asset_selection=selection,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
    if not result.success:
        raise RefreshError(f"refresh failed: {failure_reason(result)}")
    return RefreshResult(run_id=run_id, success=True)


# Of dbt's own log lines, the ones that show progress or trouble.
_DBT_PROGRESS = re.compile(r"OK created|ERROR creating|FAIL \d|Failure in|Done\. PASS")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def progress_line(entry) -> str | None:
    """A short line for a run-log entry worth showing: step starts and ends, our assets' messages, dbt's model
    progress. None for the rest."""
    step = entry.step_key
    if entry.dagster_event is not None:
        kind = entry.dagster_event.event_type_value
        return {"STEP_START": f"{step}: started", "STEP_SUCCESS": f"{step}: done"}.get(kind)
    message = _ANSI.sub("", entry.user_message or "").strip()
    if not step or not message or entry.level < logging.INFO:
        return None
    if step.startswith("crm_dbt_models") and entry.level < logging.WARNING and not _DBT_PROGRESS.search(message):
        return None
    return f"{step}: {message.splitlines()[0]}"


class _FollowRunLog(threading.Thread):
    """Passes progress lines from a run's event log to `progress` while the run executes in this process."""

    def __init__(self, instance: DagsterInstance, run_id: str, progress: Callable[[str], None]):
        super().__init__(daemon=True)
        self.instance, self.run_id, self.progress, self.seen = instance, run_id, progress, 0
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(0.5):
            self._emit_new()
        self._emit_new()

    def _emit_new(self) -> None:
        entries = self.instance.all_logs(self.run_id)
        for entry in entries[self.seen:]:
            line = progress_line(entry)
            if line:
                self.progress(line)
        self.seen = len(entries)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.finished.set()
        self.join()


def failure_reason(result) -> str:
    """Failing data checks by name, else the first step failure's own message without Dagster's wrapping."""
    failed_checks = [
        f"{event.asset_check_evaluation_data.check_name} on {event.asset_check_evaluation_data.asset_key.to_user_string()}"
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.asset_check_evaluation_data.passed
        # Warnings are reported in the run and the quality results; only errors fail a refresh.
        and event.asset_check_evaluation_data.severity == AssetCheckSeverity.ERROR
    ]
    if failed_checks:
        shown = ", ".join(failed_checks[:5]) + (f" and {len(failed_checks) - 5} more" if len(failed_checks) > 5 else "")
        return f"{len(failed_checks)} data test(s) failed: {shown}"
    for event in result.all_events:
        if event.event_type_value == "RESOURCE_INIT_FAILURE":
            return _own_message(event.event_specific_data.error)
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name in {"DagsterExecutionStepExecutionError"}:
                error = error.cause
            return f"{event.step_key}: {_own_message(error)}"
    return "the Dagster run did not succeed (see `dagster dev` for the run log)"


def _own_message(error) -> str:
    """An error's message on one line, without the `package.module.ClassName: ` prefix Dagster serialises."""
    message = " ".join(error.message.split()) or error.cls_name
    head, _, rest = message.partition(": ")
    return rest if rest and head.split(".")[-1] == error.cls_name else message
