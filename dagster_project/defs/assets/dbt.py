"""The dbt project as Dagster assets: staging views, intermediate models and marts, with dbt tests as asset checks."""

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition
from dagster_dbt import (
    DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliInvocation, DbtCliResource, DbtProject, dbt_assets,
)
from packaging import version

from dagster_project import refresh_state
from dagster_project.publish import publication
from dagster_project.analytics.progress import Progress
from dagster_project.privacy import erasure
from dagster_project.privacy.modes import private_dir
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.files import walk
from dagster_project.defs.resources import SavedModels, Warehouse
from dagster_project.settings import (
    DBT_GENERATED_FOLDERS, DBT_PROJECT_DIR, DEFAULT_REPORTING_CURRENCY, SettingsError, is_currency_code, parse_as_of,
    parse_currency,
)
from dagster_project.defs import background_imports
from dagster_project.defs.assets.dbt_row_counts import LoggedRowCounts, count_after_build, with_row_counts
from dagster_project.dbt_process import profile_path

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# The dbt installed beside this interpreter (`crm-warehouse` must work from a virtualenv that is not activated), as
# `crm-dbt`, which runs it in the working database's folder (dagster_project/dbt_process.py); plain dbt if the project's
# own scripts are not installed.
IN_WAREHOUSE_FOLDER_DBT = str(Path(sys.executable).with_name("crm-dbt"))
SIBLING_DBT = str(Path(sys.executable).with_name("dbt"))
DBT_EXECUTABLE = next((path for path in (IN_WAREHOUSE_FOLDER_DBT, SIBLING_DBT) if Path(path).exists()),
                      shutil.which("dbt") or "dbt")


class CrmDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without the two in-process start-up steps this project does not use (5.9 s a build).

    - `dbt --version` in a subprocess (3.7 s: a whole dbt import) only to learn the version: the dbt we run is the
      one installed beside this interpreter, so its package metadata says it.
    - A dbt adapter built in this process (2.2 s), which dagster-dbt uses only for `fetch_row_counts()` and
      `fetch_column_metadata()`: `with_row_counts` counts rows itself.
    Both are private methods of dagster-dbt, pinned in pyproject.toml; test_definitions builds through this class.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if self.dbt_executable not in (IN_WAREHOUSE_FOLDER_DBT, SIBLING_DBT):
            return super()._cli_version
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def dbt_resource(project: DbtProject = dbt_project) -> DbtCliResource:
    return CrmDbtCliResource(project_dir=project, profiles_dir=str(project.profiles_dir),
                             dbt_executable=DBT_EXECUTABLE)


# `dbt build`'s --vars when nothing is set (build_vars of a Warehouse with its defaults).
DEFAULT_VARS = {"reporting_currency": DEFAULT_REPORTING_CURRENCY, "default_currency": DEFAULT_REPORTING_CURRENCY}


PARTIAL_PARSE = "partial_parse.msgpack"
# Parse states kept per working database and vars, under the project's target folder; the oldest go beyond this many.
PARSE_STATES, KEPT_PARSE_STATES = "parse_states", 16


def parse_state_key(warehouse: Warehouse, dbt_vars: Mapping[str, str]) -> str:
    """What dbt compares, besides the project's files, before it reuses a parse state: the profile (the working
    database's path as dbt gets it, the memory limit) and the vars. A key that misses costs only a full parse: dbt
    checks itself."""
    path = os.path.abspath(warehouse.work_path)
    if DBT_EXECUTABLE == IN_WAREHOUSE_FOLDER_DBT:
        path = profile_path(path)
    text = json.dumps([path, warehouse.memory_limit, dict(dbt_vars)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def seed_partial_parse(invocation_target: Path, project_target: Path, key: str) -> None:
    """Start a build from the parse state its working database and vars last left, when there is one.

    dagster-dbt seeds an invocation with the project's `partial_parse.msgpack` (the last build's, whichever warehouse
    it was for) only when the invocation's folder has none: processes refreshing different warehouses (test workers,
    an as-of replay beside the daily refresh) would otherwise each discard the other's and parse in full."""
    kept = project_target / PARSE_STATES / f"{key}.msgpack"
    if kept.exists():
        invocation_target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, invocation_target / PARTIAL_PARSE)


def keep_partial_parse(invocation_target: Path, project_target: Path, key: str | None = None) -> None:
    """Make this build's parse state the one the next invocation starts from: the project's, and, with a `key`,
    the one kept for its working database and vars (seed_partial_parse).

    dbt discards a parse state when the profile differs (the working file's name is part of it, and its whole path
    when dbt is not started in its folder): without this, a warehouse other than the one set-up parsed for would be
    re-parsed in full on every refresh. The replaces are atomic: parallel runs may race.
    """
    built = invocation_target / PARTIAL_PARSE
    if not built.exists():
        return
    _replace_with_copy(built, project_target / PARTIAL_PARSE)
    if key is not None:
        states = private_dir(project_target / PARSE_STATES)
        _replace_with_copy(built, states / f"{key}.msgpack")
        kept = sorted(states.glob("*.msgpack"), key=_mtime_or_zero, reverse=True)
        for old in kept[KEPT_PARSE_STATES:]:
            old.unlink(missing_ok=True)


def _replace_with_copy(source: Path, destination: Path) -> None:
    staged = destination.with_name(f".{destination.stem}.{uuid.uuid4().hex}.tmp")  # unique per thread too
    shutil.copyfile(source, staged)
    os.replace(staged, destination)


def _mtime_or_zero(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # another process pruned it meanwhile
        return 0.0


def ensure_manifest(project: DbtProject = dbt_project) -> Path:
    """Run `dbt parse` when manifest.json is missing or older than any file of the dbt project.

    `@dbt_assets` reads the manifest when the assets are built (dbt_models), so a fresh checkout (or an edited
    model) must be parsed first.
    Processes importing at the same time (`dagster dev` beside a refresh, test workers) may each parse: each parses
    into a folder of its own and moves the manifest in with an atomic replace, so no reader sees a half-written one.
    """
    manifest = project.manifest_path
    sources = [p for p in walk(Path(project.project_dir), skip=DBT_GENERATED_FOLDERS)
               if p.suffix in {".sql", ".py", ".yml", ".csv"}]
    newest_source = max((p.stat().st_mtime for p in sources), default=0.0)
    if not manifest.exists() or manifest.stat().st_mtime < newest_source:
        project_target = manifest.parent
        private_dir(project_target)  # compiled SQL can quote values
        own_target = Path(tempfile.mkdtemp(prefix=".parse-", dir=project_target))
        try:
            # With the vars of a refresh with default settings: dbt keeps a parse state only for the same vars.
            dbt_resource(project).cli(["parse", "--quiet", "--vars", json.dumps(DEFAULT_VARS, sort_keys=True)],
                                      target_path=own_target).wait()
            keep_partial_parse(own_target, project_target)
            os.replace(own_target / "manifest.json", manifest)
        finally:
            shutil.rmtree(own_target, ignore_errors=True)
    return manifest


class CrmDbtTranslator(DagsterDbtTranslator):
    """dbt sources are our ingestion assets (raw/<entity>); models are grouped by their folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(["raw", dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        for folder in ("staging", "intermediate", "marts", "audit", "restricted"):
            if folder in fqn:
                return folder
        return "reference" if dbt_resource_props["resource_type"] == "seed" else None


translator = CrmDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@cache
def dbt_models() -> AssetsDefinition:
    """The dbt project's seeds, models and tests as Dagster assets, built once, when the definitions are: they are
    read from the parsed manifest, which a fresh checkout does not have yet."""
    manifest = ensure_manifest()

    @dbt_assets(manifest=manifest, dagster_dbt_translator=translator, pool=WRITER_POOL)
    def crm_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse,
                       models: SavedModels):
        """`dbt build`: seeds, models and their data tests, with the as-of date when one is set and the reporting and
        default currencies. The unit tests check the models' code, not the data: they run in CI (`make test`)."""
        yield from dbt_build(context, dbt, warehouse, models)

    return crm_dbt_models


def dbt_build(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse,
              models: SavedModels) -> Iterator:
    """The events of `dbt build` with this warehouse's vars, with progress lines and row counts."""
    dbt_vars = build_vars(warehouse)
    if not os.environ.get("CRM_PSEUDONYM_KEY"):
        # int_customer_keys_pseudonymised then falls back to a secret it generates beside the warehouse.
        context.log.warning("CRM_PSEUDONYM_KEY is not set: customer pseudonyms are keyed with the secret generated "
                            "in .pseudonym_key beside the warehouse; set it from a secret store in production")
    state = refresh_state.dbt_state(dbt_vars, warehouse.engine)
    full_refresh = _full_refresh_reason(context, warehouse, state)
    if full_refresh:
        context.log.info(f"dbt build --full-refresh: {full_refresh}")
    elif warehouse.on_spark:
        # (dbt/macros/incremental.sql: on Spark the base models are plain tables, rebuilt in full at every build.)
        context.log.info("dbt build on Spark: the base models are rebuilt in full (Parquet tables take no deletes)")
    else:
        context.log.info("dbt build, incremental: the large base models parse only the loads they do not have yet; "
                         "the combined orders recompute only the orders the new loads carry, and the deduplication "
                         "models and the facts on them only the customers a change reaches")
    spark_target, spark_environment, spark_build = [], contextlib.nullcontext(), contextlib.nullcontext()
    if warehouse.on_spark:
        from dagster_project.spark.engine import dbt_process_environment, keys_for_build, prepare_dbt

        spark_target = prepare_dbt(warehouse)
        spark_environment, spark_build = dbt_process_environment(warehouse), keys_for_build(warehouse)
    # dbt's advice: unit tests in development and CI, not in production builds (their fixtures change only with the
    # code, and tests/test_dbt_unit_tests.py runs them).
    args = ["build", "--vars", json.dumps(dbt_vars, sort_keys=True), "--exclude-resource-type", "unit_test",
            *(["--full-refresh"] if full_refresh else []), *spark_target]
    project_target = Path(dbt_project.project_dir, dbt_project.target_path)
    parse_key = parse_state_key(warehouse, dbt_vars)
    target = project_target / f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
    if not warehouse.on_spark:
        # (A Spark build parses for its own target: the parse states kept are the DuckDB profile's.)
        seed_partial_parse(target, project_target, parse_key)
    # dbt.cli starts dbt and returns: the build runs until its last event is read (spark_build lasts as long).
    with spark_build:
        with spark_environment:
            invocation = dbt.cli(args, context=context, target_path=target)
        if background_imports.analytics_selected(context.run.asset_selection):
            # (The forecast's worker only for a forecast that will surely fit every series: a refit on the cadence
            # starts it when it begins, and a day that reuses the saved models needs none.)
            background_imports.load_in_background(context.run.asset_selection,  # while dbt builds
                                                  models.forecast_fits_every_series())
        # A full build counts its nodes in the manifest: the total in dbt's own events counts what it excluded too.
        total = 0 if context.is_subset else build_node_count(invocation.manifest)
        logged = LoggedRowCounts()
        events = with_progress(invocation, Progress(context.log.info, "models and tests done", total), logged)
        yield from with_row_counts(events, invocation.manifest, logged, count_after_build(warehouse))
    if warehouse.on_spark:
        from dagster_project.spark.engine import install_customer_measures, mirror_marts

        context.log.info(f"marts read from Spark into the working database: {mirror_marts(warehouse)} rows")
        # The customer-measure table macros the Python analytics call (dbt/macros/customer_measures.sql): on DuckDB a
        # post-hook of customer_360 creates them; on Spark they are created here, over the mirrored marts.
        install_customer_measures(warehouse, dbt_vars)
    else:
        keep_partial_parse(invocation.target_path, project_target, parse_key)
    # dagster-dbt gives every invocation its own target folder (manifest, compiled SQL, dbt.log: megabytes) and keeps
    # it; a daily refresh would pile them up. A failed build never gets here, so the folder its error message points
    # to stays.
    shutil.rmtree(invocation.target_path, ignore_errors=True)
    record_build_settings(warehouse)
    # Only a build of every model is the state all of them are in.
    if not context.is_subset:
        with warehouse.connect() as con:
            refresh_state.record_dbt_state(con, state, "full" if full_refresh else "incremental", context.run.run_id)


def _full_refresh_reason(context: AssetExecutionContext, warehouse: Warehouse, state: str) -> str | None:
    """Why this build must rebuild the incremental models in full, or None: it may update them."""
    if refresh_state.full_refresh_asked(context.run.tags):
        return "a full rebuild was asked for"
    with warehouse.connect() as con:
        built = refresh_state.recorded_dbt_state(con)
        erased = erasure.awaiting_publication(con)
    if erased:
        # The incremental models only add what new loads bring; an erased person's rows left raw, not a load.
        return "an erasure removed raw rows"
    if built is None:
        return "no complete build recorded in this working database"
    if built != state:
        return "the dbt project, its vars or the dbt / DuckDB version changed since the last build"
    return None


def build_vars(warehouse: Warehouse) -> dict[str, str]:
    """The `--vars` of `dbt build`. dbt writes them into SQL, and resource config is user input: only a parsed date
    and currency codes of the rate table may pass."""
    as_of = parse_as_of(warehouse.as_of)
    dbt_vars = {"reporting_currency": _currency(warehouse.reporting_currency, "reporting_currency"),
                "default_currency": _currency(warehouse.default_currency, "default_currency")}
    return dbt_vars | ({"as_of": as_of.isoformat()} if as_of else {})


def _currency(code: str, field: str) -> str:
    if not is_currency_code(code):
        raise SettingsError(f"warehouse resource {field} {code!r} is not a 3-letter upper-case currency code")
    return parse_currency(code, f"warehouse resource {field}")


def record_build_settings(warehouse: Warehouse) -> None:
    """The currencies the marts were just built with, for the report asset and the publish step."""
    with warehouse.connect() as con:
        publication.record_build_settings(con, warehouse.reporting_currency, warehouse.default_currency,
                                      warehouse.currency_label)


# dbt's events for a node it has finished with (built, tested, failed or skipped); each carries dbt's "index of total".
DBT_NODE_DONE = frozenset({"LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult", "LogFunctionResult",
                           "LogNodeNoOpResult", "SkippingDetails"})


def with_progress(invocation: DbtCliInvocation, progress: Progress, logged: LoggedRowCounts) -> Iterator:
    """`invocation.stream()`'s Dagster events, counting dbt's finished nodes into `progress` on the way
    ("12/48 models and tests done" in the run log, every few seconds): a `dbt build` is otherwise silent until it ends.

    Each raw dbt event is converted with `to_default_asset_events`, as `stream()` does. Without a total from the start
    (a subset of the models), the total dbt's events carry is used."""
    for event in invocation.stream_raw_events():
        logged.note(event.raw_event)
        if event.raw_event["info"]["name"] in DBT_NODE_DONE:
            data = event.raw_event.get("data", {})
            progress.advance(total=data.get("total") or data.get("num_models"))
        yield from event.to_default_asset_events(
            manifest=invocation.manifest, dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=invocation.context, target_path=invocation.target_path, project=invocation.project,
        )
    progress.finish()


# What the refresh's `dbt build` runs: models that are not ephemeral, seeds, snapshots and data tests.
BUILT_RESOURCE_TYPES = frozenset({"model", "seed", "snapshot", "test"})


def build_node_count(manifest: Mapping[str, Any]) -> int:
    """How many nodes a full `dbt build` of the manifest runs (the "of N" of its progress)."""
    nodes = [node for node in manifest["nodes"].values() if node["resource_type"] in BUILT_RESOURCE_TYPES
             and node.get("config", {}).get("materialized") != "ephemeral"]
    return len(nodes)
