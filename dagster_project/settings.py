"""Where the exports and the warehouse are, and which date counts as today, from the environment.

The same values reach dbt (``dbt/profiles.yml`` reads ``CRM_WORK_DATABASE``, derived here from ``CRM_WAREHOUSE``) and the
Dagster resources, so there is one path to the DuckDB file however the refresh is started (CLI, ``dagster asset
materialize``, the daily schedule).

Two files: the refresh writes the *working* database ``<name>.work.duckdb`` (raw, staging, intermediate, restricted
personal data, marts, analytics); the *published* file ``CRM_WAREHOUSE`` holds only the BI-facing schemas and is
replaced atomically at the end of a successful refresh, so readers never wait on or see a half-built warehouse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"

DEFAULT_EXPORTS_DIR = "data/exports"
DEFAULT_WAREHOUSE = "warehouse/crm.duckdb"

# Nothing here may wait on the network: switch off usage tracking in every tool the refresh starts.
TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}

for _key, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_key, _value)
# LightGBM's OpenMP threads spin while waiting by default; on two cores shared with DuckDB that made a churn fit
# 5x slower. Must be set before LightGBM loads, which is why it is here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class SettingsError(ValueError):
    """A setting from the environment or the command line is unusable."""


@dataclass(frozen=True)
class Settings:
    exports_dir: Path
    warehouse: Path
    as_of: date | None
    schedule_timezone: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            exports_dir=Path(os.environ.get("CRM_EXPORTS_DIR") or DEFAULT_EXPORTS_DIR).resolve(),
            warehouse=Path(os.environ.get("CRM_WAREHOUSE") or DEFAULT_WAREHOUSE).resolve(),
            as_of=parse_as_of(os.environ.get("CRM_AS_OF")),
            schedule_timezone=os.environ.get("CRM_SCHEDULE_TIMEZONE") or "Asia/Shanghai",
        )

    @property
    def work_database(self) -> Path:
        return work_database_path(self.warehouse)

    def export_to_env(self) -> None:
        """Publish the resolved values so child processes (dbt) see exactly these paths."""
        os.environ["CRM_EXPORTS_DIR"] = str(self.exports_dir)
        os.environ["CRM_WAREHOUSE"] = str(self.warehouse)
        os.environ["CRM_WORK_DATABASE"] = str(self.work_database)
        if self.as_of:
            os.environ["CRM_AS_OF"] = self.as_of.isoformat()
        else:
            os.environ.pop("CRM_AS_OF", None)


def work_database_path(warehouse: Path) -> Path:
    """The refresh's working database beside the published file: warehouse/crm.duckdb -> warehouse/crm.work.duckdb."""
    return warehouse.with_name(f"{warehouse.stem}.work{warehouse.suffix}" if warehouse.suffix else f"{warehouse.name}.work")


def parse_as_of(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise SettingsError(f"as-of date {text!r} is not a date in YYYY-MM-DD form") from None
