"""The Kubernetes deployment (deploy/helm/values.yaml, docs/scale_out.md): a values file for the official Dagster
Helm chart with the dagster-k8s run launcher, loaded and checked for the keys the chart reads and for agreement with
the project (its definitions module, its settings, its Dagster release)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

from dagster_project.settings import ENVIRONMENT_VARIABLES, PROJECT_ROOT

VALUES = PROJECT_ROOT / "deploy" / "helm" / "values.yaml"


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def test_the_values_file_configures_the_k8s_run_launcher_and_the_code_location():
    chart = values()
    assert {"dagsterWebserver", "dagster-user-deployments", "runLauncher", "dagsterDaemon", "postgresql"} <= set(chart)
    launcher = chart["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s = launcher["config"]["k8sRunLauncher"]
    assert all(set(item) == {"name"} for key in ("envConfigMaps", "envSecrets") for item in k8s[key])
    mounts = {mount["name"] for mount in k8s["volumeMounts"]}
    assert mounts == {volume["name"] for volume in k8s["volumes"]}
    assert chart["dagsterDaemon"]["enabled"] is True
    assert chart["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] == 1

    user = chart["dagster-user-deployments"]
    assert user["enabled"] is True and len(user["deployments"]) == 1
    (deployment,) = user["deployments"]
    assert {"name", "image", "dagsterApiGrpcArgs", "port"} <= set(deployment)
    assert {"repository", "tag", "pullPolicy"} <= set(deployment["image"])
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    assert importlib.util.find_spec(module) is not None, module
    assert module == "dagster_project.defs.definitions"


def test_every_variable_the_deployment_sets_is_a_setting_the_refresh_reads():
    (deployment,) = values()["dagster-user-deployments"]["deployments"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    known = set(ENVIRONMENT_VARIABLES.values()) | {"CRM_SPARK_DBT_TARGET"}
    assert set(env) <= known, set(env) - known
    assert env["CRM_ENGINE"] == "spark"
    assert env["CRM_SPARK_DBT_TARGET"] in yaml.safe_load((PROJECT_ROOT / "dbt" / "profiles.yml").read_text())[
        "crm"]["outputs"]


def test_the_chart_release_named_is_the_pinned_dagster():
    pinned = re.search(r'"dagster==([0-9.]+)"', (PROJECT_ROOT / "pyproject.toml").read_text()).group(1)
    assert f"--version {pinned}" in VALUES.read_text()
    assert Path(PROJECT_ROOT / "docs" / "scale_out.md").exists()
