"""Where a refresh writes: every file and folder it keeps beside the published warehouse is named here, and only here.

Given the published file (``warehouse/crm.duckdb`` by default):

- ``crm.work.duckdb``: the working database every step builds (raw, staging, restricted, marts, analytics);
- ``crm.duckdb.lock``: held by the refresh that is writing, so a second one is refused;
- ``.crm.duckdb.publishing``: the next published file while it is being written;
- ``parquet/`` and ``csv/``: one file per published table (a symlink to the current version folder);
- ``reports/crm_report.html`` (``crm_report.zh.html``): the HTML report;
- ``quality/index.html``: the data-quality page;
- ``models/<model>/<version>/``: the saved models that score between refits (owner-only: a model can memorise
  personal data), and ``models/<model>/current`` naming the version in use.
"""

from __future__ import annotations

from pathlib import Path


def work_database_path(warehouse: Path) -> Path:
    """The refresh's working database beside the published file: warehouse/crm.duckdb -> warehouse/crm.work.duckdb."""
    warehouse = Path(warehouse)
    name = f"{warehouse.stem}.work{warehouse.suffix}" if warehouse.suffix else f"{warehouse.name}.work"
    return warehouse.with_name(name)


def lock_path(warehouse: Path) -> Path:
    return Path(f"{warehouse}.lock")


def publishing_path(warehouse: Path) -> Path:
    warehouse = Path(warehouse)
    return warehouse.with_name(f".{warehouse.name}.publishing")


def parquet_dir(warehouse: Path) -> Path:
    return Path(warehouse).parent / "parquet"


def csv_dir(warehouse: Path) -> Path:
    return Path(warehouse).parent / "csv"


def report_path(warehouse: Path, lang: str) -> Path:
    """reports/crm_report.html, and crm_report.<lang>.html for other languages."""
    return Path(warehouse).parent / "reports" / ("crm_report.html" if lang == "en" else f"crm_report.{lang}.html")


def quality_page_path(warehouse: Path) -> Path:
    return Path(warehouse).parent / "quality" / "index.html"


def models_dir(warehouse: Path) -> Path:
    """models/: one folder per saved model, one subfolder per version (dagster_project/analytics/model_store.py)."""
    return Path(warehouse).parent / "models"
