"""The Dagster instance (run history) the CLI and `dagster dev` share, so a CLI refresh shows up in the UI."""

from __future__ import annotations

import os
from pathlib import Path

# One writer to the DuckDB file at a time across runs (the schedule, a sensor and a manual run may overlap):
# every asset that writes is in this pool, and the instance below gives pools one slot.
WRITER_POOL = "duckdb_writer"

INSTANCE_YAML = """\
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
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
