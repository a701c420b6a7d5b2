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
- ``crm.work.duckdb.tmp/``: DuckDB's spill folder for the working database;
- ``.pseudonym_key``: the pseudonym secret generated when ``CRM_PSEUDONYM_KEY`` is not set;
- ``.erasure_tombstones.json``: the erasure tombstones (keyed hashes), kept outside the working database too;
- ``spark/`` (the Spark engine only): its tables' Parquet folders, its metastore and the ingestion's staging files.

Who may read each (``ACCESS``): what holds personal data or secrets is owner-only whatever the umask; what BI readers
get has the configured published mode (``CRM_PUBLISHED_MODE``; docs/security.md).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
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


def spark_dir(warehouse: Path) -> Path:
    """The Spark engine's local folder: tables (spark.sql.warehouse.dir), metastore, ingestion's staged raw tables."""
    return Path(warehouse).parent / "spark"


def models_dir(warehouse: Path) -> Path:
    """models/: one folder per saved model, one subfolder per version (dagster_project/analytics/model_store.py)."""
    return Path(warehouse).parent / "models"


def work_temp_dir(warehouse: Path) -> Path:
    """Where DuckDB spills the working database's intermediate results (DuckDB's own default name, set explicitly so
    the refresh, dbt and any reader use the one owner-only folder)."""
    return Path(f"{work_database_path(warehouse)}.tmp")


def tombstones_path(warehouse: Path) -> Path:
    """The erasure tombstones kept beside the warehouse: a working database deleted and rebuilt from the export files
    must still screen out the people erased before (dagster_project.privacy.tombstones)."""
    return Path(warehouse).parent / ".erasure_tombstones.json"


def pseudonym_key_path(warehouse: Path) -> Path:
    """The generated pseudonym secret (dbt/models/intermediate/int_customer_keys_pseudonymised.py writes it)."""
    return Path(warehouse).parent / ".pseudonym_key"


def compacting_path(warehouse: Path) -> Path:
    """The working database's fresh copy while it is rebuilt after an erasure or a retention purge."""
    work = work_database_path(warehouse)
    return work.with_name(f".{work.name}.compacting")


def export_version_patterns(warehouse: Path) -> tuple[str, ...]:
    """Globs, in the warehouse folder, of the Parquet and CSV export version folders the symlinks point to."""
    return tuple(f".{folder.name}-*" for folder in (parquet_dir(warehouse), csv_dir(warehouse)))


# Who may read what a refresh leaves in the warehouse folder.
PRIVATE = "owner only"
PUBLISHED = "BI readers"


def access_table(warehouse: Path) -> list[tuple[str, str, str]]:
    """(glob relative to the warehouse folder, PRIVATE or PUBLISHED, what it is) for every file and folder a refresh
    writes there; the first matching glob decides. Outside the warehouse folder the refresh writes only private
    files: the Dagster instance (DAGSTER_HOME) and dbt's per-run target folders (compiled SQL, dbt.log)."""
    warehouse = Path(warehouse)
    work, lock, key = work_database_path(warehouse).name, lock_path(warehouse).name, pseudonym_key_path(warehouse).name
    versions = export_version_patterns(warehouse)
    reports, quality = report_path(warehouse, "en").parent.name, quality_page_path(warehouse).parent.name
    return [
        (work, PRIVATE, "working database: raw drops, restricted personal data, every model"),
        (f"{work}.wal", PRIVATE, "its write-ahead log"),
        (work_temp_dir(warehouse).name, PRIVATE, "DuckDB's spill folder"),
        (f"{work_temp_dir(warehouse).name}/*", PRIVATE, "DuckDB's spill files"),
        (f"{compacting_path(warehouse).name}*", PRIVATE, "the working database being rebuilt"),
        (key, PRIVATE, "generated pseudonym secret"),
        (tombstones_path(warehouse).name, PRIVATE, "erasure tombstones (keyed hashes, no personal value)"),
        (f".{tombstones_path(warehouse).name}.*.tmp", PRIVATE, "erasure tombstones while written"),
        (lock, PRIVATE, "refresh lock (pid of the refresh)"),
        (models_dir(warehouse).name, PRIVATE, "saved models (a model can memorise personal data)"),
        (f"{models_dir(warehouse).name}/*", PRIVATE, "one saved model's versions"),
        (f"{models_dir(warehouse).name}/*/*", PRIVATE, "a saved model version, or the name of the current one"),
        (f"{models_dir(warehouse).name}/*/*/*", PRIVATE, "a saved model version's files"),
        (spark_dir(warehouse).name, PRIVATE, "the Spark engine's tables, metastore and staged raw tables"),
        (f"{spark_dir(warehouse).name}/*", PRIVATE, "the Spark engine's files (raw rows, restricted personal data)"),
        (".checksums-*.json", PRIVATE, "checksums of an export version's tables (which the next publish may reuse)"),
        (publishing_path(warehouse).name + "*", PRIVATE, "next published file while written (made readable as renamed)"),
        (warehouse.name, PUBLISHED, "published warehouse"),
        (parquet_dir(warehouse).name, PUBLISHED, "symlink to the current Parquet version"),
        (csv_dir(warehouse).name, PUBLISHED, "symlink to the current CSV version"),
        *((pattern, PUBLISHED, "export version folder") for pattern in versions),
        *((f"{pattern}/*", PUBLISHED, "Parquet or CSV export of a published table") for pattern in versions),
        (reports, PUBLISHED, "report folder"),
        (f"{reports}/*.html", PUBLISHED, "HTML report"),
        (quality, PUBLISHED, "data-quality folder"),
        (f"{quality}/index.html", PUBLISHED, "data-quality page"),
    ]


def access_of(warehouse: Path, path: Path) -> str | None:
    """PRIVATE or PUBLISHED for a path in the warehouse folder, None for one the table does not list."""
    relative = Path(path).relative_to(Path(warehouse).parent).as_posix()
    return next((access for pattern, access, _ in access_table(warehouse) if fnmatchcase(relative, pattern)), None)
