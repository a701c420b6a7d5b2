"""The Dagster instance (run history) the CLI and `dagster dev` share, so a CLI refresh shows up in the UI."""

from __future__ import annotations

import json
import os
from pathlib import Path

# One writer to the DuckDB file at a time across runs (the schedule, a sensor and a manual run may overlap):
# every asset that writes is in this pool, and the instance below gives pools one slot.
WRITER_POOL = "duckdb_writer"


def instance_yaml(home: Path) -> str:
    """The instance settings of a local Dagster home. The event log is where Dagster's default instance keeps it
    (history/runs), in Dagster's SQLite storage with its engines kept open (dagster_project/defs/event_log.py)."""
    return f"""\
telemetry:
  enabled: false
event_log_storage:
  module: dagster_project.defs.event_log
  class: SqliteEventLogKeepingEngines
  config:
    base_dir: {json.dumps(str(home.resolve() / "history" / "runs"))}
concurrency:
  pools:
    default_limit: 1
"""


# What instance_yaml gave before the event log kept its engines: such a home is brought up to date (its files stay).
_EARLIER_INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME from the environment, else ./.dagster_home, created with our instance settings, and owner-only:
    its run storage holds every run's log, config and metadata."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if home.stat().st_uid == os.getuid():  # a shared instance folder keeps the mode its owner gave it
        os.chmod(home, 0o700)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() == _EARLIER_INSTANCE_YAML:
        config.write_text(instance_yaml(home))
    os.environ["DAGSTER_HOME"] = str(home)
    return home
