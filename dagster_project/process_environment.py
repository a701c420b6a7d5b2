"""The environment every process of a refresh runs with, set once at its entry points (the CLI, the Dagster
definitions, the test session) rather than as a side effect of importing a module.

- No usage tracking: nothing the refresh starts (dbt, Great Expectations, Dagster) may wait on the network.
- LightGBM's OpenMP threads sleep while they wait instead of spinning: on two cores shared with DuckDB, spinning made a
  churn fit several times slower. OpenMP reads this when LightGBM loads, so it must be set before the first fit
  imports it (dagster_project.analytics imports LightGBM only inside the functions that fit).
- Umask 077: whatever the refresh and its children create (DuckDB's database, WAL and spill files, dbt's compiled SQL
  and logs, Dagster's storage) is readable by its owner only; what BI readers get is given the published mode
  explicitly (dagster_project.privacy.modes).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}
PROCESS_DEFAULTS = {**TELEMETRY_OFF, "OMP_WAIT_POLICY": "PASSIVE"}


OWNER_ONLY_UMASK = 0o077


def prepare_process() -> None:
    """Set the defaults above where the environment does not set them already, and the owner-only umask."""
    for key, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.umask(OWNER_ONLY_UMASK)


# The status an entry point returned, once it has (exit_skipping_teardown).
_finished_with: list[int] = []


def exit_skipping_teardown(main: Callable[[], object]) -> NoReturn:
    """Run a console script's `main` and exit with its status, without the interpreter's teardown.

    A refresh leaves several hundred thousand objects behind (Dagster, dbt's manifest, pandas, the model libraries),
    and a dbt build its parsed project: the teardown garbage-collects them over and over before the process ends
    (measured: docs/benchmarks.md), time the caller waits for and that frees nothing a finished process keeps.

    Every exit handler still runs (temporary folders, cmdstan's files, thread pools, locks, DuckDB's): ours is
    registered before `main` imports what registers them (dagster_project.entry_points), so it runs last, flushes
    logging and the standard streams, and ends the process. A `main` that raises anything but SystemExit exits the
    usual way, after its traceback.
    """
    atexit.register(_end_process)
    try:
        status = main()
    except SystemExit as done:  # dbt's click command exits by itself
        status = done.code
    _finished_with.append(status if isinstance(status, int) else 0 if status is None else 1)
    sys.exit(status)


def _end_process() -> None:
    if not _finished_with:
        return
    import logging  # (imported already by whatever logged)

    logging.shutdown()
    status = _finished_with[0]
    # As the interpreter's own last flush: a stream that is gone or closed is skipped; one that cannot take what is
    # left (a full disk, a reader that went away) makes the status 120, and stdout's error is reported.
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue
        try:
            stream.flush()
        except (OSError, ValueError) as error:
            status = 120
            if stream is sys.stdout:
                with contextlib.suppress(Exception):
                    sys.stderr.write(f"Exception ignored while flushing sys.stdout: {error!r}\n")
                    sys.stderr.flush()
    os._exit(status)
