"""The dbt project as Dagster assets: staging views, intermediate models and marts, with dbt tests as asset checks."""

import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from dagster_project.assets.ingest import WRITER_POOL
from dagster_project.resources import Warehouse
from dagster_project.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# The dbt installed beside this interpreter: `crm-warehouse` must work from a virtualenv that is not activated.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt")) if Path(sys.executable).with_name("dbt").exists() \
    else (shutil.which("dbt") or "dbt")


def dbt_resource(project: DbtProject = dbt_project) -> DbtCliResource:
    return DbtCliResource(project_dir=project, profiles_dir=str(project.profiles_dir), dbt_executable=DBT_EXECUTABLE)


def ensure_manifest(project: DbtProject = dbt_project) -> Path:
    """Run `dbt parse` when manifest.json is missing or older than any file of the dbt project.

    `@dbt_assets` reads the manifest at import, so a fresh checkout (or an edited model) must be parsed first.
    """
    manifest = project.manifest_path
    sources = [p for p in Path(project.project_dir).rglob("*") if p.suffix in {".sql", ".yml", ".csv"}
               and "target" not in p.parts and "logs" not in p.parts]
    newest_source = max((p.stat().st_mtime for p in sources), default=0.0)
    if not manifest.exists() or manifest.stat().st_mtime < newest_source:
        dbt_resource(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return manifest


class CrmDbtTranslator(DagsterDbtTranslator):
    """dbt sources are our ingestion assets (raw/<entity>); models are grouped by their folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(["raw", dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        for folder in ("staging", "intermediate", "marts"):
            if folder in fqn:
                return folder
        return "reference" if dbt_resource_props["resource_type"] == "seed" else None


translator = CrmDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

ensure_manifest()


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=translator, pool=WRITER_POOL)
def crm_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse):
    """`dbt build`: seeds, models and their data and unit tests, with the as-of date when one is set."""
    dbt_vars = {"as_of": warehouse.as_of} if warehouse.as_of else {}
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()
