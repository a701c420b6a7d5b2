"""Real-world export shapes through the real refresh, with hand-checked figures (tests/real_exports/*/expected.json,
written by each fixture's expected.py from the file with the rules spelled out, not by this project).

The shapes that need no mapping file are refreshed together (each has its own drop date and ids), with the CRM deals
export, whose mapping file speaks of opportunities alone; the ones that need one for orders, or that must stop the
refresh, run on their own. The real public transaction log (CDNOW, as the lifetimes wheel
ships it) runs the whole refresh through the command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from conftest import CORE_GROUPS, Ingested, Refreshed, copy_of, ingest_all, refresh
from dagster_project import ingest
from dagster_project.ingest import MappingError, load_mapping
from dagster_project.defs.refresh import RefreshError
from dagster_project.publish.gate import publication_problems, record_published_quarantine

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "real_exports"
TOGETHER = ["superstore_lines", "online_retail_invoices", "marketplace_olist", "chinese_crm", "mixed_line_endings",
            "decimal_comma", "crm_deals_hubspot"]


def expected(name: str) -> dict:
    return json.loads((FIXTURES / name / "expected.json").read_text())


def drop_of(name: str) -> str:
    (folder,) = [p.name for p in (FIXTURES / name / "exports").iterdir() if p.is_dir()]
    return folder


@pytest.fixture(scope="module")
def together(tmp_path_factory) -> Refreshed:
    root = tmp_path_factory.mktemp("real_exports")
    for name in TOGETHER:
        shutil.copytree(FIXTURES / name / "exports", root / "exports", dirs_exist_ok=True)
    warehouse = root / "warehouse" / "crm.duckdb"
    return Refreshed(root / "exports", Path(), warehouse, refresh(root / "exports", warehouse, groups=CORE_GROUPS))


def orders_of(refreshed: Refreshed, name: str) -> dict:
    """The fixture's orders as the marts have them (its drop folder tells its rows apart)."""
    (orders, paid, credit_notes, cancelled, refunded, revenue, gross, customers, first, last) = refreshed.query(
        "select count(*), count(*) filter (where o.is_paid), count(*) filter (where o.amount < 0), "
        "count(*) filter (where o.status = 'cancelled'), count(*) filter (where o.status = 'refunded' and o.amount > 0), "
        "cast(sum(o.net_amount) as decimal(18, 2)), cast(sum(o.amount) filter (where o.is_paid) as decimal(18, 2)), "
        "count(distinct o.customer_key) filter (where o.is_paid), min(o.order_date), max(o.order_date) "
        "from marts.fct_orders as o join intermediate.int_orders_deduplicated as d using (order_id) "
        "where cast(d._drop_date as varchar) = $drop", {"drop": drop_of(name)})[0]
    return dict(orders=orders, paid=paid, credit_notes=credit_notes, cancelled=cancelled, refunded=refunded,
                revenue=float(revenue), gross=float(gross or 0), customers=customers, first=first.isoformat(),
                last=last.isoformat())


def order_amount(refreshed: Refreshed, order_id: str) -> float:
    return refreshed.scalar("select amount from marts.fct_orders where order_id = $id", {"id": order_id})


def reconciliation(refreshed: Refreshed, name: str) -> list[tuple]:
    return refreshed.query(
        "select entity, rows_read, rows_landed, rows_quarantined, rows_unattributed, unaccounted_rows "
        "from marts.fct_reconciliation where source_file like $drop || '/%' order by entity",
        {"drop": drop_of(name)})


def test_a_line_level_sales_file_dropped_as_orders_lands_as_lines_and_derived_orders(together):
    want = expected("superstore_lines")
    got = orders_of(together, "superstore_lines")
    assert (got["orders"], got["paid"], got["customers"], got["revenue"]) == (
        want["orders"], want["orders"], want["customers"], want["revenue"])
    # DD/MM/YY: the year is 2019, never 0003, and a day above 12 decided the order.
    assert (got["first"], got["last"]) == (want["first_order_date"], want["last_order_date"])
    for order_id, amount in want["order_amounts"].items():
        assert order_amount(together, order_id) == pytest.approx(amount, abs=0.005)
    # Every line lands: none quarantined as a conflicting duplicate of its order's other lines.
    assert reconciliation(together, "superstore_lines") == [("order_items", want["lines"], want["lines"], 0, 0, 0)]
    lines = together.query(
        "select count(*), cast(sum(line_amount) as double), count(*) filter (where line_amount <= 0), "
        "count(*) filter (where discount < 0) from marts.fct_order_items as i "
        "join intermediate.int_orders_deduplicated as d using (order_id) where cast(d._drop_date as varchar) = $drop",
        {"drop": drop_of("superstore_lines")})[0]
    # The Discount column is a rate: the line amount is the file's Sales, never quantity x price - 0.2.
    assert lines == (want["lines"], pytest.approx(want["revenue"]), 0, 0)
    (log,) = together.query("select entity, dropped_as, date_formats from raw._ingest_log "
                            "where source_file like '2020-01-05/%'")
    assert log[:2] == ("order_items", "orders")
    assert json.loads(log[2])["order_date"]["format"] == "DD/MM/YY"
    for customer, count in want["orders_per_customer"].items():
        assert together.scalar(
            "select count(*) from intermediate.int_orders_deduplicated where source_customer_id = $c", {"c": customer}
        ) == count


def test_an_invoice_log_nets_cancellations_and_counts_lines_without_a_customer(together):
    want = expected("online_retail_invoices")
    got = orders_of(together, "online_retail_invoices")
    assert (got["orders"], got["paid"], got["credit_notes"], got["customers"]) == (
        want["orders"], want["paid_orders"], want["credit_notes"], want["customers"])
    assert (got["revenue"], got["gross"]) == (want["revenue"], want["gross_revenue"])
    for order_id, amount in want["order_amounts"].items():
        assert order_amount(together, order_id) == pytest.approx(amount, abs=0.005)
    # M/D/YYYY H:MM, decided by 12/13/2010.
    assert (got["first"], got["last"]) == ("2010-12-01", "2011-01-07")
    # Guest lines are counted, not lost, and are no customer's order.
    landed = want["lines"] - want["lines_without_customer"]
    assert reconciliation(together, "online_retail_invoices") == [
        ("order_items", want["lines"], landed, 0, want["lines_without_customer"], 0)]
    # A customer id a spreadsheet wrote as 17850.0 is customer 17850.
    assert together.scalar("select count(*) from intermediate.int_orders_deduplicated "
                           "where source_customer_id = '17850'") > 0
    # Credit notes net out of the customer's revenue, measured where every report reads it.
    assert together.scalar("select cast(sum(revenue) as double) from marts.customer_360 where customer_key in "
                           "(select o.customer_key from marts.fct_orders as o join intermediate.int_orders_deduplicated "
                           "as d using (order_id) where cast(d._drop_date as varchar) = '2011-01-10')"
                           ) == pytest.approx(want["revenue"])


def test_a_marketplace_export_resolves_per_order_customer_ids_to_the_person(together):
    want = expected("marketplace_olist")
    got = orders_of(together, "marketplace_olist")
    assert (got["orders"], got["paid"], got["cancelled"], got["customers"], got["revenue"]) == (
        want["orders"], want["paid_orders"], want["cancelled_orders"], want["customers"], want["revenue"])
    (person, orders) = next(iter(want["orders_per_person"].items()))
    assert together.scalar(
        "select count(*) from intermediate.int_orders_deduplicated where customer_key in ("
        "  select i.customer_key from intermediate.int_customer_identities_resolved as i"
        "  join staging.stg_crm__customers as c on c.customer_id = i.source_customer_id where c.person_id = $p)",
        {"p": person}) == orders
    assert together.scalar("select count(distinct customer_key) from intermediate.int_customer_identities_resolved "
                           "where source_customer_id in (select customer_id from staging.stg_crm__customers "
                           "where person_id is not null)") == want["persons"]
    # The order file has no amount: each order's amount is the sum of its items' prices (freight is not revenue).
    assert [row[0] for row in reconciliation(together, "marketplace_olist")] == ["customers", "order_items", "orders"]
    assert all(row[3] == 0 and row[5] == 0 for row in reconciliation(together, "marketplace_olist"))


def test_a_chinese_crm_export_in_gb18030(together):
    want = expected("chinese_crm")
    got = orders_of(together, "chinese_crm")
    assert (got["orders"], got["paid"], got["cancelled"], got["refunded"], got["customers"], got["revenue"]) == (
        want["orders"], want["paid_orders"], want["cancelled_orders"], want["refunded_orders"], want["customers"],
        want["revenue"])


@pytest.mark.parametrize("name", ["mixed_line_endings", "decimal_comma"])
def test_text_file_variants_read_to_the_cent(together, name):
    want = expected(name)
    got = orders_of(together, name)
    assert (got["orders"], got["customers"], got["revenue"]) == (want["orders"], want["customers"], want["revenue"])
    if "first_order_date" in want:
        assert (got["first"], got["last"]) == (want["first_order_date"], want["last_order_date"])


def test_the_progress_line_and_the_ingest_log_say_how_each_file_was_read(together):
    logs = dict(together.query("select source_file, date_formats from raw._ingest_log"))
    decimal = together.query("select decimal_mark, delimiter from raw._ingest_log where source_file like '2026-03-01/%'")
    assert decimal == [(",", ";")]
    assert json.loads(logs["2026-03-01/orders.csv"])["order_date"] == {"format": "DD/MM/YYYY", "evidence": "13.01.2026"}
    assert json.loads(logs["2011-01-10/orders.csv"])["order_date"]["format"] == "MM/DD/YYYY"


# ---------------------------------------------------------------------------------------------------- ingest only


def load(tmp_path: Path, name: str) -> tuple[duckdb.DuckDBPyConnection, Ingested]:
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURES / name / "exports", exports)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    mapping = load_mapping(exports / "mapping.yml") if (exports / "mapping.yml").exists() else None
    return con, ingest_all(con, exports, mapping=mapping)


def test_a_crm_s_closed_deals_close_at_their_close_date_and_an_open_deal_s_estimate_is_ignored(together):
    """HubSpot exports each deal once, as it stands, with no stage history: a closed deal's Close Date is when it
    closed (not its Create Date, which made every deal close in 0 days), an open deal's is an estimate (past, on the
    overdue 9001234507) that closes nothing."""
    want = expected("crm_deals_hubspot")
    deals = {row[0]: row[1:] for row in together.query(
        "select opportunity_id, stage, is_closed, closed_at, days_to_close, amount from marts.fct_opportunities "
        "where opportunity_id like '90012345%'")}
    assert len(deals) == want["deals"]
    stages = [stage for stage, *_ in deals.values()]
    assert (stages.count("won"), stages.count("lost")) == (want["won"], want["lost"])
    assert sum(not closed for _, closed, *_ in deals.values()) == want["open"]
    assert {i: closed_at.isoformat() for i, (_, _, closed_at, *_) in deals.items() if closed_at} == want["closed_at"]
    # The mart counts whole hours, as DuckDB's date_diff('hour') does: within an hour of the exact figure.
    assert {i: days for i, (_, _, _, days, _) in deals.items() if days is not None} == pytest.approx(
        want["days_to_close"], abs=1 / 24)
    assert sum(amount for stage, _, _, _, amount in deals.values() if stage == "won") == pytest.approx(
        want["won_amount"] * together.scalar("select usd_per_unit from reference.currency_rates where currency = 'USD'")
        / together.scalar("select usd_per_unit from reference.currency_rates where currency = 'CNY'"), abs=0.01)


def test_a_whitespace_aligned_log_without_header_reads_with_a_mapping_file(tmp_path):
    want = expected("whitespace_log")
    con, result = load(tmp_path, "whitespace_log")
    (file,) = result.files
    assert (file.delimiter, file.rows_read, file.rows_loaded, file.rows_quarantined) == ("whitespace", 41, 41, 0)
    assert con.execute("select count(distinct customer_id), cast(sum(cast(amount as decimal(18, 2))) as double), "
                       "min(order_date), max(order_date) from raw.orders").fetchone() == (
        want["customers"], pytest.approx(want["revenue"]), want["first_order_date"] + " 00:00:00",
        want["last_order_date"] + " 00:00:00")
    assert "order_date read as YYYYMMDD" in file.notes


def test_a_file_without_its_mapping_file_stops_naming_what_to_map(tmp_path):
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURES / "whitespace_log" / "exports", exports)
    (exports / "mapping.yml").unlink()
    with pytest.raises(ingest.IngestError, match=r"1998-07-01/orders.txt: missing required columns 'customer_id', "
                                                 r"'order_date' .*mapping.yml"):
        ingest_all(duckdb.connect(), exports)


def test_a_date_column_that_never_decides_is_quarantined_as_ambiguous(tmp_path):
    con, result = load(tmp_path, "ambiguous_dates")
    (file,) = result.files
    assert (file.rows_read, file.rows_loaded, file.rows_quarantined) == (10, 0, 10)
    reasons = con.execute("select distinct reason, detail like 'order_date = __/__/2025: %' or "
                          "detail like 'order_date = __/__/2026: %' from raw._quarantine").fetchall()
    assert reasons == [("ambiguous date order", True)]


def test_the_mapping_file_decides_an_ambiguous_date_column(tmp_path):
    want = expected("ambiguous_dates_mapped")
    con, result = load(tmp_path, "ambiguous_dates_mapped")
    assert result.files[0].rows_loaded == want["orders"]
    assert con.execute("select min(order_date), max(order_date) from raw.orders").fetchone() == (
        want["first_order_date"] + " 00:00:00", want["last_order_date"] + " 00:00:00")


@pytest.mark.parametrize("text, error", [
    ("orders:\n  columns:\n    dollar_value: amunt\n", r"mapping.yml:3: 'amunt' is not a column of orders"),
    ("orderz:\n  delimiter: ','\n", r"mapping.yml:1: unknown entity 'orderz'"),
    ("orders:\n  delimiter: '#'\n", r"mapping.yml:2: delimiter '#' is not one of"),
    ("orders:\n  date_format: 'dd/mm/yyyy'\n", r"mapping.yml:2: date_format 'dd/mm/yyyy' is not a strftime format"),
    ("orders:\n  grain: lines\n", r"mapping.yml:2: grain must be line or order"),
    ("orders:\n  header: customer_id\n", r"mapping.yml:2: header must be a list"),
    ("orders:\n  sheet: 1\n", r"mapping.yml:2: unknown setting 'sheet'"),
    ("orders:\n  encoding: base64\n", r"mapping.yml:2: 'base64' is not a text encoding Python knows"),
    ("orders:\n  skip_rows: two\n", r"mapping.yml:2: skip_rows must be a whole number of lines"),
    ("orders:\n  skip_footer: -1\n", r"mapping.yml:2: skip_footer must be a whole number of lines"),
    ("tickets:\n  timezone: PST\n", r"mapping.yml:2: timezone 'PST' is not a time zone name"),
    ("orders:\n  status_values:\n    pending: unpaid\n",
     r"mapping.yml:3: a status of orders maps to paid, cancelled, refunded or credit_note, not 'unpaid'"),
    ("customers:\n  status_values: {vip: paid}\n", r"mapping.yml:2: status_values maps the statuses of orders and "
                                                    r"tickets and the stages of opportunities, not the values of "
                                                    r"customers"),
    ("tickets:\n  status_overrides: [Escalation]\n", r"mapping.yml:2: status_overrides names more status columns "
                                                       r"of orders, not of tickets"),
    ("orders:\n  status_overrides: Return Status\n", r"mapping.yml:2: status_overrides must be a list"),
    ("orders:\n  status_overrides: [Return Status]\n", r"mapping.yml:2: status_overrides needs status_values"),
    ("orders: [\n", r"mapping.yml:2: not valid YAML"),
])
def test_an_invalid_mapping_file_stops_with_file_line_and_problem(tmp_path, text, error):
    (tmp_path / "mapping.yml").write_text(text)
    with pytest.raises(MappingError, match=error):
        load_mapping(tmp_path / "mapping.yml")


# ---------------------------------------------------------------------------------------------------- stopping


def test_a_refresh_that_would_publish_nonsense_stops_and_keeps_the_publication(refreshed, tmp_path):
    """Every order row quarantined (dates that never decide their order): the refresh fails before publishing,
    naming the file, the share and the reason with an example, and yesterday's warehouse stays."""
    copy = copy_of(refreshed, tmp_path)
    published = copy.warehouse.read_bytes()
    drop = copy.exports / "2026-11-02"
    shutil.copytree(FIXTURES / "ambiguous_dates" / "exports" / "2026-02-01", drop)
    with pytest.raises(RefreshError) as error:
        refresh(copy.exports, copy.warehouse, as_of=date(2026, 10, 31))
    message = str(error.value)
    assert "2026-11-02/orders.csv: 100% of 10 rows quarantined (limit 5%, CRM_MAX_QUARANTINE_SHARE): " \
           "ambiguous date order 10 (e.g. row 1: order_date = 03/01/2025" in message
    assert copy.warehouse.read_bytes() == published

    # Let through once, on purpose (a publication with a higher share records what each file went out with, as
    # test_pipeline checks): later refreshes judge that file again only if it loses more rows. The working copy keeps
    # every load, so it would otherwise stop every refresh after it.
    with duckdb.connect(str(copy.work)) as con:
        record_published_quarantine(con, "let-through")
        assert con.execute("select rows_read, rows_quarantined from meta.published_quarantine "
                           "where source_file = '2026-11-02/orders.csv'").fetchall() == [(10, 10)]
        assert publication_problems(con, 0.05) == []
        con.execute("update meta.published_quarantine set rows_quarantined = 9 "
                    "where source_file = '2026-11-02/orders.csv'")
        (problem,) = publication_problems(con, 0.05)
    assert problem.startswith("2026-11-02/orders.csv: 100% of 10 rows quarantined")


def test_amounts_that_name_no_currency_stop_until_the_mapping_or_a_setting_names_one(tmp_path):
    """Superstore's Sales are dollars, written bare: read in the built-in default currency they would be published as
    yuan. Until the user names a currency the refresh stops; the mapping file's currency lets it go on."""
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURES / "superstore_lines" / "exports", exports)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    unnamed = {"currency_named": False}
    with pytest.raises(RefreshError, match=r"2020-01-05/orders.csv: amounts name no currency \(no currency column, no "
                                           r"symbol or code such as \$ or USD\), and no setting names one, so they "
                                           r"would be read as CNY. Say which currency .* mapping.yml, or "
                                           r"--default-currency USD \(CRM_DEFAULT_CURRENCY\)"):
        refresh(exports, warehouse, groups=("ingest",), settings_overrides=unnamed)
    (exports / "mapping.yml").write_text("orders:\n  currency: USD\n")
    refresh(exports, warehouse, groups=("ingest",), settings_overrides=unnamed)
    with Refreshed(exports, Path(), warehouse).connect() as con:
        assert con.execute("select currency, count(*) from raw.order_items group by all").fetchall() == [("USD", 30)]
        assert con.execute("select amounts_without_currency from raw._ingest_log").fetchall() == [(False,)]


def test_order_lines_that_price_orders_without_an_amount_stop_until_their_currency_is_named(tmp_path):
    """Olist's orders file has no amount and no currency: an order's amount is the sum of its lines, in the lines'
    currency, and its lines (reais) carry neither the order's customer nor its date, nor a currency. Read in the
    built-in default they were published as yuan. The stop names the lines file; the default currency or the lines'
    mapping section lets it go on, and a generated export's lines (priced by orders that have amounts) never stop."""
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURES / "marketplace_olist" / "exports", exports)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    unnamed = {"currency_named": False}
    with pytest.raises(RefreshError, match=r"2018-09-01/order_items.csv: the order lines price orders that have no "
                                           r"amount of their own, and their amounts name no currency .* would be "
                                           r"read as CNY"):
        refresh(exports, warehouse, groups=("ingest",), settings_overrides=unnamed)
    refresh(exports, warehouse, groups=("ingest",),
            settings_overrides={"default_currency": "BRL", "currency_named": True})
    (exports / "mapping.yml").write_text("order_items:\n  currency: BRL\n")
    refresh(exports, warehouse, groups=("ingest",), settings_overrides=unnamed)
    with Refreshed(exports, Path(), warehouse).connect() as con:
        assert con.execute("select currency, count(*) from raw.order_items group by all").fetchall() == [("BRL", 25)]
        assert not ingest.lines_pricing_orders_without_currency(con)


def test_a_refresh_with_no_paid_order_fails_instead_of_publishing_an_empty_warehouse(tmp_path):
    exports = tmp_path / "exports"
    shutil.copytree(FIXTURES / "ambiguous_dates" / "exports", exports)
    with pytest.raises(RefreshError, match="no paid order would be published"):
        refresh(exports, tmp_path / "warehouse" / "crm.duckdb", groups=CORE_GROUPS)


# ---------------------------------------------------------------------------------------------------- CDNOW

CDNOW_MAPPING = """\
orders:
  header: [customer_id, customer_index, date, number_of_cds, dollar_value]
  delimiter: whitespace
  columns:
    dollar_value: amount
    date: order_date
"""


def cdnow_sample(cache: Path) -> bytes:
    """CDNOW_sample.txt from the lifetimes 0.11.3 wheel (downloaded once into the tests' temp root)."""
    wheels = list(cache.glob("*.whl"))
    if not wheels:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "lifetimes==0.11.3",
                               "-d", str(cache)], capture_output=True, text=True, timeout=300)
        wheels = list(cache.glob("*.whl"))
        if done.returncode or not wheels:
            pytest.fail(f"cannot download the lifetimes 0.11.3 wheel that ships the CDNOW sample: {done.stderr}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        return wheel.read("lifetimes/datasets/CDNOW_sample.txt")


def test_the_cdnow_transaction_log_as_published_runs_end_to_end(tmp_path_factory, tmp_path):
    sample = cdnow_sample(tmp_path_factory.getbasetemp() / "lifetimes_wheel")
    assert sample.count(b"\r\n") == 6919  # dropped as it is: no header, aligned with spaces, CR LF
    drop = tmp_path / "exports" / "1998-07-01"
    drop.mkdir(parents=True)
    (drop / "orders.txt").write_bytes(sample)
    (tmp_path / "exports" / "mapping.yml").write_text(CDNOW_MAPPING)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    # As a new user runs it: no setting left in the environment by the refreshes this process ran before.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k == "CRM_PSEUDONYM_KEY"}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    (tmp_path / "dagster_home").mkdir()
    done = subprocess.run([str(Path(sys.executable).with_name("crm-warehouse")), "refresh", "--exports",
                           str(tmp_path / "exports"), "--warehouse", str(warehouse), "--currency", "USD"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*), count(distinct customer_key), cast(sum(net_amount) as double), "
                           "min(order_date), max(order_date) from marts.fct_orders").fetchone() == (
            6919, 2357, pytest.approx(244091.94), date(1997, 1, 1), date(1998, 6, 30))
        assert con.execute("select rows_read, rows_quarantined, unaccounted_rows from marts.fct_reconciliation"
                           ).fetchall() == [(6919, 0, 0)]
        assert con.execute("select count(*) from analytics.rfm_segments").fetchone() == (2357,)


# ---------------------------------------------------------------------------------------------------- a shop system


# The next day's Shopify export: a partial refund (Refunded Amount on the order's first line), and the financial
# statuses of orders not yet captured, which the shop's mapping.yml maps (status_values).
SHOP_NEXT_DAY = """\
Name,Email,Financial Status,Subtotal,Total,Discount Amount,Created at,Lineitem quantity,Lineitem price,Lineitem sku,Refunded Amount
#1004,Anna@Example.DE,partially_refunded,1259.50,1259.50,0.00,2024-03-05 18:30:00 +0100,1,1250.00,BOO-1,9.50
#1004,,,,,,,1,9.50,SOC-1,
#1005,dora@example.fr,pending,12.60,15.60,0.00,2024-03-06 11:00:00 +0100,3,4.20,SOAP,0.00
#1009,gus@example.com,Authorized,25.00,25.00,0.00,2024-03-12 14:00:00 +0100,1,25.00,TIE-1,0.00
#1010,eve@example.com,on-hold,30.00,30.00,0.00,2024-03-13 09:00:00 +0100,1,30.00,SCA-2,0.00
"""


def test_a_shop_export_with_order_fields_on_the_first_line_only(tmp_path):
    """Shopify-style: one row per line item, the order's e-mail, status, totals and date on its first line only, the
    order's Subtotal (a line amount synonym) and Discount Amount on that line. Each order counts its lines once, at
    quantity x price, less its discount once. A partially refunded order is paid, its revenue less the refund; the
    statuses mapping.yml maps are read as it says. The shop's help desk (Zendesk-style: created in UTC, solved in the
    agent's time) gets its times in the shop's time zone, so a ticket's hours to resolve are right. The shop names
    buyers by e-mail, as typed: Anna@Example.DE is anna@example.de."""
    from test_ingest_values import SHOP, SHOP_MAPPING

    for drop, text in (("2024-03-31", SHOP), ("2024-04-01", SHOP_NEXT_DAY)):
        (tmp_path / "exports" / drop).mkdir(parents=True)
        (tmp_path / "exports" / drop / "orders.csv").write_text(text)
    (tmp_path / "exports" / "2024-03-31" / "tickets.csv").write_text(
        "Id,Requester email,Created at,Solved at,Status\n"
        "T1,anna@example.de,2024-03-01T17:00:00Z,2024-03-01 09:30:00 -0800,Solved\n"
        "T2,ben@example.com,2024-03-03T20:00:00Z,2024-03-04 08:00:00 -0800,Solved\n")
    (tmp_path / "exports" / "mapping.yml").write_text(
        SHOP_MAPPING + "  status_values:\n    pending: cancelled\n    authorized: paid\n"
        "tickets:\n  columns:\n    Requester email: customer_id\n  timezone: America/Los_Angeles\n")
    shop = Refreshed(tmp_path / "exports", Path(), tmp_path / "wh" / "crm.duckdb")
    refresh(shop.exports, shop.warehouse, groups=CORE_GROUPS, settings_overrides={"max_quarantine_share": 0.25})
    assert shop.query("select order_id, amount, status, net_amount, refunded_amount from marts.fct_orders "
                      "order by 1") == [
        ("#1001", 158.99, "paid", 158.99, None), ("#1002", 48.85, "paid", 48.85, None),
        ("#1003", 20.0, "refunded", 0.0, None), ("#1004", 1259.5, "paid", 1250.0, 9.5),
        ("#1005", 12.6, "cancelled", 0.0, 0.0), ("#1009", 25.0, "paid", 25.0, 0.0)]
    # The order's discount, on its first line, counts once: #1002 is its Total, 53.85 - 5.00.
    assert shop.query("select cast(sum(line_amount) as decimal(18, 2)) from marts.fct_order_items "
                      "where order_id <= '#1003'") == [(Decimal("227.84"),)]
    assert shop.query("select count(distinct customer_key) from marts.fct_orders where order_id in ('#1001', '#1004')"
                      ) == [(1,)]
    assert shop.query("select orders_count, revenue from marts.customer_360 where customer_key = (select customer_key "
                      "from marts.fct_orders where order_id = '#1004')") == [(2, 1408.99)]
    # One definition of revenue: the customer's is the sum of the orders' net amounts, the refund deducted.
    assert shop.query("select round(sum(net_amount), 2) from marts.fct_orders") == shop.query(
        "select round(sum(revenue), 2) from marts.customer_360") == [(1482.84,)]
    assert shop.query("select rows_read, rows_landed, rows_quarantined, unaccounted_rows "
                      "from marts.fct_reconciliation order by source_file") == [(5, 5, 0, 0), (2, 2, 0, 0),
                                                                                (5, 4, 1, 0)]
    # As written, T1 would have been solved 7.5 hours before it was opened.
    assert shop.query("select ticket_id, opened_at, resolution_hours, status from marts.fct_tickets order by 1") == [
        ("T1", datetime(2024, 3, 1, 9, 0), 0.5, "resolved"), ("T2", datetime(2024, 3, 3, 12, 0), 20.0, "resolved")]
    # A status neither the contract nor the mapping knows is quarantined, and the gate names every such value.
    with shop.connect() as con:
        assert publication_problems(con, 0.05) == [
            "2024-04-01/orders.csv: 20% of 5 rows quarantined (limit 5%, CRM_MAX_QUARANTINE_SHARE): unknown status 1 "
            "(e.g. row 5, status = 'on-hold'; values 'on-hold'; map such values with status_values in mapping.yml)"]


def test_a_line_level_order_delivered_again_with_a_line_removed_loses_that_line(tmp_path):
    """A shop or ERP export of recent orders delivers each order whole. An order edited in the shop (one of its three
    items removed) and exported again the next day counts the two lines it has now: the removed line is superseded,
    not kept at its old position, and the incremental build that applies the new day gets there."""
    from test_incremental import dbt_build, load

    exports, work = tmp_path / "exports", tmp_path / "crm.work.duckdb"
    header = "order_id,order_date,customer_id,product_id,quantity,unit_price\n"
    for drop, rows in (("2024-03-01", ["A1,2024-03-01,C1,P1,1,10.00", "A1,2024-03-01,C1,P2,1,20.00",
                                       "A1,2024-03-01,C1,P3,1,30.00", "A2,2024-03-01,C2,P1,1,5.00"]),
                       ("2024-03-02", ["A1,2024-03-01,C1,P1,1,10.00", "A1,2024-03-01,C1,P2,1,20.00",
                                       "A3,2024-03-02,C3,P4,1,7.00"])):
        (tmp_path / drop).mkdir()
        (tmp_path / drop / "sales.csv").write_text(header + "\n".join(rows) + "\n")
    built = Refreshed(exports, Path(), tmp_path / "crm.duckdb")
    shutil.copytree(tmp_path / "2024-03-01", exports / "2024-03-01")
    load(work, exports)
    dbt_build(work, tmp_path / "target")
    assert built.query("select order_id, amount from marts.fct_orders order by 1") == [("A1", 60.0), ("A2", 5.0)]

    shutil.copytree(tmp_path / "2024-03-02", exports / "2024-03-02")
    load(work, exports)
    dbt_build(work, tmp_path / "target")
    assert built.query("select order_id, amount from marts.fct_orders order by 1") == [
        ("A1", 30.0), ("A2", 5.0), ("A3", 7.0)]
    assert built.query("select order_id, product_id from marts.fct_order_items order by 1, 2") == [
        ("A1", "P1"), ("A1", "P2"), ("A2", "P1"), ("A3", "P4")]
    assert built.query("select _source_file, _row_number, outcome, detail from audit.audit_raw_rows_classified "
                       "where outcome <> 'landed' order by 1, 2") == [
        ("2024-03-01/sales.csv", 1, "superseded", None), ("2024-03-01/sales.csv", 2, "superseded", None),
        ("2024-03-01/sales.csv", 3, "superseded", "the drop of 2024-03-02 delivered the order again without this line")]
    assert built.query("select sum(unaccounted_rows) from marts.fct_reconciliation") == [(0,)]


def test_the_gate_shows_the_value_a_reason_names_and_never_a_personal_one():
    """Zendesk's text satisfaction ('Good') quarantined as "satisfaction not 1-5" shows its value; a personal column's
    value is withheld, an empty one said to be empty. On a working database made by hand: the gate reads only the
    reconciliation, the quarantine and the raw rows."""
    con = duckdb.connect()
    con.execute("create schema marts; create schema raw")
    con.execute("create table marts.fct_orders as select true as is_paid")
    con.execute("create table marts.fct_reconciliation as select '2024-03-31/tickets.csv' as source_file, "
                "'tickets' as entity, 4 as rows_read, 3 as rows_quarantined")
    con.execute("create table marts.fct_quarantined_rows as select * from (values "
                "('2024-03-31/tickets.csv', 'satisfaction not 1-5', 1, null), "
                "('2024-03-31/tickets.csv', 'satisfaction not 1-5', 2, null), "
                "('2024-03-31/tickets.csv', 'missing customer_id', 3, null)) "
                "as t(source_file, reason, row_number, detail)")
    con.execute("create table raw.tickets as select * from (values ('2024-03-31/tickets.csv', 1, 'Good', 'ann'), "
                "('2024-03-31/tickets.csv', 2, 'Bad', 'bob'), ('2024-03-31/tickets.csv', 3, 'Good', null)) "
                "as t(_source_file, _row_number, satisfaction, customer_id)")
    assert publication_problems(con, 0.05) == [
        "2024-03-31/tickets.csv: 75% of 4 rows quarantined (limit 5%, CRM_MAX_QUARANTINE_SHARE): "
        "satisfaction not 1-5 2 (e.g. row 1, satisfaction = 'Good'); missing customer_id 1 (e.g. row 3, customer_id "
        "empty)"]
    con.execute("update raw.tickets set customer_id = 'carl' where _row_number = 3")
    assert publication_problems(con, 0.05)[0].endswith(
        "missing customer_id 1 (e.g. row 3, customer_id: personal column, value withheld)")
    # No order read at all, and the drop's orders under a name no entity has: the gate names the file.
    con.execute("create or replace table marts.fct_orders as select true as is_paid where false")
    skipped = ["exports/2024-03-31/Order.all.20240301_20240331.csv: not a .csv/.txt/.tsv/.parquet file named after "
               "an entity, skipped"]
    assert publication_problems(con, 1.0, skipped) == [
        "no paid order would be published (0 order and order-line rows read): the export was misread or holds no "
        "sales; fix the export or mapping.yml and refresh again; not read: " + skipped[0]]
    con.execute("create or replace table marts.fct_orders as select true as is_paid")
    # WooCommerce's guests, all customer 0: the gate says what to map.
    con.execute("delete from marts.fct_reconciliation; delete from marts.fct_quarantined_rows")
    con.execute("insert into marts.fct_reconciliation values ('2024-03-31/orders.csv', 'orders', 10, 4)")
    con.execute("insert into marts.fct_quarantined_rows select '2024-03-31/orders.csv', 'guest customer_id', i, null "
                "from range(1, 5) as t(i)")
    assert publication_problems(con, 0.05) == [
        "2024-03-31/orders.csv: 40% of 10 rows quarantined (limit 5%, CRM_MAX_QUARANTINE_SHARE): guest customer_id 4 "
        "(e.g. row 1: customer id 0, as shop systems (WooCommerce) write a guest's; map a column naming the buyer "
        "(e.g. Billing Email) as customer_id in mapping.yml)"]
    # eBay's Mar-01-24: an unparseable date's example says date_format.
    con.execute("delete from marts.fct_quarantined_rows")
    con.execute("insert into marts.fct_quarantined_rows select '2024-03-31/orders.csv', 'unparseable order_date', i, "
                "null from range(1, 5) as t(i)")
    con.execute("create table raw.orders as select '2024-03-31/orders.csv' as _source_file, 1 as _row_number, "
                "'Mar-01-24' as order_date")
    assert publication_problems(con, 0.05)[0].endswith(
        "unparseable order_date 4 (e.g. row 1, order_date = 'Mar-01-24'; if the file writes its dates so, set "
        "date_format for orders in mapping.yml (e.g. \"%b-%d-%y\" for Mar-01-24))")
