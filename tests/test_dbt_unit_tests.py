"""dbt's unit tests (the `unit_tests:` of the models' yml: fixed inputs, the expected rows of one model).

They check the models' code, so they run here, in CI, and not in every refresh (dbt's advice for production builds);
the refresh runs the data tests. A unit test needs its model's parents to exist: it runs against a copy of the
session's refreshed working database.
"""

from __future__ import annotations

import json

import yaml

from conftest import copy_of, run_dbt
from dagster_project.settings import DBT_PROJECT_DIR


def declared_unit_tests() -> set[str]:
    names = set()
    for path in (DBT_PROJECT_DIR / "models").rglob("*.yml"):
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", []):
            names.add(test["name"])
    return names


def test_every_dbt_unit_test_passes(refreshed, tmp_path):
    work = copy_of(refreshed, tmp_path).work
    target = tmp_path / "target"
    run_dbt(work, target, "test", "--select", "test_type:unit", timeout=600)
    results = json.loads((target / "run_results.json").read_text())["results"]
    ran = {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert set(ran) == declared_unit_tests() and len(ran) >= 6
    assert set(ran.values()) == {"pass"}

