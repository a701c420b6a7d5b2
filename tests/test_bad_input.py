"""Bad exports: for each case of tests/bad_exports/, what lands, what is quarantined with which reason, and what the
user is told, through the real ingestion and dbt (docs/bad_input.md is the table of these cases).

Row-level cases are refreshed together (one refresh of all their drops: each case has its own drop dates and ids);
file-level cases, which stop a refresh, call the ingestion directly, the code path the ingest asset runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from conftest import CORE_GROUPS, Refreshed, ingest_all
from dagster_project import ingest
from dagster_project.defs.assets.dbt import dbt_models, dbt_resource
from dagster_project.contract import ENTITIES_BY_NAME
from dagster_project.defs.definitions import build_definitions
from dagster_project.ingest import IngestError
from dagster_project.defs.refresh import RefreshError, run_refresh
from dagster_project.settings import Settings
from dagster_project.warehouse_files import work_database_path

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).parent / "bad_exports"
AS_OF = date(2026, 3, 5)  # the newest order is of 2026-03-01: fresh enough for the marts checks
# Every path the refresh reads or writes carries SQL and glob metacharacters: they must stay data.
HOSTILE_EXPORTS = "it's \"exports\" [1]*; drop table raw.orders; --"
HOSTILE_WAREHOUSE = "wh 'q\"; drop table marts.fct_orders; --"


@dataclass(frozen=True)
class Q:
    """Quarantined, with a reason equal to `reason` (or, when `pattern`, matching it as a regular expression)."""

    reason: str
    pattern: bool = False

    def matches(self, reason: str) -> bool:
        return bool(re.fullmatch(self.reason, reason)) if self.pattern else reason == self.reason


L, S, D, U = "landed", "superseded", "deferred", "unattributed"
TRUNCATED = r" \(the file ends inside this row: it was cut off, rows after it may be missing\)"

# Case -> file -> the fate of every row read, by its row number in the file (header excluded).
ROW_CASES: dict[str, dict[str, dict[int, str | Q]]] = {
    "bom": {"2026-01-02/customers.csv": {1: L, 2: L}, "2026-01-02/orders.csv": {1: L, 2: L}},
    "gb18030": {"2026-01-03/customers.csv": {1: L, 2: L}, "2026-01-03/orders.csv": {1: L}},
    "mixed_encoding": {"2026-01-04/customers.csv": {1: L, 2: L, 3: L, 4: L}},
    "utf16": {"2026-01-05/orders.csv": {1: L}},
    "stray_bytes": {"2026-01-06/orders.csv": {1: L, 2: Q("encoding error"), 3: L}},
    # The detail adds that the file was cut off (test_a_cut_off_file_says_so_in_the_detail).
    "truncated_last_line": {
        "2026-01-07/orders.csv": {1: L, 2: Q("unterminated or stray quote")},
        "2026-01-07/customers.csv": {1: L, 2: Q("wrong field count")},
    },
    "semicolon_delimiter": {"2026-01-08/orders.csv": {1: L, 2: L}},
    "repeated_header": {"2026-01-09/orders.csv": {1: L, 2: Q("repeated header row"), 3: L}},
    "extra_columns": {"2026-01-10/orders.csv": {1: L, 2: L}},
    "synonyms": {"2026-01-11/sales.csv": {1: L, 2: L}},
    "header_only": {"2026-01-12/customers.csv": {}},
    "bad_amounts": {
        "2026-01-13/orders.csv": {
            1: Q("negative amount"), 2: Q("amount above max_order_amount"), 3: Q("unparseable amount"),
            4: Q("unparseable amount"), 5: Q("unparseable amount"), 6: Q("unparseable amount"), 7: L, 8: L,
        },
        "2026-01-13/products.csv": {
            1: Q("list_price above max_order_amount"), 2: Q("unparseable list_price"), 3: Q("negative list_price"),
            4: L,
        },
        # A campaign may cost more than any order: its cost has no upper bound, only NaN, infinities and < 0 fail.
        "2026-01-13/campaigns.csv": {1: L, 2: Q("unparseable cost"), 3: L},
        "2026-01-13/opportunities.csv": {1: Q("amount above max_order_amount"), 2: Q("unparseable amount"), 3: L},
        "2026-01-13/order_items.csv": {
            1: Q("unit_price above max_order_amount"), 2: Q("unparseable unit_price"), 3: Q("unparseable discount"),
            4: L,
        },
    },
    "bad_quantities": {
        "2026-01-14/orders.csv": {1: L},
        "2026-01-14/order_items.csv": {
            1: Q("non-numeric quantity"), 2: Q("non-positive quantity"), 3: Q("non-positive quantity"),
            4: Q("non-numeric quantity"), 5: Q("line amount (quantity * unit_price) above max_order_amount"),
            6: L, 7: L, 8: L,
        },
    },
    "conflicting_duplicates": {
        "2026-01-15/orders.csv": {
            1: Q("conflicting duplicate"), 2: S, 3: L, 4: L, 5: S, 6: L,
        },
        "2026-01-15/customers.csv": {1: Q("conflicting duplicate"), 2: L},
    },
    "orphans": {
        "2026-01-16/orders.csv": {1: L},
        "2026-01-16/order_items.csv": {1: Q("orphan: order_id not found in orders"), 2: L},
        "2026-01-16/interactions.csv": {1: Q("orphan: customer_id not found in customers or orders"), 2: L},
        "2026-01-16/tickets.csv": {1: Q("orphan: customer_id not found in customers or orders")},
    },
    "formula_injection": {
        "2026-01-17/products.csv": {1: L, 2: L},
        "2026-01-17/campaigns.csv": {1: L, 2: Q("negative cost")},
        "2026-01-17/sales_reps.csv": {1: L, 2: L},
        "2026-01-17/orders.csv": {1: L},
    },
    "hostile_names": {'2026-01-18/"sales".csv': {1: L}},
    "delivered_twice": {
        "2026-01-19/orders.csv": {1: S, 2: S},
        "2026-01-20/orders.csv": {1: S, 2: S},
        "2026-01-20/sales.csv": {1: L, 2: L},
    },
    "long_text": {"2026-01-21/products.csv": {1: L, 2: Q("line too long"), 3: L}},
    "future_dates": {
        "2026-04-15/orders.csv": {
            1: D, 2: Q("order_date after its export drop"), 3: Q("order_date after its export drop"), 4: L,
        },
        "2026-04-15/customers.csv": {1: L, 2: Q("updated_at after its export drop"), 3: D},
        "2026-04-15/interactions.csv": {1: L, 2: Q("occurred_at after its export drop")},
    },
    # The newer drop is loaded first, the older one arrives afterwards (see the row_cases fixture).
    "out_of_order": {"2026-02-01/orders.csv": {1: S, 2: L}, "2026-02-02/orders.csv": {1: L}},
    # 03/01/19 was once read as the year 0003: the column's 13/01/19 makes it day-first, 19 is 2019.
    "day_first_two_digit_years": {"2026-01-22/orders.csv": {1: L, 2: L, 3: L}},
    "ambiguous_dates": {"2026-01-23/orders.csv": {1: Q("ambiguous date order"), 2: Q("ambiguous date order")}},
    "dates_before_1900": {
        "2026-01-24/orders.csv": {1: Q("order_date before 1900"), 2: Q("order_date before 1900"), 3: L},
    },
    # Header ending in LF above rows ending in CR LF: DuckDB's reader once stopped on it.
    "mixed_line_ends": {"2026-01-25/orders.csv": {1: L, 2: L}},
    "decimal_comma": {"2026-01-26/orders.csv": {1: L, 2: L}},
    # A line-level sales file: one line disagrees with its order's customer, one has no customer, one is a return.
    "line_level": {"2026-01-27/sales.csv": {1: L, 2: L, 3: Q("conflicting order attributes"), 4: U, 5: L}},
}
ONE_MEGABYTE = 1 << 20


def write_long_text_case(exports: Path) -> None:
    """Generated rather than committed: a 1 MB product name lands; a 3 MB line is past DuckDB's 2 MB line limit."""
    drop = exports / "2026-01-21"
    drop.mkdir()
    (drop / "products.csv").write_text(
        f"product_id,product_name\nLT-P1,{'x' * ONE_MEGABYTE}\nLT-P2,{'y' * 3 * ONE_MEGABYTE}\nLT-P3,short\n")


def assemble(exports: Path, cases) -> None:
    for case in cases:
        if case == "long_text":
            write_long_text_case(exports)
        else:
            shutil.copytree(CORPUS / case, exports, dirs_exist_ok=True)


def refresh_recording(exports: Path, warehouse: Path) -> dict[str, dict]:
    """The real refresh (ingest and dbt), keeping the metadata of the raw assets' materialisations."""
    # The corpus is bad on purpose: most of its files lose more rows than a refresh would publish.
    settings = Settings(exports_dir=exports, warehouse=warehouse, as_of=AS_OF, schedule_timezone="Asia/Shanghai",
                        max_quarantine_share=1.0)
    with DagsterInstance.ephemeral() as instance:
        run_refresh(settings, instance, groups=CORE_GROUPS)
        events = {name: instance.get_latest_materialization_event(AssetKey(["raw", name])) for name in ENTITIES_BY_NAME}
        return {name: event.asset_materialization.metadata for name, event in events.items() if event is not None}


@pytest.fixture(scope="module")
def row_cases(tmp_path_factory) -> tuple[Refreshed, dict[str, dict]]:
    root = tmp_path_factory.mktemp("bad_input")
    exports = root / HOSTILE_EXPORTS
    warehouse = root / HOSTILE_WAREHOUSE / "crm.duckdb"
    warehouse.parent.mkdir()
    # out_of_order: its newer drop was loaded by an earlier run; the older drop arrives now, with everything else.
    # (Every refresh rebuilds the models from all of raw, so what an earlier run leaves behind is what it loaded.)
    shutil.copytree(CORPUS / "out_of_order" / "2026-02-02", exports / "2026-02-02")
    with duckdb.connect(str(work_database_path(warehouse))) as con:
        ingest_all(con, exports)
    assemble(exports, ROW_CASES)
    metadata = refresh_recording(exports, warehouse)
    return Refreshed(exports, Path(), warehouse), metadata


def fates(refreshed: Refreshed) -> dict[str, dict[int, tuple[str, str | None]]]:
    """file -> row number -> (outcome, reason): quarantined rows from the mart users read, the rest from the
    classification that reconciliation counts."""
    rows = refreshed.query("""
        select source_file, row_number, 'quarantined', reason from marts.fct_quarantined_rows
        union all
        select _source_file, _row_number, outcome, reason from audit.audit_raw_rows_classified
        where outcome <> 'quarantined'
    """)
    result: dict[str, dict[int, tuple[str, str | None]]] = {}
    for source_file, row_number, outcome, reason in rows:
        assert row_number not in result.setdefault(source_file, {}), (source_file, row_number)
        result[source_file][row_number] = (outcome, reason)
    return result


def expected_files() -> dict[str, dict[int, str | Q]]:
    return {file: rows for case in ROW_CASES.values() for file, rows in case.items()}


# ------------------------------------------------------------------------------------------------ row-level cases


@pytest.mark.parametrize("case", ROW_CASES)
def test_every_row_of_a_bad_export_has_the_expected_fate(row_cases, case):
    refreshed, _ = row_cases
    actual = fates(refreshed)
    for file, expected in ROW_CASES[case].items():
        got = actual.get(file, {})
        assert sorted(got) == sorted(expected), file
        for row_number, fate in expected.items():
            outcome, reason = got[row_number]
            if isinstance(fate, Q):
                assert outcome == "quarantined" and fate.matches(reason), (file, row_number, reason)
            else:
                assert (outcome, reason) == (fate, None), (file, row_number)


def test_reconciliation_accounts_for_every_row_of_every_file(row_cases):
    refreshed, _ = row_cases
    expected = expected_files()
    counted = {
        row[0]: row[1:] for row in refreshed.query(
            "select source_file, rows_read, rows_landed, rows_quarantined, rows_merged, rows_superseded, "
            "rows_deferred, rows_unattributed, unaccounted_rows from marts.fct_reconciliation")
    }
    assert sorted(counted) == sorted(expected)
    for file, rows in expected.items():
        fates_ = [("quarantined" if isinstance(f, Q) else f) for f in rows.values()]
        read, landed, quarantined, merged, superseded, deferred, unattributed, unaccounted = counted[file]
        assert (read, landed, quarantined, merged, superseded, deferred, unattributed) == (
            len(rows), fates_.count(L), fates_.count("quarantined"), fates_.count("merged"), fates_.count(S),
            fates_.count(D), fates_.count(U)), file
        assert read == landed + quarantined + merged + superseded + deferred + unattributed and unaccounted == 0, file
    per_entity_drop = refreshed.query(
        "select entity, drop_date, sum(rows_read) - sum(rows_landed + rows_quarantined + rows_merged "
        "+ rows_superseded + rows_deferred + rows_unattributed) from marts.fct_reconciliation group by all")
    assert per_entity_drop and {row[2] for row in per_entity_drop} == {0}


def test_the_refresh_summary_says_how_many_rows_wait_for_a_later_as_of_date(row_cases):
    """Rows dated after the as-of date are deferred, not lost; the CLI's closing lines say so (the as-of date defaults
    to the last order's, and a CRM export's later deals or tickets would otherwise wait unseen)."""
    from dagster_project.cli import deferred_line

    refreshed, _ = row_cases
    with refreshed.connect() as con:
        assert deferred_line(con, AS_OF) == ("deferred 2 row(s) dated after the as-of date 2026-03-05 (customers 1, "
                                             "orders 1): a later --as-of counts them")


def test_a_cut_off_file_says_so_in_the_detail(row_cases):
    refreshed, _ = row_cases
    details = refreshed.query("select source_file, detail from marts.fct_quarantined_rows "
                              "where source_file like '2026-01-07/%' order by 1")
    assert [file for file, _ in details] == ["2026-01-07/customers.csv", "2026-01-07/orders.csv"]
    assert all(re.fullmatch(".+" + TRUNCATED, detail) for _, detail in details), details


def test_encodings_are_decoded_to_the_same_text(row_cases):
    refreshed, _ = row_cases
    assert refreshed.query("select source_file, encoding, delimiter from raw._ingest_log "
                           "where source_file in (?, ?, ?, ?, ?) order by 1",
                           ["2026-01-02/customers.csv", "2026-01-03/customers.csv", "2026-01-04/customers.csv",
                            "2026-01-05/orders.csv", "2026-01-08/orders.csv"]) == [
        ("2026-01-02/customers.csv", "utf-8-sig", ","),
        ("2026-01-03/customers.csv", "gb18030", ","),
        ("2026-01-04/customers.csv", "utf-8+gb18030", ","),
        ("2026-01-05/orders.csv", "utf-16", "\t"),
        ("2026-01-08/orders.csv", "utf-8", ";"),
    ]
    assert refreshed.query("select customer_id, name, city from raw.customers "
                           "where customer_id similar to '(BO|GB|MX)-C[0-9]' order by 1") == [
        ("BO-C1", "王小明", "上海"), ("BO-C2", "Lee", "Beijing"),
        ("GB-C1", "张三丰", "广州"), ("GB-C2", "李四", "深圳"),
        ("MX-C1", "欧阳修", "杭州市"), ("MX-C2", "司马光", "南京"),
        ("MX-C3", "王安石", "苏州市"), ("MX-C4", "苏轼", "成都市"),
    ]
    assert refreshed.query("select signup_date from staging.stg_crm__customers where customer_id like 'GB-%' "
                           "order by 1") == [(date(2025, 5, 1),), (date(2025, 5, 2),)]
    # The quarantined line is kept for whoever fixes the export (DuckDB shows the bad byte as ?).
    assert refreshed.query("select raw_record from raw._quarantine where source_file = "
                           "'2026-01-06/orders.csv'") == [("SB-O2,SB-C?2,2026-01-06,20",)]


def test_values_land_as_the_export_meant_them(row_cases):
    refreshed, _ = row_cases
    orders = dict(((r[0]), r[1:]) for r in refreshed.query(
        "select order_id, currency, amount_original, status from marts.fct_orders"))
    assert orders["U16-O1"] == ("CNY", 88.0, "paid")
    assert orders["SC-O1"] == ("CNY", 1234.5, "paid")  # "1,234.50" in a ;-separated file
    assert orders["SY-O1"] == ("USD", 1000.0, "paid") and orders["SY-O2"] == ("CNY", 50.0, "refunded")
    assert orders["BA-O7"] == ("CNY", 1234.5, "paid") and orders["BA-O8"] == ("CNY", 12.0, "paid")
    assert orders["CD-O1"][1] == 999.0 and orders["CD-O3"][1] == 75.0  # the kept version
    assert orders["FD-O4"] and "FD-O1" not in orders  # deferred: after the as-of date
    assert sorted(o for o in orders if o.startswith("DT-")) == ["DT-O1", "DT-O2"]  # three deliveries, two orders
    assert refreshed.query("select line_number, quantity from marts.fct_order_items where order_id = 'BQ-O1' "
                           "order by 1") == [(6, 2.5), (7, 1000.0), (8, 3.0)]
    # An order of an unknown customer lands (the customer is inferred); a line of an unknown product lands too.
    assert refreshed.query("select product_id from marts.fct_order_items where order_id = 'OR-O1'") == [("OR-P404",)]
    assert refreshed.query("select count(*) from marts.fct_interactions where interaction_id = 'OR-I2'") == [(1,)]
    assert refreshed.query("select city from staging.stg_crm__customers where customer_id = 'CD-C1'") == [
        ("Changsha",)]
    # Dates and decimals as the file writes them, decided over the whole column.
    assert refreshed.query("select order_id, order_at from marts.fct_orders where order_id like 'DF-%' order by 1") == [
        ("DF-O1", datetime(2019, 1, 3)), ("DF-O2", datetime(2019, 1, 13)), ("DF-O3", datetime(2019, 2, 28, 14, 5))]
    assert orders["DC-O1"][1] == 1234.5 and orders["DC-O2"][1] == 12.5
    # A line-level file's orders: amounts are the sums of the lines that agree; a return nets out.
    assert refreshed.query("select order_id, amount, status, net_amount from marts.fct_orders where order_id like 'LL-%' "
                           "order by 1") == [("LL-O1", 26.45, "paid", 26.45), ("LL-O3", -8.22, "refunded", -8.22)]
    assert refreshed.query("select detail from marts.fct_quarantined_rows where source_file = '2026-01-27/sales.csv'"
                           ) == [("customer_id differs from line 1 of the order, which was kept",)]
    assert refreshed.query("select detail from marts.fct_quarantined_rows where source_file = '2026-01-15/orders.csv'"
                           ) == [("same order_id and updated_at as row 3 of 2026-01-15/orders.csv, which has other "
                                  "values and was kept",)]
    long_name = refreshed.query("select product_name from marts.dim_products where product_id = 'LT-P1'")[0][0]
    assert long_name == "x" * ONE_MEGABYTE


def test_formula_like_values_land_unchanged(row_cases):
    refreshed, _ = row_cases
    assert refreshed.query("select product_name, category from marts.dim_products where product_id like 'FI-%' "
                           "order by product_id") == [
        ('=HYPERLINK("http://x.example/","click")', "+cmd|' /C calc'!A0"), ("-2+3", "@SUM(1)")]
    assert refreshed.query("select rep_name, team, region from marts.dim_sales_reps where rep_id like 'FI-%' "
                           "order by rep_id") == [
        ("=cmd|' /C notepad'!A1", "+team", "-north"), ("@rep", "\tlead", "=region")]
    assert refreshed.query("select campaign_name from marts.dim_campaigns where campaign_id = 'FI-K1'") == [("=1+1",)]
    assert refreshed.query("select channel, amount from marts.fct_orders where order_id = 'FI-O1'") == [
        ("=online", 15.0)]


def test_unknown_columns_are_kept_per_row_and_reported(row_cases):
    refreshed, metadata = row_cases
    extras = refreshed.query("select _source_file, _extra_columns from raw.orders where _extra_columns is not null "
                             "order by 1")
    assert [(f, json.loads(e)) for f, e in extras] == [
        ("2026-01-10/orders.csv", {"coupon_code": "SAVE5", "备注": "加急"}),
        ('2026-01-18/"sales".csv', {'a"; drop table raw.orders; --': "x');drop table raw.orders;--"}),
    ]
    assert json.loads(refreshed.query("select extra_columns from raw._ingest_log "
                                      "where source_file = '2026-01-10/orders.csv'")[0][0]) == ["coupon_code", "备注"]
    assert metadata["orders"]["extra_columns"].value == ['a"; drop table raw.orders; --', "coupon_code", "备注"]


def test_hostile_file_and_folder_names_are_skipped_or_kept_as_data(row_cases):
    refreshed, _ = row_cases
    _, warnings = ingest.find_drops(refreshed.exports)
    assert sorted(warnings) == [
        f"{HOSTILE_EXPORTS}/2026-01-18'; drop table raw.orders; --: not a drop folder named YYYY-MM-DD, skipped",
        f"{HOSTILE_EXPORTS}/2026-01-18/orders'; drop table raw.orders; --.csv: "
        "not a .csv/.txt/.tsv/.parquet file named after an entity, skipped (to read it, list it under its entity "
        'in mapping.yml, e.g. orders: files: ["orders\'; drop table raw.orders; --.csv"])',
    ]
    assert refreshed.query("select entity, rows_read from marts.fct_reconciliation "
                           "where source_file = '2026-01-18/\"sales\".csv'") == [("orders", 1)]
    assert refreshed.query("select count(*) from raw.orders") == refreshed.query(
        "select sum(rows_loaded) from raw._ingest_log where entity = 'orders'")


# ------------------------------------------------------------------------------------------------ drops over time


def fingerprint(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def snapshot(work: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(work), read_only=True) as con:
        return {
            "raw.orders": fingerprint(con, "select * exclude (_loaded_at) from raw.orders"),
            # (file_identity: the refresh re-checked copies of the loaded files and remembered them as they are now.)
            "raw._ingest_log": fingerprint(con, "select * exclude (file_identity) from raw._ingest_log"),
            "raw._quarantine": fingerprint(con, "select * from raw._quarantine"),
            "marts.fct_orders": fingerprint(con, "select * from marts.fct_orders"),
            "marts.fct_reconciliation": fingerprint(con, "select * from marts.fct_reconciliation"),
        }


def test_an_older_drop_arriving_late_loses_to_the_newer(row_cases):
    refreshed, _ = row_cases
    # Loaded in the order they arrived, each once: the newer drop's file was skipped as already loaded.
    assert refreshed.query("select source_file from raw._ingest_log where source_file like '2026-02-0%' "
                           "order by loaded_at") == [("2026-02-02/orders.csv",), ("2026-02-01/orders.csv",)]
    # The newer version (refunded, updated 02-02) stays; the late drop's new order lands.
    assert refreshed.query("select order_id, status, amount_original from marts.fct_orders "
                           "where order_id like 'OO-%' order by 1") == [("OO-O1", "refunded", 80.0),
                                                                         ("OO-O2", "paid", 30.0)]


def test_a_malformed_file_stops_the_refresh_and_changes_nothing(row_cases, tmp_path):
    source, _ = row_cases
    exports = tmp_path / HOSTILE_EXPORTS
    shutil.copytree(source.exports, exports)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    warehouse.parent.mkdir()
    shutil.copy2(work_database_path(source.warehouse), work_database_path(warehouse))
    before = snapshot(work_database_path(warehouse))
    shutil.copytree(CORPUS / "wrong_delimiter" / "2026-01-02", exports / "2026-03-01")

    with pytest.raises(RefreshError) as error:
        refresh_recording(exports, warehouse)

    assert str(error.value) == (
        f"refresh failed: raw_exports: {HOSTILE_EXPORTS}/2026-03-01/orders.csv: none of its 2 row(s) could be read "
        "(row 1: wrong field count: Expected Number of Columns: 4 Found: 1); the header has 4 column(s) separated "
        "by ','")
    # Nothing loaded or built before changed; the failed load's quarantine rows were rolled back with it.
    assert snapshot(work_database_path(warehouse)) == before


# ------------------------------------------------------------------------------------------------ file-level cases

# Case -> the one-line message the refresh stops with (the file as exports-folder/drop/file, then the problem).
FILE_CASES = {
    "empty_file": "exports/2026-01-02/orders.csv: empty file, no header",
    "blank_header": "exports/2026-01-02/orders.csv: empty header line",
    "missing_required_column":
        "exports/2026-01-02/orders.csv: missing required column 'order_date' (found: order_id, customer_id, amount; if "
        "the file calls it otherwise, say so in mapping.yml, e.g. orders: columns: {<name in the file>: order_date})",
    "duplicated_header_column": "exports/2026-01-02/orders.csv: duplicated header column 'Amount'",
    "wrong_delimiter":
        "exports/2026-01-02/orders.csv: none of its 2 row(s) could be read (row 1: wrong field count: Expected "
        "Number of Columns: 4 Found: 1); the header has 4 column(s) separated by ','",
    "unknown_delimiter":
        "exports/2026-01-02/orders.csv: missing required columns 'customer_id', 'order_date' (found: "
        "order_id:customer_id:order_date:amount; only one column: is the delimiter one of , ; tab | or whitespace? "
        "(set delimiter in mapping.yml))",
    "not_text": "exports/2026-01-02/orders.csv: file is neither UTF-8 nor GB18030 text: save it as UTF-8, or name "
                "its encoding in its section of mapping.yml (e.g. encoding: windows-1252, as Excel saves CSV on a "
                "Western European Windows)",
    "broken_utf16": "exports/2026-01-02/orders.csv: starts with a UTF-16 byte order mark but is not UTF-16 text",
}


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def loaded(con) -> dict[str, list[tuple]]:
    return {
        "orders": con.execute("select order_id, _source_file from raw.orders order by all").fetchall(),
        "log": con.execute("select source_file, rows_read from raw._ingest_log order by all").fetchall(),
        "quarantine": con.execute("select * from raw._quarantine").fetchall(),
    }


@pytest.mark.parametrize("case", FILE_CASES)
def test_a_malformed_file_stops_with_a_message_and_earlier_data_is_untouched(con, tmp_path, case):
    exports = tmp_path / "exports"
    shutil.copytree(CORPUS / case, exports)

    with pytest.raises(IngestError) as error:
        ingest_all(con, exports)

    assert str(error.value) == FILE_CASES[case]
    assert loaded(con) == {"orders": [("G-O1", "2026-01-01/orders.csv")],
                           "log": [("2026-01-01/orders.csv", 1)], "quarantine": []}
    assert con.execute("select count(*) from duckdb_tables() where temporary").fetchone() == (0,)


@pytest.mark.parametrize("majority", ["utf-8", "gb18030"])
def test_in_a_mixed_file_a_line_valid_in_both_encodings_is_read_in_the_files_majority_one(con, tmp_path, majority):
    minority = "gb18030" if majority == "utf-8" else "utf-8"
    # Odd-length Chinese names make a UTF-8 line invalid GB18030, and GB18030 Chinese is never valid UTF-8.
    lines = [("M1", "欧阳修", majority), ("M2", "王安石", majority), ("M3", "司马光", minority),
             ("M4", "café", "utf-8")]  # c3 a9 is "é" in UTF-8 and "茅" in GB18030
    path = tmp_path / "exports" / "2026-01-04" / "customers.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"customer_id,name\n" + b"".join(f"{i},{n}\n".encode(e) for i, n, e in lines))

    (result,) = ingest_all(con, tmp_path / "exports").files

    assert (result.encoding, result.rows_loaded) == ("utf-8+gb18030", 4)
    assert dict(con.execute("select customer_id, name from raw.customers").fetchall()) == {
        "M1": "欧阳修", "M2": "王安石", "M3": "司马光", "M4": "café" if majority == "utf-8" else "caf茅"}


# ------------------------------------------------------------------------------------------------ paths and SQL


def test_links_and_dot_dot_paths_out_of_the_exports_folder_are_refused(con, tmp_path):
    exports = tmp_path / "exports"
    shutil.copytree(CORPUS / "empty_file" / "2026-01-01", exports / "2026-01-01")
    outside = tmp_path / "outside"
    shutil.copytree(CORPUS / "bom" / "2026-01-02", outside)
    ingest_all(con, exports)
    before = loaded(con)

    (exports / "2026-01-02").mkdir()
    (exports / "2026-01-02" / "orders.csv").symlink_to(outside / "orders.csv")
    with pytest.raises(IngestError, match=r"2026-01-02/orders\.csv: path is outside the exports folder"):
        ingest_all(con, exports)
    shutil.rmtree(exports / "2026-01-02")
    (exports / "2026-01-03").symlink_to(outside, target_is_directory=True)
    with pytest.raises(IngestError, match=r"2026-01-03/customers\.csv: path is outside the exports folder"):
        ingest_all(con, exports)
    with pytest.raises(IngestError, match="path is outside the exports folder"):
        ingest.ingest_file(con, exports, date(2026, 1, 4), exports / "2026-01-01" / ".." / ".." / "outside" /
                           "orders.csv", ENTITIES_BY_NAME["orders"])
    (exports / "2026-01-03").unlink()
    (exports / "2026-01-05").mkdir()
    (exports / "2026-01-05" / "orders.csv").symlink_to(tmp_path / "gone.csv")
    assert ingest_all(con, exports).warnings == [
        "exports/2026-01-05/orders.csv: link whose target is missing or not a file, skipped"]
    assert loaded(con) == before


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_glob_characters_in_the_exports_path_never_read_another_folder(con, tmp_path, suffix):
    """DuckDB's readers expand * ? [ ] in a path: exports[1] would match exports1, exports* every exports..."""
    def deliver(folder: Path, order_id: str) -> None:
        path = folder / "2026-01-01" / f"orders{suffix}"
        path.parent.mkdir(parents=True)
        query = f"select '{order_id}' as order_id, 'C1' as customer_id, '2026-01-01' as order_date, '1' as amount"
        duckdb.connect().execute(f"copy ({query}) to '{path}' (format {suffix[1:]})")

    exports = tmp_path / "exp[o]rts*"
    deliver(exports, "MINE")
    deliver(tmp_path / "exports", "NEIGHBOUR")
    deliver(tmp_path / "exp[o]rts-old", "OLDER")

    (result,) = ingest_all(con, exports).files

    assert result.rows_read == 1
    assert con.execute("select order_id from raw.orders").fetchall() == [("MINE",)]


EVIL_AS_OF = "2024-01-01'; drop table raw.orders; --"


def test_an_as_of_setting_that_is_not_a_date_is_refused_before_any_sql(tmp_path):
    cli = subprocess.run([str(Path(sys.executable).parent / "crm-warehouse"), "refresh", "--exports", str(tmp_path),
                          "--warehouse", str(tmp_path / "crm.duckdb"), "--as-of", EVIL_AS_OF],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1
    assert cli.stderr.strip().splitlines() == [
        f"crm-warehouse: error: as-of date {EVIL_AS_OF!r} is not a date in YYYY-MM-DD form"]

    # The same string set as the warehouse resource's config (the Dagster UI's launchpad) stops the dbt step
    # before dbt runs: it never reaches int_as_of's SQL.
    settings = Settings(exports_dir=tmp_path, warehouse=tmp_path / "crm.duckdb", as_of=None,
                        schedule_timezone="Asia/Shanghai")
    resources = build_definitions(settings).resources
    warehouse = resources["warehouse"]
    with DagsterInstance.ephemeral() as instance:
        result = materialize([dbt_models()], instance=instance, raise_on_error=False, resources={
            "warehouse": type(warehouse)(**{**warehouse.model_dump(), "as_of": EVIL_AS_OF}), "dbt": dbt_resource(),
            "models": resources["models"]})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert f"as-of date {EVIL_AS_OF!r} is not a date in YYYY-MM-DD form" in str(failure.step_failure_data.error)
    work = work_database_path(tmp_path / "crm.duckdb")
    if work.exists():  # dbt never ran: nothing was built
        with duckdb.connect(str(work), read_only=True) as con:
            assert con.execute("select count(*) from duckdb_tables()").fetchone() == (0,)
