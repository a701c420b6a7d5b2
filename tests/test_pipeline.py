"""The whole warehouse, end to end: a generated export materialised through the real Dagster job (ingestion, dbt,
analytics) into a real DuckDB file, checked against the generator's ground truth."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from conftest import CORE_GROUPS, Refreshed, copy_of, refresh
from dagster_project.contract import ENTITIES

pytestmark = pytest.mark.slow

MARTS = ("dim_customers", "dim_products", "dim_sales_reps", "dim_campaigns", "dim_dates", "fct_orders",
         "fct_order_items", "fct_interactions", "fct_opportunities", "fct_opportunity_stages", "fct_tickets",
         "fct_surveys", "customer_360")


def csv_data_rows(path: Path) -> int:
    """Data rows in an export file, counted independently of ingestion (the csv module, header excluded)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    return sum(1 for row in csv.reader(io.StringIO(text)) if row) - 1


def table_fingerprint(refreshed: Refreshed, table: str) -> str:
    """A hash of a table's full contents, independent of row order."""
    with refreshed.connect() as con:
        rows = con.execute(f"select * from {table}").fetchall()
    return hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()


def test_every_row_read_is_accounted_for(refreshed):
    files = refreshed.query("select source_file, rows_read, unaccounted_rows from marts.fct_reconciliation")
    assert len(files) == len(list(refreshed.exports.glob("*/*.csv")))
    for source_file, rows_read, unaccounted in files:
        assert unaccounted == 0, source_file
        assert rows_read == csv_data_rows(refreshed.exports / source_file), source_file
    landed_orders = refreshed.scalar(
        "select sum(rows_landed) from marts.fct_reconciliation where entity = 'orders'")
    assert landed_orders == refreshed.scalar("select count(*) from marts.fct_orders")
    # The publication recorded the quarantine each file went out with (the gate's memory: dagster_project.publish.gate).
    assert refreshed.query("select count(*), sum(rows_read) from meta.published_quarantine") == refreshed.query(
        "select count(*), sum(rows_read) from marts.fct_reconciliation")


def test_duplicate_customers_are_merged_as_the_ground_truth_says(refreshed):
    truth = pd.read_parquet(refreshed.truth / "customers_truth.parquet")[["customer_id", "person_id"]]
    # CRM ids reach the marts' pseudonymous keys only through the restricted schema.
    resolved = pd.DataFrame(refreshed.query("select source_customer_id, customer_key from restricted.customer_ids"),
                            columns=["customer_id", "customer_key"])
    joined = truth.astype({"customer_id": str}).merge(resolved, on="customer_id")
    assert len(joined) == len(truth)

    def pairs(frame: pd.DataFrame, by: str) -> set[tuple[str, str]]:
        return {tuple(sorted(p)) for _, group in frame.groupby(by) for p in itertools.combinations(group.customer_id, 2)}

    true_pairs, found_pairs = pairs(joined, "person_id"), pairs(joined, "customer_key")
    precision = len(true_pairs & found_pairs) / len(found_pairs)
    recall = len(true_pairs & found_pairs) / len(true_pairs)
    print(f"identity resolution on {len(truth)} ids, {len(true_pairs)} true duplicate pairs: "
          f"precision {precision:.3f}, recall {recall:.3f}")
    assert len(true_pairs) > 20
    assert precision >= 0.98 and recall >= 0.98
    assert refreshed.scalar("select count(*) from marts.dim_customers") == truth.person_id.nunique()


def test_planted_bad_rows_are_quarantined_with_a_reason(refreshed):
    planted = pd.read_parquet(refreshed.truth / "planted_issues.parquet")
    quarantined = pd.DataFrame(refreshed.query("""
        select q.entity, q.reason, coalesce(o.order_id, i.order_id || '|' || i.line_number, n.interaction_id) as key
        from marts.fct_quarantined_rows q
        left join raw.orders o on q.entity = 'orders' and o._source_file = q.source_file and o._row_number = q.row_number
        left join raw.order_items i on q.entity = 'order_items' and i._source_file = q.source_file
             and i._row_number = q.row_number
        left join raw.interactions n on q.entity = 'interactions' and n._source_file = q.source_file
             and n._row_number = q.row_number
    """), columns=["entity", "reason", "key"])
    expected_reason = {
        "unparseable_date": "unparseable order_date", "negative_quantity": "non-positive quantity",
        "non_numeric_quantity": "non-numeric quantity", "orphan_order": "orphan: order_id not found in orders",
        "orphan_customer": "orphan: customer_id not found in customers or orders",
    }
    assert len(planted) > 5
    for issue in planted.itertuples():
        match = quarantined[(quarantined.entity == issue.entity) & (quarantined.key == str(issue.key))]
        assert expected_reason[issue.kind] in set(match.reason), issue


def test_gb18030_file_with_chinese_headers_and_dates_lands(refreshed):
    (source_file,) = refreshed.query(
        "select source_file from raw._ingest_log where encoding = 'gb18030' and entity = 'customers'")[0]
    loaded, with_dates = refreshed.query(f"""
        select count(*), count(signup_date) from staging.base_crm__customers
        where _source_file = '{source_file}' and _quarantine_reason is null
    """)[0]
    assert loaded == csv_data_rows(refreshed.exports / source_file) and with_dates == loaded


def test_marts_are_populated_and_money_is_in_the_reporting_currency(refreshed):
    for table in MARTS:
        assert refreshed.scalar(f"select count(*) from marts.{table}") > 0, table
    usd = refreshed.query("select amount_original, amount from marts.fct_orders where currency = 'USD' limit 1")
    assert usd and usd[0][1] == pytest.approx(usd[0][0] * 1.0 / 0.1389, abs=0.005)


def test_a_second_refresh_on_the_same_drops_changes_nothing(refreshed, tmp_path):
    copy = copy_of(refreshed, tmp_path)
    before = {t: table_fingerprint(copy, f"marts.{t}") for t in MARTS}
    raw_before = copy.scalar("select count(*) from raw._ingest_log")
    # Rebuilt in full (a plain refresh would find nothing changed and do nothing: tests/test_daily_refresh.py).
    refresh(copy.exports, copy.warehouse, groups=CORE_GROUPS, full_refresh=True)
    assert copy.scalar("select count(*) from raw._ingest_log") == raw_before
    assert {t: table_fingerprint(copy, f"marts.{t}") for t in MARTS} == before


def test_a_new_drop_changes_only_what_it_should(refreshed, tmp_path):
    copy = copy_of(refreshed, tmp_path)
    as_of = copy.scalar("select as_of_date from intermediate.int_as_of")
    customer, crm_id = copy.query("""
        select customer_key, golden_customer_id
        from marts.dim_customers join restricted.customer_pii using (customer_key)
        where not is_inferred order by 1 limit 1""")[0]
    orders_before = table_fingerprint(copy, "marts.fct_orders")
    customers_before = set(copy.query("select * from marts.dim_customers"))

    drop = copy.exports / "2026-11-01"
    drop.mkdir()
    (drop / "orders.csv").write_text(
        f"order_id,customer_id,order_date,amount\nNEW-1,{crm_id},{as_of} 12:00:00,88.00\n")
    (drop / "customers.csv").write_text(
        f"customer_id,name,email,signup_date\nNEWC-1,New Person,new.person@example.com,{as_of}\n")
    refresh(copy.exports, copy.warehouse, groups=CORE_GROUPS)

    assert copy.scalar("select count(*) from raw.orders where _drop_date = '2026-11-01'") == 1
    new_orders = copy.query("select order_id, customer_key, net_amount from marts.fct_orders where order_id = 'NEW-1'")
    assert new_orders == [("NEW-1", customer, 88.0)]
    assert copy.scalar("select count(*) from marts.fct_orders") == refreshed.scalar(
        "select count(*) from marts.fct_orders") + 1
    assert table_fingerprint(copy, "(select * from marts.fct_orders where order_id <> 'NEW-1')") == orders_before
    customers_after = set(copy.query("select * from marts.dim_customers"))
    new_key = copy.scalar("select customer_key from restricted.customer_ids where source_customer_id = 'NEWC-1'")
    assert [row[0] for row in customers_after - customers_before] == [new_key]
    assert customers_before - customers_after == set()


def test_as_of_replays_a_past_date(sample_export, tmp_path):
    exports, _ = sample_export
    replay = Refreshed(exports, Path(), tmp_path / "replay.duckdb")
    refresh(exports, replay.warehouse, as_of=date(2026, 3, 31), groups=CORE_GROUPS)
    assert replay.scalar("select as_of_date from intermediate.int_as_of") == date(2026, 3, 31)
    for table, column in (("fct_orders", "order_date"), ("fct_interactions", "occurred_date"),
                          ("fct_tickets", "opened_at"), ("fct_surveys", "answered_date")):
        assert replay.scalar(f"select max({column})::date from marts.{table}") <= date(2026, 3, 31), table
    assert replay.scalar("select max(last_order_date) from marts.customer_360") <= date(2026, 3, 31)
    assert replay.scalar("select sum(unaccounted_rows) from marts.fct_reconciliation") == 0
    assert replay.scalar("select sum(rows_deferred) from marts.fct_reconciliation") > 0


def test_an_orders_only_export_gets_every_analysis_its_data_supports(orders_only):
    only = orders_only
    written = sum(1 for _ in (only.exports / "2026-06-30" / "orders.csv").open()) - 1

    assert only.scalar("select count(*) from marts.fct_orders") == written
    assert only.scalar("select count(*) from marts.dim_customers") == 120
    assert only.scalar("select count(*) from marts.customer_360 where orders_count > 0") == 120
    for empty in ("fct_interactions", "fct_opportunities", "fct_tickets", "fct_surveys", "dim_products",
                  "fct_order_items", "dim_campaigns"):
        assert only.scalar(f"select count(*) from marts.{empty}") == 0, empty
    assert only.scalar("select sum(unaccounted_rows) from marts.fct_reconciliation") == 0
    for supported in ("rfm_segments", "cpm_states", "spend_deciles", "cohort_retention", "customer_clv"):
        assert only.scalar(f"select count(*) from analytics.{supported}") > 0, supported
    for unsupported in ("funnel_stages", "campaign_effectiveness", "service_metrics", "product_pairs"):
        assert only.scalar(f"select count(*) from analytics.{unsupported}") == 0, unsupported


def test_raw_tables_have_every_contract_column_and_lineage(refreshed):
    with refreshed.connect() as con:
        for entity in ENTITIES:
            columns = {r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
                [entity.name]).fetchall()}
            assert set(entity.column_names) | {"_source_file", "_drop_date", "_row_number", "_loaded_at"} <= columns
