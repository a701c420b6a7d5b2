"""`crm-warehouse`: generate a sample export, refresh the warehouse (by materialising the Dagster assets)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from dagster_project.settings import DEFAULT_EXPORTS_DIR, SettingsError, parse_as_of

PROG = "crm-warehouse"


class CliError(Exception):
    """A failure to report to the user as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (CliError, SettingsError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="CRM analytics warehouse.")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a realistic, messy sample CRM export")
    generate.add_argument("--out", required=True, type=Path, help="exports folder to write the drops into")
    generate.add_argument("--customers", type=int, default=10_000, help="number of customers (default 10000)")
    generate.add_argument("--days", type=int, default=1095, help="days of history (default 1095)")
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument("--truth", type=Path, default=None,
                          help="folder for the ground truth (default: <out>_truth beside the exports)")
    generate.set_defaults(handler=_generate)

    refresh = commands.add_parser("refresh", help="ingest every export drop and rebuild every table")
    refresh.add_argument("--exports", type=Path, default=None,
                         help=f"exports folder (default $CRM_EXPORTS_DIR, else {DEFAULT_EXPORTS_DIR})")
    refresh.add_argument("--warehouse", type=Path, default=None,
                         help="DuckDB file (default $CRM_WAREHOUSE, else warehouse/crm.duckdb)")
    refresh.add_argument("--as-of", default=None,
                         help="treat this date (YYYY-MM-DD) as today (default $CRM_AS_OF, else the latest order date)")
    refresh.set_defaults(handler=_refresh)
    return parser


def _generate(args: argparse.Namespace) -> int:
    from dagster_project.generator import generate

    if args.customers < 1 or args.days < 30:
        raise CliError("--customers must be at least 1 and --days at least 30")
    summary = generate(
        args.out, customers=args.customers, days=args.days, seed=args.seed, truth_dir=args.truth,
        progress=lambda message: print(f"  {message}", flush=True),
    )
    for line in summary.lines():
        print(line)
    return 0


def _refresh(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    # The Dagster definitions read these at import, as `dagster asset materialize` and the schedule do.
    if args.exports:
        os.environ["CRM_EXPORTS_DIR"] = str(args.exports)
    if args.warehouse:
        os.environ["CRM_WAREHOUSE"] = str(args.warehouse)
    if args.as_of:
        os.environ["CRM_AS_OF"] = args.as_of
    parse_as_of(os.environ.get("CRM_AS_OF"))

    from dagster_project.settings import Settings

    settings = Settings.from_env()
    if not settings.exports_dir.is_dir():
        raise CliError(
            f"exports folder {settings.exports_dir} does not exist "
            f"(create it with `{PROG} generate --out {settings.exports_dir}` or set CRM_EXPORTS_DIR)"
        )

    from dagster import DagsterInstance

    from dagster_project.instance import ensure_dagster_home

    ensure_dagster_home()
    _print_progress("preparing dbt project and Dagster definitions")
    from dagster_project.definitions import defs

    job = defs.resolve_job_def("full_refresh")
    with DagsterInstance.get() as instance:
        # dagster-dbt echoes every dbt event on stdout (for Dagster's compute logs); dbt/logs/dbt.log has them all.
        run_id = str(uuid.uuid4())
        with _FollowRunLog(instance, run_id), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            result = job.execute_in_process(
                instance=instance,
                run_id=run_id,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            )
    if not result.success:
        raise CliError(f"refresh failed: {_failure_reason(result)}")
    for line in summary_lines(settings.warehouse, time.perf_counter() - started):
        print(line)
    return 0


def _print_progress(message: str) -> None:
    print(f"  {message}", file=sys.__stdout__, flush=True)


# Of dbt's own log lines, the ones that show progress or trouble.
_DBT_PROGRESS = re.compile(r"OK created|ERROR creating|FAIL \d|Failure in|Done\. PASS")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _progress_line(entry) -> str | None:
    """A short line for a run-log entry worth showing: step starts and ends, our assets' messages, dbt's model
    progress. None for the rest."""
    step = entry.step_key
    if entry.dagster_event is not None:
        kind = entry.dagster_event.event_type_value
        return {"STEP_START": f"{step}: started", "STEP_SUCCESS": f"{step}: done"}.get(kind)
    message = _ANSI.sub("", entry.user_message or "").strip()
    if not step or not message or entry.level < logging.INFO:
        return None
    if step.startswith("crm_dbt_models") and not _DBT_PROGRESS.search(message):
        return None
    return f"{step}: {message.splitlines()[0]}"


class _FollowRunLog(threading.Thread):
    """Prints progress lines from a run's event log while the run executes in this process."""

    def __init__(self, instance, run_id: str):
        super().__init__(daemon=True)
        self.instance, self.run_id, self.seen = instance, run_id, 0
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(0.5):
            self._print_new()
        self._print_new()

    def _print_new(self) -> None:
        entries = self.instance.all_logs(self.run_id)
        for entry in entries[self.seen:]:
            line = _progress_line(entry)
            if line:
                _print_progress(line)
        self.seen = len(entries)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.finished.set()
        self.join()


def _failure_reason(result) -> str:
    """Failing data checks by name, else the first step failure's own message without Dagster's wrapping."""
    failed_checks = [
        f"{event.asset_check_evaluation_data.check_name} on {event.asset_check_evaluation_data.asset_key.to_user_string()}"
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.asset_check_evaluation_data.passed
    ]
    if failed_checks:
        shown = ", ".join(failed_checks[:5]) + (f" and {len(failed_checks) - 5} more" if len(failed_checks) > 5 else "")
        return f"{len(failed_checks)} data test(s) failed: {shown}"
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name in {"DagsterExecutionStepExecutionError"}:
                error = error.cause
            message = " ".join(error.message.split()) or error.cls_name
            prefix = f"{error.cls_name}: "
            return f"{event.step_key}: {message[len(prefix):] if message.startswith(prefix) else message}"
    return "the Dagster run did not succeed (see `dagster dev` for the run log)"


def summary_lines(warehouse: Path, elapsed_seconds: float) -> list[str]:
    """Tables built with their row counts, rows quarantined and reconciliation, read back from the warehouse."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name, estimated_size from duckdb_tables() "
            "where schema_name in ('marts', 'analytics') order by schema_name, table_name"
        ).fetchall()
        counts = {
            (schema, name): con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
            for schema, name, _ in tables
        }
        read, quarantined, unaccounted = con.execute(
            "select sum(rows_read), sum(rows_quarantined), sum(unaccounted_rows) from marts.fct_reconciliation"
        ).fetchone()
        as_of = con.execute("select as_of_date from intermediate.int_as_of").fetchone()[0]
    lines = [f"refreshed {warehouse} as of {as_of} in {elapsed_seconds:.1f} s", f"{len(tables)} tables built:"]
    lines += [f"  {schema}.{name:<32} {counts[(schema, name)]:>12,} rows" for schema, name, _ in tables]
    lines.append(f"rows read {read or 0:,}, quarantined {quarantined or 0:,} (see marts.fct_quarantined_rows), "
                 f"unaccounted {unaccounted or 0:,}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
