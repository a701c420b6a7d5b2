"""The Dagster definitions: graph wiring, schedule, sensor, checks; and the contract kept in step with its docs."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from dagster import AssetKey
from dagster_dbt import DbtCliResource

from dagster_project.defs.assets.dbt import (
    KEPT_PARSE_STATES, PARSE_STATES, dbt_resource, keep_partial_parse, parse_state_key, seed_partial_parse,
)
from dagster_project.contract import ENTITIES
from dagster_project.defs.definitions import build_definitions
from dagster_project.process_environment import PROCESS_DEFAULTS
from dagster_project.ingest import exports_fingerprint
from dagster_project.files import walk
from dagster_project.settings import DBT_GENERATED_FOLDERS, DBT_PROJECT_DIR, Settings

ROOT = Path(__file__).resolve().parent.parent


def definitions(tmp_path: Path, timezone: str = "Europe/Berlin"):
    return build_definitions(Settings(exports_dir=tmp_path, warehouse=tmp_path / "w.duckdb", as_of=None,
                                      schedule_timezone=timezone))


def test_dbt_sources_are_the_ingestion_assets_and_tests_are_checks(tmp_path):
    graph = definitions(tmp_path).resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    for entity in ENTITIES:
        assert AssetKey(["raw", entity.name]) in keys
    base_orders = graph.get(AssetKey(["staging", "base_crm__orders"]))
    assert AssetKey(["raw", "orders"]) in base_orders.parent_keys
    assert graph.get(AssetKey(["raw", "orders"])).group_name == "ingest"
    assert graph.get(AssetKey(["marts", "fct_orders"])).group_name == "marts"
    checks = {check.name for check in graph.asset_check_keys if check.asset_key == AssetKey(["marts", "fct_orders"])}
    assert {"unique_fct_orders_order_id", "not_null_fct_orders_customer_key"} <= checks


def test_daily_schedule_at_six_in_the_configured_timezone_and_a_drop_sensor(tmp_path):
    defs = definitions(tmp_path)
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "0 6 * * *" and schedule.execution_timezone == "Europe/Berlin"
    assert schedule.job_name == "full_refresh"
    assert defs.resolve_sensor_def("new_export_drop").job_name == "full_refresh"


def test_every_dependency_is_an_asset_the_refresh_builds(tmp_path):
    graph = definitions(tmp_path).resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        for parent in graph.get(key).parent_keys:  # a misspelt mart would be an external asset nobody builds
            assert graph.get(parent).is_materializable, f"{key.to_user_string()} depends on {parent.to_user_string()}"


def test_every_writing_asset_shares_one_writer_pool_and_runs_in_process(tmp_path):
    job = definitions(tmp_path).resolve_job_def("full_refresh")
    pools = {node.definition.pool for node in job.graph.node_dict.values()}
    assert pools == {"duckdb_writer"}
    assert job.executor_def.name == "in_process"


def test_sensor_fingerprint_changes_when_a_drop_arrives(tmp_path):
    before = exports_fingerprint(tmp_path)
    (tmp_path / "2026-11-01").mkdir()
    (tmp_path / "2026-11-01" / "orders.csv").write_text("customer_id,order_date,amount\n")
    assert exports_fingerprint(tmp_path) != before


def test_dbt_sources_list_exactly_the_contract_columns():
    sources = yaml.safe_load((ROOT / "dbt/models/staging/crm/_crm__sources.yml").read_text())["sources"][0]
    tables = {t["name"]: [c["name"] for c in t.get("columns", [])] for t in sources["tables"]}
    for entity in ENTITIES:
        assert [c for c in tables[entity.name] if not c.startswith("_")] == list(entity.column_names), entity.name


def test_export_contract_doc_names_every_column_and_synonym():
    doc = (ROOT / "docs/export_contract.md").read_text()
    for entity in ENTITIES:
        assert f"### `{entity.name}`" in doc
        for column in entity.columns:
            assert f"`{column.name}`" in doc
            for synonym in column.synonyms:
                assert f"`{synonym}`" in doc, (entity.name, synonym)


def test_profiles_and_resource_read_the_same_warehouse_path(tmp_path):
    resources = definitions(tmp_path).resources
    assert resources["warehouse"].path == str(tmp_path / "w.duckdb")
    assert os.environ["CRM_WORK_DATABASE"] == resources["warehouse"].work_path == str(tmp_path / "w.work.duckdb")
    assert "env_var('CRM_WORK_DATABASE'" in (ROOT / "dbt/profiles.yml").read_text()


def test_a_second_writer_is_refused_while_a_refresh_holds_the_warehouse(tmp_path):
    import fcntl

    import pytest

    from dagster_project.defs.resources import Warehouse, WarehouseBusy

    warehouse = tmp_path / "w.duckdb"
    with open(f"{warehouse}.lock", "a+") as held:
        held.write("pid 12345")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(WarehouseBusy, match="already writing"):
            Warehouse(path=str(warehouse), work_path=str(tmp_path / "w.work.duckdb"),
                      exports_dir=str(tmp_path)).setup_for_execution(None)
    resource = Warehouse(path=str(warehouse), work_path=str(tmp_path / "w.work.duckdb"), exports_dir=str(tmp_path))
    resource.setup_for_execution(None)  # free again once the holder is gone
    resource.teardown_after_execution(None)


def test_dbt_resource_reports_the_version_dbt_itself_reports():
    # The resource skips `dbt --version`; what it reports instead must be what that command says.
    resource = dbt_resource()
    assert resource._cli_version == DbtCliResource(project_dir=str(DBT_PROJECT_DIR),
                                                   dbt_executable=resource.dbt_executable)._cli_version


def test_a_builds_parse_state_becomes_the_projects(tmp_path):
    invocation, project = tmp_path / "invocation", tmp_path / "project"
    invocation.mkdir(), project.mkdir()
    keep_partial_parse(invocation, project)  # a build that wrote no parse state leaves the project's alone
    assert not (project / "partial_parse.msgpack").exists()
    (invocation / "partial_parse.msgpack").write_bytes(b"state")
    keep_partial_parse(invocation, project)
    assert (project / "partial_parse.msgpack").read_bytes() == b"state"
    assert [p.name for p in project.iterdir()] == ["partial_parse.msgpack"]


def test_a_build_starts_from_the_parse_state_its_own_warehouse_and_vars_left(tmp_path):
    # Two warehouses refreshed in turn: each build of one finds the state the last build of the same one left, not
    # the other's (which dbt would discard: the working file's name is part of the profile).
    from dagster_project.defs.resources import Warehouse

    project = tmp_path / "project"
    project.mkdir()
    first, second = (Warehouse(path=str(tmp_path / f"{n}.duckdb"), work_path=str(tmp_path / f"{n}.work.duckdb"),
                               exports_dir=str(tmp_path)) for n in ("a", "b"))
    cny, usd = {"reporting_currency": "CNY"}, {"reporting_currency": "USD"}
    key_a, key_b = parse_state_key(first, cny), parse_state_key(second, cny)
    assert len({key_a, key_b, parse_state_key(first, usd)}) == 3
    for key, state in ((key_a, b"state of a"), (key_b, b"state of b")):
        built = tmp_path / f"build-{key}"
        built.mkdir()
        (built / "partial_parse.msgpack").write_bytes(state)
        keep_partial_parse(built, project, key)
    assert (project / "partial_parse.msgpack").read_bytes() == b"state of b"  # dagster-dbt's default seed
    seed_partial_parse(tmp_path / "next-a", project, key_a)
    assert (tmp_path / "next-a" / "partial_parse.msgpack").read_bytes() == b"state of a"
    seed_partial_parse(tmp_path / "new", project, parse_state_key(first, usd))
    assert not (tmp_path / "new").exists()  # nothing kept: dagster-dbt seeds it with the project's

    # Only the most recent states are kept.
    for n in range(KEPT_PARSE_STATES + 3):
        built = tmp_path / f"build-{n}"
        built.mkdir()
        (built / "partial_parse.msgpack").write_bytes(b"state")
        keep_partial_parse(built, project, f"key{n}")
        os.utime(project / PARSE_STATES / f"key{n}.msgpack", (n + 10, n + 10))
    kept = sorted(p.name for p in (project / PARSE_STATES).iterdir())
    assert len(kept) == KEPT_PARSE_STATES and f"key{KEPT_PARSE_STATES + 2}.msgpack" in kept and "key0.msgpack" not in kept


def test_dbt_started_in_the_warehouse_folder_reuses_the_parse_state_of_another_folder(tmp_path):
    """`crm-dbt` (what the refresh starts) runs dbt in the working database's folder with the file name alone in the
    profile: a warehouse in a new folder starts from the parse state another folder's build left, as long as the
    working files share a name (the profile dbt compares is then the same). Plain dbt would parse in full."""
    from dagster_project.defs.assets.dbt import DBT_EXECUTABLE, IN_WAREHOUSE_FOLDER_DBT

    assert DBT_EXECUTABLE == IN_WAREHOUSE_FOLDER_DBT  # make setup installs it with the project
    target = tmp_path / "target"
    outputs = []
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        work = tmp_path / folder / "crm.work.duckdb"
        parsed = subprocess.run(
            [DBT_EXECUTABLE, "--log-format", "json", "--log-level", "debug", "parse", "--target-path", str(target),
             "--log-path", str(tmp_path / "logs")],
            env={**os.environ, "CRM_WORK_DATABASE": str(work), "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
                 "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)},
            cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert parsed.returncode == 0, parsed.stdout[-3000:]
        outputs.append(parsed.stdout)
    assert '"name": "UnableToPartialParse"' in outputs[0]  # nothing to start from yet
    assert '"name": "UnableToPartialParse"' not in outputs[1]
    assert '"name": "PartialParsingSkipParsing"' in outputs[1]
    # The refresh keeps parse states under the same key for both (seed_partial_parse).
    from dagster_project.defs.resources import Warehouse

    first, second = (Warehouse(path=str(tmp_path / n / "crm.duckdb"), work_path=str(tmp_path / n / "crm.work.duckdb"),
                               exports_dir=str(tmp_path)) for n in ("first", "second"))
    assert parse_state_key(first, {}) == parse_state_key(second, {})


def test_crm_dbt_enters_the_working_database_folder_only_for_duckdb_and_absolute_dbt_folders(tmp_path, monkeypatch):
    from dagster_project.dbt_process import enter_warehouse_folder

    monkeypatch.chdir(tmp_path)
    work = str(tmp_path / "w" / "crm.work.duckdb")
    folders = {"DBT_PROJECT_DIR": str(DBT_PROJECT_DIR), "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}
    stays = [
        (["build"], {}),  # no folder yet
        (["build", "--target", "spark"], folders), (["build", "-t", "spark"], folders),
        (["build"], {**folders, "DBT_TARGET": "spark"}), (["build"], {**folders, "CRM_DBT_TARGET": "spark"}),
        (["build", "--target=spark_thrift"], folders),
        (["build"], {"DBT_PROJECT_DIR": str(DBT_PROJECT_DIR)}),  # dbt would look for profiles.yml where it runs
        (["build", "--project-dir", "."], folders), (["build", "--log-path=logs"], folders),
        (["build"], {**folders, "DBT_TARGET_PATH": "target"}),
    ]
    for n, (argv, environ) in enumerate(stays):
        if n == 1:
            (tmp_path / "w").mkdir()
        environ = {"CRM_WORK_DATABASE": work, **environ}
        enter_warehouse_folder(argv, environ)
        assert Path.cwd() == tmp_path and environ["CRM_WORK_DATABASE"] == work, argv
    environ = {"CRM_WORK_DATABASE": work, **folders, "DBT_LOG_PATH": str(tmp_path / "logs")}
    enter_warehouse_folder(["build", "--target", "duckdb", "--target-path", str(tmp_path / "target")], environ)
    assert Path.cwd() == tmp_path / "w" and environ["CRM_WORK_DATABASE"] == "crm.work.duckdb"


def test_walking_the_dbt_project_survives_another_process_removing_its_target_folders(tmp_path):
    # A refresh fingerprints the dbt project while another process's dbt invocation deletes its own target folder;
    # CI once failed there with FileNotFoundError from Path.rglob.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.sql").write_text("select 1")
    vanishing = tmp_path / "models" / "b"
    (vanishing / "deeper").mkdir(parents=True)
    (vanishing / "deeper" / "c.sql").write_text("select 2")
    (tmp_path / "target" / "compiled").mkdir(parents=True)
    (tmp_path / "target" / "compiled" / "a.sql").write_text("select 1")
    seen = []
    for path in walk(tmp_path, skip=DBT_GENERATED_FOLDERS):
        seen.append(path.relative_to(tmp_path).as_posix())
        if path == vanishing:
            shutil.rmtree(vanishing)  # gone after it was listed, before it is entered
    assert "models/a.sql" in seen and "models/b" in seen
    assert not [p for p in seen if p.startswith("target") or p.startswith("models/b/")]


# What the analytics and the report load when they run, by import name (dagster_project.defs.background_imports),
# and the quality library the expectation suites load.
MODEL_LIBRARIES = ("lightgbm", "statsforecast", "prophet", "cmdstanpy", "sklearn", "scipy", "statsmodels", "xarray",
                   "matplotlib", "plotly")
QUALITY_LIBRARY = "great_expectations"


def test_importing_the_definitions_loads_no_model_or_quality_library_and_sets_no_environment():
    # LightGBM must load after the entry point set OMP_WAIT_POLICY (dagster_project.process_environment); the others
    # take seconds to import, which `dagster dev`, the daemon and every CLI process would pay for nothing.
    code = ("import os, sys; ours = lambda: {k: v for k, v in os.environ.items() if k.startswith(('CRM_', 'OMP_')) "
            "or k in PROCESS_DEFAULTS}; from dagster_project.process_environment import PROCESS_DEFAULTS; "
            "before = ours(); import dagster_project.defs.definitions; "
            f"loaded = [m for m in {(*MODEL_LIBRARIES, QUALITY_LIBRARY)!r} if m in sys.modules]; "
            "assert not loaded, f'loaded at import: {loaded}'; assert ours() == before, ours()")
    environment = {k: v for k, v in os.environ.items() if k not in (*PROCESS_DEFAULTS, "CRM_WORK_DATABASE")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


def test_what_the_analytics_import_when_they_run_is_loaded_while_dbt_builds():
    """Every analytics or report module an asset imports in its body is among those loaded in the background while
    dbt builds, they bring the model and chart libraries with them (LightGBM excepted: it loads where it is used),
    and only a run that materialises analytics loads them."""
    from dagster_project.defs import background_imports

    assets = ROOT / "dagster_project" / "defs" / "assets"
    imported_in_bodies = set()
    for path in [*(assets / "analytics").glob("*.py"), assets / "reporting.py"]:
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(function, ast.FunctionDef):
                imported_in_bodies |= {f"{node.module}.{alias.name}" if node.module == "dagster_project.analytics"
                                       else node.module for node in ast.walk(function)
                                       if isinstance(node, ast.ImportFrom) and node.module.startswith("dagster_project.")
                                       for alias in node.names}
    # the walk finds them
    assert {"dagster_project.analytics.churn_cadence", "dagster_project.report.render"} <= imported_in_bodies
    analytics = set(background_imports.ANALYTICS_MODULES)
    assert imported_in_bodies <= analytics, imported_in_bodies - analytics

    code = ("import sys, dagster_project.defs.definitions; from dagster_project.defs import background_imports; "
            "background_imports.load_in_background().join(); "
            f"missing = [m for m in {[m for m in MODEL_LIBRARIES if m != 'lightgbm']!r} if m not in sys.modules]; "
            "assert not missing, missing; assert 'lightgbm' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]

    assert background_imports.analytics_selected(None) and background_imports.analytics_selected(frozenset())
    assert background_imports.analytics_selected(frozenset({AssetKey(["marts", "fct_orders"]),
                                                            AssetKey(["analytics", "churn_scores"])}))
    assert not background_imports.analytics_selected(frozenset({AssetKey(["raw", "orders"]),
                                                                AssetKey(["marts", "fct_orders"])}))


def test_only_the_dagster_side_imports_dagster_and_every_module_says_what_it_is_for():
    """docs/architecture.md: domain packages know nothing of Dagster; the Dagster side is dagster_project/defs/."""
    package = ROOT / "dagster_project"
    importers, undocumented = [], []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not ast.get_docstring(tree) and path.stat().st_size:
            undocumented.append(str(path.relative_to(ROOT)))
        if path.is_relative_to(package / "defs"):
            continue
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            importers += [f"{path.relative_to(ROOT)}: {name}" for name in names
                          if name == "dagster" or name.startswith(("dagster.", "dagster_"))
                          and not name.startswith("dagster_project")]
    # The CLI is the entry point: it starts the refresh through defs/ and opens the Dagster instance.
    assert [i for i in importers if not i.startswith("dagster_project/cli.py")] == []
    assert undocumented == []


def test_a_dagster_home_an_earlier_version_made_gets_the_event_log_that_keeps_its_engines_and_keeps_its_runs(
        tmp_path, monkeypatch):
    """The CLI writes its instance settings into a new DAGSTER_HOME. A home with the settings an earlier version wrote
    gets the event log that keeps its engines open, over the same files, so its runs stay; a home whose settings the
    user edited is left as it is."""
    from dagster import DagsterEventType, DagsterInstance, job, op

    from dagster_project.defs.event_log import SqliteEventLogKeepingEngines
    from dagster_project.defs.instance import _EARLIER_INSTANCE_YAML, ensure_dagster_home, instance_yaml

    @op
    def nothing() -> None:
        pass

    @job
    def tiny():
        nothing()

    earlier, edited = tmp_path / "earlier", tmp_path / "edited"
    for home in (earlier, edited):
        home.mkdir()
    (earlier / "dagster.yaml").write_text(_EARLIER_INSTANCE_YAML)
    (edited / "dagster.yaml").write_text(_EARLIER_INSTANCE_YAML + "# the user's own line\n")
    with DagsterInstance.from_config(str(earlier)) as instance:
        first = tiny.execute_in_process(instance=instance).run_id

    monkeypatch.setenv("DAGSTER_HOME", str(earlier))
    assert ensure_dagster_home() == earlier.resolve()
    assert (earlier / "dagster.yaml").read_text() == instance_yaml(earlier)
    with DagsterInstance.from_config(str(earlier)) as instance:
        assert isinstance(instance.event_log_storage, SqliteEventLogKeepingEngines)
        second = tiny.execute_in_process(instance=instance).run_id
        assert {run.run_id for run in instance.get_runs()} == {first, second}
        for run_id in (first, second):
            assert instance.all_logs(run_id, of_type=DagsterEventType.RUN_SUCCESS), run_id

    monkeypatch.setenv("DAGSTER_HOME", str(edited))
    ensure_dagster_home()
    assert (edited / "dagster.yaml").read_text() == _EARLIER_INSTANCE_YAML + "# the user's own line\n"
