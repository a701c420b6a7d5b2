"""The production set-up of docs/operations.md: the files in deploy/ are what Dagster, systemd and the refresh read.
And the Kubernetes deployment (deploy/helm/values.yaml, docs/scale_out.md): a values file for the official Dagster
Helm chart with the dagster-k8s run launcher, loaded and checked for the keys the chart reads and for agreement with
the project (its definitions module, its settings, its Dagster release)."""

from __future__ import annotations

import configparser
import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.config import pg_config

from dagster_project.settings import ENVIRONMENT_VARIABLES, PROJECT_ROOT, Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
# Where docs/operations.md installs things.
CHECKOUT = Path("/opt/crm-warehouse")
CONFIG_DIR = Path("/etc/crm-warehouse")


def environment_file(path: Path) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile= (and a shell's `set -a; . file`) read them."""
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = " ".join(shlex.split(value))
    return found


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text())
    return parser


def test_the_instance_configuration_passes_dagsters_own_schema(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    for key, value in environment_file(DEPLOY / "crm-warehouse.env").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "secret")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    # The PostgreSQL connection resolves from the services' environment, as dagster-postgres resolves it.
    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    database = resolved.value["postgres_db"]
    assert (database["hostname"], database["port"], database["db_name"], database["password"]) == \
        ("localhost", 5432, "dagster", "secret")
    assert config["concurrency"] == {"pools": {"default_limit": 1}, "runs": {"max_concurrent_runs": 1}}
    assert config["telemetry"] == {"enabled": False}
    home = Path(environment_file(DEPLOY / "crm-warehouse.env")["DAGSTER_HOME"])
    assert Path(config["local_artifact_storage"]["config"]["base_dir"]) == home
    assert Path(config["compute_logs"]["config"]["base_dir"]).parent == home

    # And the schema is really checked: a misspelt key is refused.
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text().replace("max_concurrent_runs",
                                                                                        "max_concurent_runs"))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_the_settings_file_holds_known_settings_that_load(tmp_path):
    values = environment_file(DEPLOY / "crm-warehouse.env")
    known = set(ENVIRONMENT_VARIABLES.values()) | {"CRM_DUCKDB_MEMORY_LIMIT"}
    assert {key for key in values if key.startswith("CRM_")} <= known
    assert {key for key in values if not key.startswith("CRM_")} == {
        "DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USER"}
    settings = Settings.load(environ=values)
    assert settings.warehouse == Path("/srv/crm/warehouse/crm.duckdb")
    assert settings.exports_dir == Path("/srv/crm/exports") and settings.schedule_cron == "0 6 * * *"
    # Secrets are kept apart, in a file only root reads.
    assert set(environment_file(DEPLOY / "secrets.env.example")) == {"CRM_PSEUDONYM_KEY", "DAGSTER_PG_PASSWORD"}


@pytest.mark.parametrize(("name", "program"), [("crm-dagster-daemon.service", "dagster-daemon"),
                                               ("crm-dagster-webserver.service", "dagster-webserver")])
def test_the_services_run_this_checkout_s_programs_with_its_workspace_and_settings(name, program):
    service = unit(name)["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0] == str(CHECKOUT / ".venv" / "bin" / program) and (BIN / program).exists()
    workspace = Path(command[command.index("-w") + 1])
    assert workspace.parent == CHECKOUT and (ROOT / workspace.name).is_file()
    assert service["WorkingDirectory"] == str(CHECKOUT) and service["User"] == "crm"
    files = [line.strip() for line in (DEPLOY / name).read_text().splitlines() if line.startswith("EnvironmentFile=")]
    assert files == [f"EnvironmentFile={CONFIG_DIR / name}" for name in ("crm-warehouse.env", "secrets.env")]
    assert service["Restart"] == "on-failure"
    assert "postgresql.service" in unit(name)["Unit"]["After"]
    assert unit(name)["Install"]["WantedBy"] == "multi-user.target"


# The Kubernetes deployment of the Spark engine.

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
