"""Great Expectations suites inside the refresh: every suite passes on the sample, results are stored and reported,
a row-level raw failure warns, a structural raw failure stops before dbt, a failing mart check blocks publishing."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from conftest import CORE_GROUPS
from dagster_project import ingest
from dagster_project.assets.checks import CHECK_NAME
from dagster_project.contract import ENTITIES, LINEAGE_COLUMNS
from dagster_project.definitions import build_definitions
from dagster_project.quality.results import (
    ExpectationOutcome,
    RunContext,
    SuiteValidation,
    append_results,
    previous_row_counts,
)
from dagster_project.quality.suites import RowCountBounds, SuiteError, load_suite, load_suites
from dagster_project.refresh import RefreshError, run_refresh
from dagster_project.settings import Settings, work_database_path

SUITES = load_suites()


def results(work: Path, where: str = "true", params=None) -> list[dict]:
    with duckdb.connect(str(work), read_only=True) as con:
        cursor = con.execute(f"select * from quality.quality_results where {where}", params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def run(exports: Path, warehouse: Path, instance: DagsterInstance, as_of: date | None = None, groups=CORE_GROUPS):
    settings = Settings(exports_dir=exports, warehouse=warehouse, as_of=as_of, schedule_timezone="Asia/Shanghai")
    return run_refresh(settings, instance, groups=groups)


# ------------------------------------------------------------------------------------------------ the suite files


def test_every_suite_is_valid_great_expectations_json():
    import great_expectations as gx

    assert {s.name for s in SUITES} >= {f"raw_{e.name}" for e in ENTITIES} | {
        f"marts_{t}" for t in ("dim_customers", "dim_products", "fct_orders", "fct_order_items", "fct_interactions",
                               "fct_opportunities", "fct_tickets", "fct_surveys", "customer_360")}
    for suite in SUITES:
        parsed = gx.ExpectationSuite(**suite.document)
        assert len(parsed.expectations) == len(suite.document["expectations"]) > 3, suite.name
        types = {e.expectation_type for e in parsed.expectations}
        assert "expect_table_row_count_to_be_between" in types, suite.name


def test_raw_suites_follow_the_export_contract():
    by_name = {s.name: s for s in SUITES}
    for entity in ENTITIES:
        suite = by_name[f"raw_{entity.name}"]
        expectations = suite.document["expectations"]
        (columns,) = [e for e in expectations if e["type"] == "expect_table_columns_to_match_set"]
        assert columns["kwargs"]["column_set"] == [*entity.column_names, *LINEAGE_COLUMNS]
        assert suite.on_failure_of(columns["meta"]) == "stop"
        not_null = {e["kwargs"]["column"] for e in expectations if e["type"] == "expect_column_values_to_not_be_null"
                    and suite.on_failure_of(e["meta"]) == "warn"}
        assert set(entity.required) <= not_null, entity.name


def test_a_suite_with_an_unknown_on_failure_is_refused_naming_the_file(tmp_path):
    document = {"name": "raw_x", "meta": {"table": "raw.x", "on_failure": "warn"},
                "expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 0},
                                  "meta": {"on_failure": "explode"}}]}
    (tmp_path / "raw_x.json").write_text(json.dumps(document))
    with pytest.raises(SuiteError, match="raw_x.json.*explode"):
        load_suite(tmp_path / "raw_x.json")


def test_every_suite_is_a_blocking_check_on_its_table(tmp_path):
    graph = build_definitions(Settings(exports_dir=tmp_path, warehouse=tmp_path / "w.duckdb", as_of=None,
                                       schedule_timezone="UTC")).resolve_asset_graph()
    for suite in SUITES:
        assert graph.get(AssetCheckKey(AssetKey(suite.asset_path), CHECK_NAME)).blocking, suite.name


# ------------------------------------------------------------------------------------------------ row-count history


def test_row_count_bounds_need_a_previous_count_large_enough_to_mean_something():
    bounds = RowCountBounds(min_ratio=0.5, max_ratio=10, min_previous_rows=100)
    assert bounds.limits(None) == (0, None)  # first refresh
    assert bounds.limits(99) == (0, None)
    assert bounds.limits(1001) == (501, 10010)


def test_previous_row_count_is_the_latest_passing_run_not_later_than_the_as_of_date():
    suite = next(s for s in SUITES if s.name == "marts_fct_orders")

    def outcome(expectation_type: str, observed, success: bool, severity: str = "stop") -> ExpectationOutcome:
        return ExpectationOutcome(expectation_type, None, {}, observed, None, None, success, severity, None, None)

    def validation(count: int, *extra: ExpectationOutcome) -> list[SuiteValidation]:
        return [SuiteValidation(suite, [outcome("expect_table_row_count_to_be_between", count, True), *extra], 0.1)]

    with duckdb.connect() as con:
        append_results(con, RunContext("a", datetime(2026, 1, 1), date(2026, 3, 31)), validation(1000))
        append_results(con, RunContext("b", datetime(2026, 1, 2), date(2026, 3, 31)),
                       validation(1200, outcome("expect_column_values_to_be_unique", None, False, "warn")))
        append_results(con, RunContext("c", datetime(2026, 1, 3), date(2026, 3, 31)),
                       validation(90, outcome("unexpected_rows_expectation", 1, False, "stop")))
        append_results(con, RunContext("d", datetime(2026, 1, 4), date(2026, 6, 30)), validation(5000))

        # c failed a 'stop' expectation; a 'warn' failure (b) still counts as a passing refresh.
        assert previous_row_counts(con, [suite.name], "now", date(2026, 4, 30)) == {suite.name: 1200}
        # d was built for a later date than this replay, so it does not count.
        assert previous_row_counts(con, [suite.name], "now", date(2026, 6, 30)) == {suite.name: 5000}
        assert previous_row_counts(con, [suite.name], "d", date(2026, 6, 30)) == {suite.name: 1200}
        assert previous_row_counts(con, ["marts_fct_tickets"], "now", None) == {}


# ------------------------------------------------------------------------------------------------ in the refresh


def test_every_suite_passes_on_the_sample_and_is_recorded_and_reported(refreshed):
    rows = results(refreshed.work)
    (run_id,) = {r["run_id"] for r in rows}
    assert {r["suite"] for r in rows} == {s.name for s in SUITES}
    failed = [(r["suite"], r["expectation_type"], r["column_name"], r["observed_value"], r["details"])
              for r in rows if not r["success"]]
    assert failed == []
    counts = {r["suite"]: int(r["observed_value"]) for r in rows
              if r["expectation_type"] == "expect_table_row_count_to_be_between"}
    for suite in SUITES:
        assert counts[suite.name] == refreshed.scalar(f"select count(*) from {suite.relation}") > 0, suite.name
    as_of = refreshed.scalar("select as_of_date from intermediate.int_as_of")
    assert {r["as_of_date"] for r in rows if r["suite"].startswith("marts_")} == {as_of}
    report = (refreshed.warehouse.parent / "quality" / "index.html").read_text(encoding="utf-8")
    assert run_id in report and all(f"id='{s.name}'" in report for s in SUITES) and "blocked" not in report


def tiny_export(root: Path, bogus_every: int = 0) -> Path:
    """30 customers and their orders from January to May 2026; every `bogus_every`-th order has an unknown status."""
    drop = root / "exports" / "2026-05-31"
    drop.mkdir(parents=True)
    customers = ["customer_id,name,email,signup_date"] + [
        f"C{i},Person {i},p{i}@example.com,2025-12-{1 + i % 28:02d}" for i in range(30)]
    orders = ["order_id,customer_id,order_date,status,amount"] + [
        f"O{n},C{n % 30},2026-{1 + n % 5:02d}-{1 + n % 28:02d},"
        f"{'lost_in_mail' if bogus_every and n % bogus_every == 0 else 'paid'},{20 + n}.50" for n in range(160)]
    (drop / "customers.csv").write_text("\n".join(customers) + "\n")
    (drop / "orders.csv").write_text("\n".join(orders) + "\n")
    return drop.parent


def test_raw_values_outside_the_allowed_set_warn_and_a_stale_mart_blocks_publishing(tmp_path):
    exports = tiny_export(tmp_path, bogus_every=8)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    with DagsterInstance.ephemeral() as instance:
        # The newest order is of 2026-05-28, two months before the as-of date: fct_orders is stale (a stop rule).
        with pytest.raises(RefreshError, match=f"{CHECK_NAME} on marts/fct_orders"):
            run(exports, warehouse, instance, as_of=date(2026, 7, 31), groups=(*CORE_GROUPS, "publish"))
        assert instance.get_latest_materialization_event(AssetKey(["marts", "fct_orders"])) is not None
        assert instance.get_latest_materialization_event(AssetKey(["publish", "warehouse"])) is None
    assert not warehouse.exists()  # nothing published

    work = work_database_path(warehouse)
    (status,) = results(work, "suite = 'raw_orders' and column_name = 'status'")
    assert (status["success"], status["severity"], status["unexpected_count"]) == (False, "warn", 20)
    assert "lost_in_mail" in status["details"]
    # The raw warning did not stop the refresh: dbt ran and quarantined the unknown statuses.
    with duckdb.connect(str(work), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_orders").fetchone()[0] == 140

    stops = results(work, "not success and severity = 'stop'")
    assert {r["suite"] for r in stops} == {"marts_fct_orders"}
    (stale,) = stops
    assert json.loads(stale["details"]) == [{"newest": "2026-05-28", "as_of_date": "2026-07-31"}]
    report = (warehouse.parent / "quality" / "index.html").read_text(encoding="utf-8")
    assert "blocked" in report and "Freshness" in report


def test_a_structural_raw_failure_stops_the_refresh_before_dbt(tmp_path):
    exports = tiny_export(tmp_path)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    work = work_database_path(warehouse)
    work.parent.mkdir(parents=True)
    with duckdb.connect(str(work)) as con:  # a column someone added to the raw table by hand
        ingest.ensure_raw_schema(con)
        con.execute("alter table raw.orders add column legacy_flag varchar")
    with DagsterInstance.ephemeral() as instance:
        with pytest.raises(RefreshError, match=f"{CHECK_NAME} on raw/orders"):
            run(exports, warehouse, instance)
        assert instance.get_latest_materialization_event(AssetKey(["raw", "orders"])) is not None
        assert instance.get_latest_materialization_event(AssetKey(["staging", "base_crm__orders"])) is None
    (columns,) = results(work, "not success and severity = 'stop'")
    assert (columns["suite"], columns["expectation_type"], columns["severity"]) == (
        "raw_orders", "expect_table_columns_to_match_set", "stop")
    assert "legacy_flag" in columns["observed_value"]
