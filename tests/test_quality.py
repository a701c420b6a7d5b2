"""Great Expectations suites inside the refresh: every suite passes on the sample, results are stored and reported,
a row-level raw failure warns, a structural raw failure stops before dbt, a failing mart check blocks publishing; a
failure says what failed (suite, rule, column, failing rows, an example, personal values withheld) and a rule on a
column the export never delivered is not applicable."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    MetadataValue,
    asset,
    asset_check,
    define_asset_job,
)

from conftest import CORE_GROUPS
from dagster_project import ingest
from dagster_project.defs.assets.checks import CHECK_NAME, check_result
from dagster_project.contract import ENTITIES, LINEAGE_COLUMNS
from dagster_project.defs.definitions import build_definitions
from dagster_project.quality import check_suites
from dagster_project.quality.messages import WITHHELD, failure_line
from dagster_project.quality.results import (
    ExpectationOutcome,
    RunContext,
    SuiteValidation,
    append_results,
    previous_row_counts,
)
from dagster_project.quality.suites import RowCountBounds, SuiteError, checks_rows, load_suite, load_suites
from dagster_project.defs.refresh import RefreshError, failure_reason, run_refresh
from dagster_project.settings import DBT_PROJECT_DIR, Settings
from dagster_project.warehouse_files import work_database_path

SUITES = load_suites()


def results(work: Path, where: str = "true", params=None) -> list[dict]:
    with duckdb.connect(str(work), read_only=True) as con:
        cursor = con.execute(f"select * from quality.quality_results where {where}", params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def run(exports: Path, warehouse: Path, instance: DagsterInstance, as_of: date | None = None, groups=CORE_GROUPS):
    settings = Settings(exports_dir=exports, warehouse=warehouse, as_of=as_of, schedule_timezone="Asia/Shanghai")
    return run_refresh(settings, instance, groups=groups)


def check_evaluations(instance: DagsterInstance, run_id: str) -> dict[str, object]:
    """The asset check evaluations of a run by asset ("marts/fct_orders"), as the Dagster UI shows them."""
    events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    return {e.dagster_event.asset_check_evaluation_data.asset_key.to_user_string():
            e.dagster_event.asset_check_evaluation_data for e in events
            if e.dagster_event.asset_check_evaluation_data.check_name == CHECK_NAME}


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


def test_a_source_column_must_name_a_column_of_the_export_contract(tmp_path):
    document = {"name": "marts_x", "meta": {"table": "marts.x", "on_failure": "stop"},
                "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "channel"},
                                  "meta": {"source_column": "orders.chanel"}}]}
    (tmp_path / "marts_x.json").write_text(json.dumps(document))
    with pytest.raises(SuiteError, match="marts_x.json.*orders.chanel"):
        load_suite(tmp_path / "marts_x.json")
    document["expectations"][0]["meta"]["source_column"] = "orders.channel"
    (tmp_path / "marts_x.json").write_text(json.dumps(document))
    assert load_suite(tmp_path / "marts_x.json").name == "marts_x"


@pytest.mark.parametrize("kind, scope", [("unexpected_rows_expectation", "some"),
                                         ("expect_column_values_to_not_be_null", "table")])
def test_only_a_sql_rule_says_whether_it_checks_rows_or_the_whole_table(tmp_path, kind, scope):
    document = {"name": "raw_x", "meta": {"table": "raw.x", "on_failure": "warn"},
                "expectations": [{"type": kind, "kwargs": {}, "meta": {"scope": scope}}]}
    (tmp_path / "raw_x.json").write_text(json.dumps(document))
    with pytest.raises(SuiteError, match=f"raw_x.json.*meta.scope '{scope}'"):
        load_suite(tmp_path / "raw_x.json")
    # Each raw suite's SQL rules on rows say so; the reconciliation with the ingest log reads the whole table.
    for suite in SUITES:
        for expectation in suite.document["expectations"]:
            if expectation["type"] == "unexpected_rows_expectation" and suite.schema == "raw":
                query = expectation["kwargs"]["unexpected_rows_query"]
                assert checks_rows(expectation) == ("_ingest_log" not in query), (suite.name, query)


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


def test_a_results_table_of_an_earlier_release_gains_status_filled_from_success():
    suite = next(s for s in SUITES if s.name == "marts_fct_orders")
    with duckdb.connect() as con:
        con.execute("create schema quality")
        con.execute("create table quality.quality_results (run_id varchar, checked_at timestamp, as_of_date date, "
                    "suite varchar, asset_key varchar, expectation_type varchar, column_name varchar, kwargs json, "
                    "observed_value json, unexpected_count bigint, unexpected_percent double, success boolean, "
                    "severity varchar, details json, description varchar)")
        con.execute("insert into quality.quality_results (run_id, suite, success, severity) values "
                    "('old', 'marts_fct_orders', true, 'stop'), ('old', 'marts_fct_orders', false, 'warn')")
        outcome = ExpectationOutcome("expect_column_values_to_not_be_null", "channel", {"column": "channel"}, None,
                                     None, None, None, "warn", {"not_applicable": "why"}, None,
                                     not_applicable="why")
        append_results(con, RunContext("new", datetime(2026, 1, 1), None), [SuiteValidation(suite, [outcome], 0.1)])
        assert con.execute("select run_id, success, status from quality.quality_results order by all").fetchall() == [
            ("new", None, "not_applicable"), ("old", False, "failed"), ("old", True, "passed")]


# ------------------------------------------------------------------------------------------------ in the refresh


def test_every_suite_passes_on_the_sample_and_is_recorded_and_reported(refreshed):
    rows = results(refreshed.work)
    (run_id,) = {r["run_id"] for r in rows}
    assert {r["suite"] for r in rows} == {s.name for s in SUITES}
    failed = [(r["suite"], r["expectation_type"], r["column_name"], r["observed_value"], r["details"])
              for r in rows if r["status"] not in ("passed", "not_applicable")]
    assert failed == []
    counts = {r["suite"]: int(r["observed_value"]) for r in rows
              if r["expectation_type"] == "expect_table_row_count_to_be_between"}
    for suite in SUITES:
        assert counts[suite.name] == refreshed.scalar(f"select count(*) from {suite.relation}") > 0, suite.name
    as_of = refreshed.scalar("select as_of_date from intermediate.int_as_of")
    assert {r["as_of_date"] for r in rows if r["suite"].startswith("marts_")} == {as_of}
    report = (refreshed.warehouse.parent / "quality" / "index.html").read_text(encoding="utf-8")
    assert run_id in report and all(f"id='{s.name}'" in report for s in SUITES) and "blocked" not in report


def tiny_export(root: Path, bogus_every: int = 0, huge_every: int = 0) -> Path:
    """30 customers and their orders from January to May 2026, without city, acquisition channel, sales channel or
    currency columns; every `bogus_every`-th order has an unknown status, every `huge_every`-th is of $9,000,000
    (within dbt's max_order_amount in dollars, above it in yuan)."""
    drop = root / "exports" / "2026-05-31"
    drop.mkdir(parents=True)
    customers = ["customer_id,name,email,signup_date"] + [
        f"C{i},Person {i},p{i}@example.com,2025-12-{1 + i % 28:02d}" for i in range(30)]
    orders = ["order_id,customer_id,order_date,status,amount"] + [
        f"O{n},C{n % 30},2026-{1 + n % 5:02d}-{1 + n % 28:02d},"
        f"{'lost_in_mail' if bogus_every and n % bogus_every == 0 else 'paid'},"
        f"{'$9000000' if huge_every and n % huge_every == 0 else f'{20 + n}.50'}" for n in range(160)]
    (drop / "customers.csv").write_text("\n".join(customers) + "\n")
    (drop / "orders.csv").write_text("\n".join(orders) + "\n")
    return drop.parent


def test_raw_values_outside_the_allowed_set_warn_and_a_stale_mart_blocks_publishing(tmp_path):
    exports = tiny_export(tmp_path, bogus_every=8)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    with DagsterInstance.ephemeral() as instance:
        # The newest order is of 2026-05-28, two months before the as-of date: fct_orders is stale (a stop rule).
        with pytest.raises(RefreshError) as failed:
            run(exports, warehouse, instance, as_of=date(2026, 7, 31), groups=(*CORE_GROUPS, "publish"))
        assert (
            'suite marts_fct_orders, rule unexpected_rows_expectation "Freshness: the newest order_date is at most 7 '
            'days before the as-of date.": query returned 1 offending row, e.g. newest=2026-05-28, '
            "as_of_date=2026-07-31") in str(failed.value)
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


def test_row_by_row_raw_rules_check_the_new_loads_and_the_table_rules_the_whole_table(tmp_path):
    """A daily drop's rows are checked row by row on their own, so a bad day shows where over the whole table it
    would drown: 1 unreadable amount of the drop's 30 (3%) fails the "at most 1%" rule, though it is 1 of 190 rows.
    The row count is still the table's. A refresh asked to rebuild everything checks every row again."""
    exports = tiny_export(tmp_path)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    work = work_database_path(warehouse)
    settings = Settings(exports_dir=exports, warehouse=warehouse, as_of=None, schedule_timezone="Asia/Shanghai")
    with DagsterInstance.ephemeral() as instance:
        first = run_refresh(settings, instance, groups=("ingest",)).run_id
        drop = exports / "2026-06-01"
        drop.mkdir()
        (drop / "orders.csv").write_text("order_id,customer_id,order_date,status,amount\n" + "".join(
            f"N{n},C{n},2026-06-01,paid,{'n/a' if n == 0 else f'{30 + n}.00'}\n" for n in range(30)))
        daily = run_refresh(settings, instance, groups=("ingest",)).run_id
        everything = run_refresh(settings, instance, groups=("ingest",), full_refresh=True).run_id

    def outcome(run_id: str, expectation_type: str, column: str | None) -> dict:
        (row,) = results(work, "run_id = ? and suite = 'raw_orders' and expectation_type = ? and "
                               "column_name is not distinct from ?", [run_id, expectation_type, column])
        return row

    not_null, amounts = "expect_column_values_to_not_be_null", "unexpected_rows_expectation"
    rows = "expect_table_row_count_to_be_between"
    assert outcome(first, not_null, "customer_id")["element_count"] == 160
    assert outcome(daily, not_null, "customer_id")["element_count"] == 30
    assert json.loads(outcome(daily, rows, None)["observed_value"]) == 190
    assert outcome(daily, amounts, "amount")["status"] == "failed"
    assert json.loads(outcome(daily, amounts, "amount")["details"]) == [{"rows_checked": 30, "bad_rows": 1}]
    # Every row again: the bad amount is 1 of 190, within the rule's 1%.
    assert outcome(everything, not_null, "customer_id")["element_count"] == 190
    assert outcome(everything, amounts, "amount")["status"] == "passed"
    # A table no load reached since (customers) is checked on no row at all; its table rules still ran.
    (customers,) = results(work, "run_id = ? and suite = 'raw_customers' and column_name = 'customer_id' and "
                                 "expectation_type = ?", [daily, not_null])
    assert (customers["status"], customers["element_count"]) == ("passed", 0)


def test_loads_of_a_suite_whose_stop_rule_failed_are_checked_again(tmp_path):
    """Only a validation without a failed stop rule records its table's loads as checked."""
    from dagster_project.quality import new_loads
    from dagster_project.quality.results import ExpectationOutcome, SuiteValidation

    (suite,) = [s for s in SUITES if s.name == "raw_orders"]
    loaded = datetime(2026, 6, 1, 8, 30, 0, 123456)
    with duckdb.connect(str(tmp_path / "work.duckdb")) as con:
        ingest.ensure_raw_schema(con)
        con.execute("insert into raw.orders (order_id, _source_file, _loaded_at) values ('O1', 'it''s/orders.csv', ?)",
                    [loaded])

        def outcome(severity: str, success: bool) -> ExpectationOutcome:
            return ExpectationOutcome("expect_column_values_to_not_be_null", "customer_id", {}, None, 1, 100.0,
                                      success, severity, None, None)

        scopes = new_loads.scopes(con, [suite], "v1", every_row=False)
        assert scopes[suite.name].unchecked is None  # nothing recorded yet: every row
        new_loads.record(con, [SuiteValidation(suite, [outcome("stop", False)], 0.1)], scopes, "v1", "run-1")
        assert new_loads.scopes(con, [suite], "v1", every_row=False)[suite.name].unchecked is None
        new_loads.record(con, [SuiteValidation(suite, [outcome("warn", False)], 0.1)], scopes, "v1", "run-2")
        scope = new_loads.scopes(con, [suite], "v1", every_row=False)[suite.name]
        assert scope.unchecked == () and scope.loads == (("it's/orders.csv", loaded),)
        # The filter selects a new load's rows (the file loaded again), and nothing else.
        con.execute("insert into raw.orders (order_id, _source_file, _loaded_at) values ('O2', 'it''s/orders.csv', ?)",
                    [datetime(2026, 6, 2)])
        scope = new_loads.scopes(con, [suite], "v1", every_row=False)[suite.name]
        assert con.execute(f"select order_id from raw.orders where {scope.row_filter}").fetchall() == [("O2",)]
        # Another version of the code and suites, or a refresh asked to rebuild everything: every row.
        assert new_loads.scopes(con, [suite], "v2", every_row=False)[suite.name].unchecked is None
        assert new_loads.scopes(con, [suite], "v1", every_row=True)[suite.name].unchecked is None


def test_a_structural_raw_failure_stops_the_refresh_before_dbt(tmp_path):
    exports = tiny_export(tmp_path)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    work = work_database_path(warehouse)
    work.parent.mkdir(parents=True)
    with duckdb.connect(str(work)) as con:  # a column someone added to the raw table by hand
        ingest.ensure_raw_schema(con)
        con.execute("alter table raw.orders add column legacy_flag varchar")
    with DagsterInstance.ephemeral() as instance:
        with pytest.raises(RefreshError, match="data check failed: suite raw_orders, rule "
                                               r"expect_table_columns_to_match_set\(.*\): unexpected columns "
                                               r"\[legacy_flag\]"):
            run(exports, warehouse, instance)
        assert instance.get_latest_materialization_event(AssetKey(["raw", "orders"])) is not None
        assert instance.get_latest_materialization_event(AssetKey(["staging", "base_crm__orders"])) is None
    (columns,) = results(work, "not success and severity = 'stop'")
    assert (columns["suite"], columns["expectation_type"], columns["severity"]) == (
        "raw_orders", "expect_table_columns_to_match_set", "stop")
    assert "legacy_flag" in columns["observed_value"]


# ------------------------------------------------------------------------------------------------ what a failure says


def test_rules_on_columns_the_export_never_had_are_not_applicable(tmp_path):
    exports = tiny_export(tmp_path)  # no city, acquisition channel, sales channel or currency column
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    with DagsterInstance.ephemeral() as instance:
        run_id = run(exports, warehouse, instance).run_id  # succeeds
        evaluations = check_evaluations(instance, run_id)
    # dbt's per-invocation target folder (megabytes of manifest and compiled SQL) does not outlive the run.
    assert not list((DBT_PROJECT_DIR / "target").glob(f"crm_dbt_models-{run_id[:7]}-*"))

    work = work_database_path(warehouse)
    rows = {(r["suite"], r["expectation_type"], r["column_name"]): r for r in results(work)}
    not_applicable = {key for key, r in rows.items() if r["status"] == "not_applicable"}
    assert {("raw_orders", "expect_column_values_to_not_be_null", "channel"),
            ("raw_orders", "expect_column_values_to_be_in_set", "currency"),
            ("marts_fct_orders", "expect_column_values_to_not_be_null", "channel"),
            ("marts_dim_customers", "expect_column_values_to_not_be_null", "city"),
            ("marts_dim_customers", "expect_column_values_to_not_be_null", "acquisition_channel")} <= not_applicable
    for key in not_applicable:
        row = rows[key]
        assert row["success"] is None and row["unexpected_count"] is None, key
        assert "delivered" in json.loads(row["details"])["not_applicable"], key
    assert json.loads(rows["marts_fct_orders", "expect_column_values_to_not_be_null", "channel"]["details"]) == {
        "not_applicable": "comes from orders.channel: no orders file delivered it"}
    # Rules on delivered columns ran; nothing about a column the export lacks is red.
    assert rows["raw_orders", "expect_column_values_to_be_in_set", "status"]["status"] == "passed"
    assert rows["marts_fct_orders", "expect_column_values_to_not_be_null", "amount"]["status"] == "passed"
    assert not [key for key, r in rows.items() if r["status"] == "failed" and key[2] in {
        "channel", "city", "acquisition_channel", "currency"}]

    for asset_key in ("raw/orders", "marts/fct_orders", "marts/dim_customers"):
        evaluation = evaluations[asset_key]
        listed = {r["column"] for r in evaluation.metadata["not_applicable_rules"].value}
        failed = {f["column"] for f in evaluation.metadata["failed"].value}
        assert listed & {"channel", "city"} and not failed & {"channel", "city"}, asset_key
        assert "not applicable" in evaluation.description, asset_key
    report = (warehouse.parent / "quality" / "index.html").read_text(encoding="utf-8")
    assert "not applicable" in report and "column channel: no orders file delivered it" in report
    assert "class='failed-stop'" not in report


def test_a_failing_stop_rule_says_suite_rule_column_failing_rows_and_an_example(tmp_path):
    exports = tiny_export(tmp_path, huge_every=50)  # 4 orders of $9,000,000: above 10,000,000 once in yuan
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    with DagsterInstance.ephemeral() as instance:
        with pytest.raises(RefreshError) as failed:
            run(exports, warehouse, instance)
    with duckdb.connect(str(work_database_path(warehouse)), read_only=True) as con:
        (orders,) = con.execute("select count(*) from marts.fct_orders").fetchone()
        huge = [a for (a,) in con.execute("select amount from marts.fct_orders where amount > 10000000").fetchall()]
    assert len(huge) == 4
    message = str(failed.value)
    assert "\n" not in message
    assert re.match(r"refresh failed: data check failed: suite marts_fct_orders, rule "
                    r"expect_column_values_to_be_between\(amount, min -?\d+, max 10000000\), column amount: "
                    f"4 of {orders} rows fail, e.g. ", message), message
    assert str(huge[0]) in message
    (row,) = results(work_database_path(warehouse), "status = 'failed' and severity = 'stop'")
    assert (row["suite"], row["column_name"], row["unexpected_count"], row["element_count"]) == (
        "marts_fct_orders", "amount", 4, orders)


PERSONAL_VALUES = ("CRM-90210", "Ann Lee", "ann.lee@example.com", "+86 138 0013 8000", "1990-02-03")


def test_a_failing_rule_on_a_personal_column_never_shows_its_values(tmp_path):
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.customers as select * from (values "
                    "('CRM-90210', 'Ann Lee', 'ann.lee@example.com', '+86 138 0013 8000', '1990-02-03', 'female'), "
                    "(null, null, null, null, null, 'male')) t(customer_id, name, email, phone, birth_date, gender)")
    document = {"name": "raw_people", "meta": {"table": "raw.customers", "on_failure": "stop"}, "expectations": [
        {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "email", "max_value": 5}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "name", "value_set": ["nobody"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "customer_id", "value_set": ["x"]}},
        {"type": "expect_column_value_lengths_to_equal", "kwargs": {"column": "phone", "value": 3}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "birth_date", "value_set": ["x"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "gender", "value_set": ["male"]}},
        {"type": "unexpected_rows_expectation", "description": "Women with an e-mail.", "kwargs": {
            "unexpected_rows_query": "select customer_id, email, gender from {batch} where gender = 'female'"}},
    ]}
    (tmp_path / "raw_people.json").write_text(json.dumps(document))
    suite = load_suite(tmp_path / "raw_people.json")
    report = tmp_path / "quality" / "index.html"
    (validation,), _ = check_suites(lambda: duckdb.connect(str(database)), [suite], "run-1", report, built_marts=False)

    lines = {e.column: failure_line(suite.name, e) for e in validation.failures}
    assert set(lines) == {"email", "name", "customer_id", "phone", "birth_date", "gender", None}
    for column in ("email", "name", "customer_id", "phone", "birth_date"):
        assert lines[column].endswith(f"1 of 2 rows fail, e.g. {WITHHELD}"), lines[column]
    assert lines["gender"].endswith("1 of 2 rows fail, e.g. female")  # not personal: shown
    assert f"customer_id={WITHHELD}, email={WITHHELD}, gender=female" in lines[None]

    # The refresh's message, through a real Dagster run of the check result; the check as the UI shows it; the
    # stored results and the report.
    @asset(key=AssetKey(suite.asset_path))
    def customers() -> None:
        return None

    @asset_check(asset=customers, name=CHECK_NAME, blocking=True)
    def people_check():
        return check_result(validation, report)

    @asset_check(asset=customers, name="unique_customers_customer_id")
    def dbt_like_test():  # what dagster-dbt reports for a failed dbt test
        from dagster import AssetCheckResult, AssetCheckSeverity

        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR,
                                metadata={"status": "fail", "dagster_dbt/failed_row_count": 2})

    job = define_asset_job("people", selection=AssetSelection.all())
    result = Definitions(assets=[customers], asset_checks=[people_check, dbt_like_test], jobs=[job]).resolve_job_def(
        "people").execute_in_process(raise_on_error=False)
    message = failure_reason(result)
    assert message.startswith("8 data checks failed: suite raw_people, rule ") and message.endswith(" and 5 more")
    assert WITHHELD in message
    evaluation = check_result(validation, report)
    shown = [message, evaluation.description, json.dumps({k: getattr(v, "value", v) for k, v in
                                                          evaluation.metadata.items()}, default=str),
             json.dumps(results(database), default=str), report.read_text(encoding="utf-8")]
    for text in shown:
        assert not [value for value in PERSONAL_VALUES if value in text], text
    assert "female" in evaluation.description and WITHHELD in evaluation.description


def test_a_failed_dbt_test_names_the_test_the_model_and_its_failing_rows():
    @asset(key=AssetKey(["marts", "fct_orders"]))
    def fct_orders() -> None:
        return None

    @asset_check(asset=fct_orders, name="unique_fct_orders_order_id")
    def unique_order_id():
        from dagster import AssetCheckResult, AssetCheckSeverity

        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR,
                                metadata={"status": "fail", "dagster_dbt/failed_row_count": MetadataValue.int(2)})

    job = define_asset_job("orders", selection=AssetSelection.all())
    result = Definitions(assets=[fct_orders], asset_checks=[unique_order_id], jobs=[job]).resolve_job_def(
        "orders").execute_in_process(raise_on_error=False)
    assert failure_reason(result) == (
        "data check failed: dbt test unique_fct_orders_order_id on model marts/fct_orders: 2 failing rows")
