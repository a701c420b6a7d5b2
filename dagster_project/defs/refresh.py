"""One refresh: materialise every Dagster asset of the warehouse, in this process, with progress lines. Each asset does
only what changed (dagster_project.refresh_state); `full_refresh` rebuilds everything."""

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

from dagster_project.defs.assets.checks import STOP_FAILURES
from dagster_project.defs.assets.publish import PUBLISHED_WAREHOUSE_KEY
from dagster_project.defs.definitions import build_definitions
from dagster_project.quality.messages import summary
from dagster_project.refresh_state import FULL_REFRESH_TAG
from dagster_project.settings import Settings


class RefreshError(Exception):
    """The refresh did not complete; the message says why in one line."""


@dataclass
class RefreshResult:
    """A refresh that completed (one that did not raises RefreshError)."""

    run_id: str
    # False when nothing had changed since the last publication: every step after ingestion was skipped.
    published: bool = True


def run_refresh(settings: Settings, instance: DagsterInstance,
                progress: Callable[[str], None] | None = None,
                groups: Sequence[str] | None = None, full_refresh: bool = False) -> RefreshResult:
    """Run the `full_refresh` job (the same job the daily schedule runs) and raise RefreshError on failure.

    `groups` limits the run to the assets of those groups (the benchmark times ingest, dbt and analytics apart).
    `full_refresh` tags the run to rebuild everything (the `full_rebuild` job's tag): every dbt model in full, every
    table published.
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
            tags={FULL_REFRESH_TAG: "true"} if full_refresh else None,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
    if not result.success:
        raise RefreshError(f"refresh failed: {failure_reason(result)}")
    published = any(event.event_type_value == "ASSET_MATERIALIZATION" and event.asset_key == PUBLISHED_WAREHOUSE_KEY
                    for event in result.all_events)
    return RefreshResult(run_id=run_id, published=published)


# Of the dbt step's log lines, the ones that show progress or trouble: the asset's own count of finished nodes
# ("12/48 models and tests done", dagster_project.defs.assets.dbt.with_progress) and dbt's lines, not dagster-dbt's chatter
# ("Running dbt command: ...", "Copying partial_parse.msgpack ...").
_DBT_PROGRESS = re.compile(r"^\d+/\d+ models and tests done|^dbt build|OK created|ERROR creating|FAIL \d|Failure in"
                           r"|Done\. PASS")
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
    # After a failure Dagster says so once per skipped step; the closing error line says what failed.
    if message.startswith("Dependencies for step"):
        return None
    if step.startswith("crm_dbt_models") and entry.level < logging.WARNING and not _DBT_PROGRESS.search(message):
        return None
    return f"{step}: {message.splitlines()[0]}"


class _FollowRunLog(threading.Thread):
    """Passes progress lines from a run's event log to `progress` while the run executes in this process."""

    def __init__(self, instance: DagsterInstance, run_id: str, progress: Callable[[str], None] | None):
        super().__init__(daemon=True)
        self.instance, self.run_id, self.progress = instance, run_id, progress
        # Where the last read ended: each poll reads only the entries logged since (a run logs hundreds).
        self.cursor: str | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(0.5):
            self._emit_new()
        self._emit_new()

    def _emit_new(self) -> None:
        while True:
            batch = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=1000)
            for record in batch.records:
                line = progress_line(record.event_log_entry)
                if line:
                    self.progress(line)
            self.cursor = batch.cursor
            if not batch.has_more:
                return

    def __enter__(self):
        if self.progress is not None:  # nobody to tell: no thread reading the run's log
            self.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.finished.set()
            self.join()


def failure_reason(result) -> str:
    """What failed, in one line: the failing data checks, each with what it found (`data check failed: suite
    marts_fct_orders, rule expect_column_values_to_be_between(amount, min 0, max 10000000), column amount: 3 of 120
    rows fail, e.g. 64794816.41`; the first few, then "and N more"), else the first step failure's own message
    without Dagster's wrapping."""
    lines: list[str] = []
    total = 0
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        evaluation = event.asset_check_evaluation_data
        # Warnings are reported in the run and the quality results; only errors fail a refresh.
        if evaluation.passed or evaluation.severity != AssetCheckSeverity.ERROR:
            continue
        check_lines, count = _check_failure(evaluation)
        lines += check_lines
        total += count
    if lines:
        return summary(lines, total, shown=FAILURES_SHOWN)
    for event in result.all_events:
        if event.event_type_value == "RESOURCE_INIT_FAILURE":
            return _own_message(event.event_specific_data.error)
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name in {"DagsterExecutionStepExecutionError"}:
                error = error.cause
            return f"{event.step_key}: {_own_message(error)}"
    return "the Dagster run did not succeed (see `dagster dev` for the run log)"


# Failed checks named in a refresh's error message; the rest are counted ("and N more").
FAILURES_SHOWN = 3


def _check_failure(evaluation) -> tuple[list[str], int]:
    """The lines a failed check contributes to the message, and how many failures it stands for.

    - Our Great Expectations checks: one line per failed `stop` expectation, from the check's metadata
      (dagster_project.defs.assets.checks.STOP_FAILURES), counted by its `failed_stop`.
    - dbt tests (asset checks from dagster-dbt): the test, its model and dbt's count of failing rows.
    - Any other check: its name and asset."""
    metadata = evaluation.metadata or {}
    asset = evaluation.asset_key.to_user_string()
    stop_lines = _metadata_value(metadata.get(STOP_FAILURES))
    if isinstance(stop_lines, list) and stop_lines:
        count = _metadata_value(metadata.get("failed_stop"))
        return [str(line) for line in stop_lines], count if isinstance(count, int) else len(stop_lines)
    failing_rows = _metadata_value(metadata.get("dagster_dbt/failed_row_count"))
    if failing_rows is not None:
        return [f"dbt test {evaluation.check_name} on model {asset}: {failing_rows} failing "
                f"row{'' if failing_rows == 1 else 's'}"], 1
    described = " ".join((evaluation.description or "").split())
    return [f"{evaluation.check_name} on {asset}" + (f": {described}" if described else "")], 1


def _metadata_value(entry):
    """The plain value of a Dagster metadata entry (JSON, int, text), or None."""
    return getattr(entry, "value", entry)


def _own_message(error) -> str:
    """An error's message on one line, without the `package.module.ClassName: ` prefix Dagster serialises."""
    message = " ".join(error.message.split()) or error.cls_name
    head, _, rest = message.partition(": ")
    return rest if rest and head.split(".")[-1] == error.cls_name else message
