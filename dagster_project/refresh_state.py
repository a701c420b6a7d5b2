"""What a refresh was built from: so that a refresh with nothing new does nothing, and dbt rebuilds its incremental
models in full exactly when it must.

- The *inputs* of a refresh: every file under the exports folder (path, size and content hash), the mapping file, the
  settings its results depend on, the pseudonym secret (hashed into the digest, never stored) and the code version
  (the project's source and the versions of the libraries that compute results). The ingest step records them in the
  working database as `pending` before it loads anything; the publish step marks them `published` by its run once
  the publication is in place, and only for a run of every asset (a subset run leaves nothing recorded). A refresh
  whose inputs equal the published ones, while the published file is still that run's, has nothing to do: the CLI
  says so before it even loads Dagster (which takes longer than the whole answer may), and a Dagster run's ingest
  step yields nothing, so Dagster skips every step after it. A file whose size and modification time are unchanged
  keeps its recorded hash; another is hashed again, so a file copied again with the same content changes nothing.
- The *dbt state*: the dbt project's files, the build's vars except as_of (the per-customer incremental models track
  the as-of date themselves: dbt/macros/customer_incremental.sql), the engine and the versions of dbt and DuckDB (and
  of Spark and dbt-spark on the Spark engine). Recorded after each
  complete `dbt build`; a build whose state differs from the recorded one (or finds none) runs with --full-refresh, so
  the incremental models never mix rows built by two versions of the code.

Nothing here imports Dagster: the CLI decides "nothing changed" without it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import duckdb

from dagster_project.files import file_identity, walk
from dagster_project.privacy import erasure
from dagster_project.settings import DBT_GENERATED_FOLDERS, NO_HOLIDAYS, PROJECT_ROOT, Settings
from dagster_project.sql import qualified, table_exists
from dagster_project.warehouse_files import pseudonym_key_path

# A Dagster run tagged with this (value "true") rebuilds everything: `crm-warehouse refresh --full-refresh`, the
# `full_rebuild` job.
FULL_REFRESH_TAG = "crm/full_refresh"


def full_refresh_asked(run_tags: Mapping[str, str]) -> bool:
    """Whether a run with these tags was asked to rebuild everything."""
    return run_tags.get(FULL_REFRESH_TAG) == "true"

STATE_SCHEMA = "meta"
REFRESH_STATE = (STATE_SCHEMA, "refresh_state")
DBT_STATE = (STATE_SCHEMA, "dbt_state")

# The Warehouse resource's fields a refresh's results depend on. Paths are not among them: the exports folder counts
# by its files and the mapping file by its content (another folder with the same files changes nothing).
# (Not currency_named: it decides whether a refresh stops, not what it publishes.)
RESULT_FIELDS = ("as_of", "reporting_currency", "default_currency", "holiday_country", "currency_label",
                 "max_quarantine_share", "storage_version", "published_mode", "raw_retention_days",
                 "keep_previous_exports", "engine")
# What computes results besides the project's own source.
LIBRARIES = ("duckdb", "dbt-core", "dbt-duckdb", "dagster", "dagster-dbt", "great-expectations", "pandas", "numpy",
             "scipy", "scikit-learn", "lightgbm", "pymc-marketing", "prophet", "statsforecast", "holidays")
DBT_LIBRARIES = ("duckdb", "dbt-core", "dbt-duckdb")
# What computes results besides those on the Spark engine (counted only for a refresh on it).
SPARK_LIBRARIES = ("pyspark", "dbt-spark")
# The pseudonym secret (its file beside the warehouse when the variable is unset: warehouse_files.pseudonym_key_path).
SECRET_ENV = "CRM_PSEUDONYM_KEY"


def warehouse_config(settings: Settings) -> dict[str, object]:
    """The Warehouse resource's fields for these settings (dagster_project/defs/resources.py)."""
    mapping = settings.resolved_mapping_file
    return {
        "path": str(settings.warehouse),
        "work_path": str(settings.work_database),
        "exports_dir": str(settings.exports_dir),
        "as_of": settings.as_of.isoformat() if settings.as_of else None,
        "reporting_currency": settings.reporting_currency,
        "default_currency": settings.resolved_default_currency,
        "currency_named": settings.currency_named,
        "holiday_country": settings.resolved_holiday_country or NO_HOLIDAYS,
        "currency_label": settings.resolved_currency_label,
        "max_quarantine_share": settings.max_quarantine_share,
        "mapping_file": str(mapping) if mapping else None,
        "storage_version": settings.storage_version,
        "published_mode": settings.published_mode,
        "raw_retention_days": settings.raw_retention_days,
        "keep_previous_exports": settings.keep_previous_exports,
        "memory_limit": settings.duckdb_memory_limit,
        "engine": settings.engine,
    }


def _digest(parts: Iterable[tuple[str, bytes]]) -> str:
    sha = hashlib.sha256()
    for name, content in parts:
        sha.update(f"{name}\0{len(content)}\0".encode())
        sha.update(content)
    return sha.hexdigest()


def _source_files(roots: Iterable[Path], suffixes: set[str]) -> list[Path]:
    return sorted(p for root in roots for p in walk(root, skip={*DBT_GENERATED_FOLDERS, "__pycache__"})
                  if p.suffix in suffixes and p.is_file())


def _versions(libraries: Iterable[str]) -> bytes:
    found = {}
    for name in libraries:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return json.dumps(found, sort_keys=True).encode()


@cache
def dbt_project_version() -> str:
    """A hash of the dbt project's files (models, macros, seeds, tests, configuration) and of dbt's and DuckDB's
    versions."""
    dbt = PROJECT_ROOT / "dbt"
    files = _source_files([dbt], {".sql", ".py", ".yml", ".yaml", ".csv", ".md"})
    return _digest([(str(p.relative_to(dbt)), p.read_bytes()) for p in files]
                   + [("libraries", _versions(DBT_LIBRARIES))])


@cache
def code_version() -> str:
    """A hash of everything that computes a refresh's results: the Python package, the dbt project, the Great
    Expectations suites and the versions of the libraries."""
    package = PROJECT_ROOT / "dagster_project"
    files = _source_files([package, PROJECT_ROOT / "expectations"], {".py", ".json", ".sql", ".yml", ".yaml"})
    return _digest([(str(p.relative_to(PROJECT_ROOT)), p.read_bytes()) for p in files]
                   + [("dbt", dbt_project_version().encode()), ("libraries", _versions(LIBRARIES))])


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _exports_files(exports_dir: Path, known: Mapping[str, list]) -> dict[str, list]:
    """relative path -> [size, mtime_ns, sha256, file identity] of every file under the exports folder but hidden
    ones (what ingestion reads is a subset; a changed other file costs one needless refresh, a missed drop a wrong
    one)."""
    files: dict[str, list] = {}
    if not exports_dir.is_dir():
        return files
    for root, folders, names in os.walk(exports_dir, followlinks=True):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(root, name)
            try:
                stat = path.stat()
            except OSError:  # a dangling link: ingestion warns about it
                continue
            relative = path.relative_to(exports_dir).as_posix()
            before, identity = known.get(relative), file_identity(stat)
            same = before is not None and before[3:] == [identity]
            files[relative] = [stat.st_size, stat.st_mtime_ns, before[2] if same else _file_sha256(path), identity]
    return files


@dataclass(frozen=True)
class Inputs:
    """What a refresh is about to be built from: one digest, and the files with their hashes."""

    fingerprint: str
    files: dict[str, list]


def current_inputs(config: Mapping[str, object], known_files: Mapping[str, list] | None = None) -> Inputs:
    """The inputs of a refresh with this Warehouse configuration (warehouse_config, or the resource's fields);
    `known_files` are the files recorded last time, whose hashes are reused where a file is as it was then
    (files.file_identity)."""
    exports_dir = Path(str(config["exports_dir"]))
    files = _exports_files(exports_dir, known_files or {})
    parts = [("files", json.dumps({k: [v[0], v[2]] for k, v in files.items()}, sort_keys=True).encode()),
             ("settings", json.dumps({k: config.get(k) for k in RESULT_FIELDS}, sort_keys=True, default=str).encode()),
             ("code", code_version().encode())]
    if config.get("engine") == "spark":
        parts.append(("spark", _versions(SPARK_LIBRARIES)))
    mapping = config.get("mapping_file")
    if mapping and Path(str(mapping)).is_file():
        parts.append(("mapping", Path(str(mapping)).read_bytes()))
    secret = os.environ.get(SECRET_ENV, "").encode()
    key_file = pseudonym_key_path(Path(str(config["path"])))
    if not secret and key_file.is_file():
        secret = key_file.read_bytes()
    parts.append(("secret", secret))
    return Inputs(_digest(parts), files)


@dataclass(frozen=True)
class Recorded:
    status: str  # "pending" (recorded by the ingest step) or "published"
    fingerprint: str
    files: dict[str, list]
    run_id: str | None
    recorded_at: datetime


def recorded(con: duckdb.DuckDBPyConnection) -> Recorded | None:
    """The inputs recorded in the working database, if any."""
    if not table_exists(con, *REFRESH_STATE):
        return None
    row = con.execute(f"select status, fingerprint, files, run_id, recorded_at from {qualified(*REFRESH_STATE)}"
                      ).fetchone()
    return None if row is None else Recorded(row[0], row[1], json.loads(row[2]), row[3], row[4])


def _write(con: duckdb.DuckDBPyConnection, status: str, fingerprint: str, files: str, run_id: str | None) -> None:
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(f"create or replace table {qualified(*REFRESH_STATE)} as select ?::varchar as status, "
                "?::varchar as fingerprint, ?::varchar as files, ?::varchar as run_id, ?::timestamp as recorded_at",
                [status, fingerprint, files, run_id, datetime.now(UTC).replace(tzinfo=None)])


def record_pending(con: duckdb.DuckDBPyConnection, inputs: Inputs, run_id: str) -> None:
    """The ingest step's record of what this run is built from (not yet published)."""
    _write(con, "pending", inputs.fingerprint, json.dumps(inputs.files, sort_keys=True), run_id)


def record_published(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """After run `run_id` published: its pending inputs become the published ones. False (and nothing recorded) when
    the pending inputs are another run's."""
    pending = recorded(con)
    if pending is None or pending.status != "pending" or pending.run_id != run_id:
        forget(con)
        return False
    _write(con, "published", pending.fingerprint, json.dumps(pending.files, sort_keys=True), run_id)
    return True


def forget(con: duckdb.DuckDBPyConnection) -> None:
    """Nothing recorded: the next refresh runs whatever it finds."""
    con.execute(f"drop table if exists {qualified(*REFRESH_STATE)}")


def published_run(warehouse: Path) -> str | None:
    """The run that wrote the published file, None when there is none or it cannot be read."""
    if not Path(warehouse).is_file():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return con.execute("select run_id from meta.publication").fetchone()[0]
    except duckdb.Error:
        return None


def unchanged_since(state: Recorded | None, inputs: Inputs, warehouse: Path) -> Recorded | None:
    """The recorded publication when `inputs` are what it was built from and it is still the published one."""
    if state is None or state.status != "published" or state.fingerprint != inputs.fingerprint:
        return None
    return state if published_run(warehouse) == state.run_id else None


def nothing_changed(settings: Settings) -> Recorded | None:
    """For the CLI, before it loads Dagster: the publication that is still current when nothing changed since it;
    None when something did, or the working database cannot be read (then the refresh runs and finds out)."""
    config = warehouse_config(settings)
    work = Path(str(config["work_path"]))
    if not work.is_file() or Path(f"{work}.wal").exists():
        return None
    try:
        with duckdb.connect(str(work), read_only=True) as con:
            state = recorded(con)
            erasing = bool(erasure.pending(con))
    except duckdb.Error:
        return None
    if state is None or erasing:
        return None
    return unchanged_since(state, current_inputs(config, state.files), settings.warehouse)


def dbt_state(vars_: Mapping[str, object], engine: str = "duckdb") -> str:
    """The dbt state of a build with these vars (as_of excluded: the incremental models that read it track it
    themselves) on this engine (the models a DuckDB build left are not a Spark build's, and the other way round)."""
    return _digest([("project", dbt_project_version().encode()),
                    ("vars", json.dumps({k: v for k, v in vars_.items() if k != "as_of"}, sort_keys=True).encode()),
                    ("engine", engine.encode()),
                    *([("spark", _versions(SPARK_LIBRARIES))] if engine == "spark" else [])])


def recorded_dbt_state(con: duckdb.DuckDBPyConnection) -> str | None:
    if not table_exists(con, *DBT_STATE):
        return None
    row = con.execute(f"select state from {qualified(*DBT_STATE)}").fetchone()
    return row[0] if row else None


def record_dbt_state(con: duckdb.DuckDBPyConnection, state: str, mode: str, run_id: str) -> None:
    """After a complete, successful `dbt build`: its state, and whether it was incremental or full."""
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(f"create or replace table {qualified(*DBT_STATE)} as select ?::varchar as state, ?::varchar as mode, "
                "?::varchar as run_id, ?::timestamp as built_at",
                [state, mode, run_id, datetime.now(UTC).replace(tzinfo=None)])
