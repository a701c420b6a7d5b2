"""How a file's dates and decimals are read, decided by evidence over whole columns (dagster_project.ingest.values),
and the ingestion cases a first real export taught us: a shop system's order fields on each line, a mapping naming
a column the file lacks, a date_format that does not fit."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import ingest_all
from dagster_project import ingest
from dagster_project.ingest.mapping import NO_MAPPING, EntityMapping, load_mapping
from dagster_project.ingest.values import classify, decide_day_month, read_date_column

DROP = date(2020, 1, 5)


def read(values: list[str], mapping: EntityMapping = NO_MAPPING, drop: date = DROP,
         meridiem: bool = False) -> tuple[str, list[str | None]]:
    """How a column of these values is read, and each value as ISO text (None where it stays as delivered)."""
    parts = Counter(v.split(" ")[0].split("T")[0] for v in values)
    reading = read_date_column("d", parts, mapping, drop, personal=False, meridiem=meridiem)
    con = duckdb.connect()
    if reading.expression is None:
        return reading.format, [None] * len(values)
    return reading.format, [con.execute(f"select {reading.expression} from (select ? as d)", [v]).fetchone()[0]
                            for v in values]


@pytest.mark.parametrize("values, form, iso", [
    # 13/01 rules out month-first; read year-first, 28/02/19 would be 19 February 2028, after the drop.
    (["03/01/19", "13/01/19 14:05", "28/02/19"], "DD/MM/YY",
     ["2019-01-03 00:00:00", "2019-01-13 14:05:00", "2019-02-28 00:00:00"]),
    # A first field above 31 is no day or month: Korean and Japanese exports write a two-digit year first.
    (["98.03.05", "99.12.31 9:30"], "YY/MM/DD", ["1998-03-05 00:00:00", "1999-12-31 09:30:00"]),
    (["12/1/2010 8:26", "12/13/2010"], "MM/DD/YYYY", ["2010-12-01 08:26:00", "2010-12-13 00:00:00"]),
    (["3/4/2021 2:05 PM", "25/4/2021"], "DD/MM/YYYY", ["2021-04-03 14:05:00", "2021-04-25 00:00:00"]),
    (["19970101", "19980630"], "YYYYMMDD", ["1997-01-01 00:00:00", "1998-06-30 00:00:00"]),
    (["2019.01.03"], "YYYY.MM.DD", ["2019-01-03 00:00:00"]),
    (["31.01.2026", "05.02.2026"], "DD/MM/YYYY", ["2026-01-31 00:00:00", "2026-02-05 00:00:00"]),
    # Excel's serial day numbers: 14:00 is stored a hair below 0.58333.
    (["43831", "45354.5833333"], "Excel serial days", ["2020-01-01 00:00:00", "2024-03-03 14:00:00"]),
])
def test_a_date_column_is_read_by_the_evidence_of_all_its_values(values, form, iso):
    assert read(values) == (form, iso)


@pytest.mark.parametrize("values, drop", [
    (["24.03.05", "24.03.11", "24.03.22"], date(2024, 3, 25)),  # 5 March 2024, or 24 March 2005?
    (["24.03.25", "24.03.28"], date(2024, 3, 25)),  # after the drop either way: no reading is borne out
    (["03/01/19", "13/01/19"], DROP),  # 13 January 2019, or 19 January 2013?
])
def test_two_digit_dates_that_may_as_well_be_year_first_are_ambiguous(values, drop):
    reading = read_date_column("d", Counter(values), NO_MAPPING, drop, personal=False)
    assert (reading.format, reading.expression) == ("ambiguous date order", None) and reading.ambiguous is not None
    assert reading.undecided == "the order of day, month and two-digit year"


def test_iso_dates_with_a_twelve_hour_time_get_the_twenty_four_hour_time():
    form, iso = read(["2024-03-02 2:05 PM", "2024-03-03 12:30 am", "2024/3/5T11:00:59PM", "2024-03-06 14:00",
                      "2024-03-07", "2024/3/8 下午 02:05:10", "2024-03-09 上午 12:15"], meridiem=True)
    assert form == "ISO with AM/PM"
    assert iso == ["2024-03-02 14:05:00", "2024-03-03 00:30:00", "2024-03-05 23:00:59", None, None,
                   "2024-03-08 14:05:10", "2024-03-09 00:15:00"]


def test_dates_naming_their_month_in_english_are_read_as_named_and_other_values_left_to_dbt():
    values = ["Mar 1, 2024 9:12:45 AM", "March 12, 2024", "Mar 31, 2024 12:00:00 AM", "1 Mar 2024 14:05",
              "01-Mar-2024", "01-Mar-24", "N/A"]
    parts = Counter(v.split(" ")[0].split("T")[0] for v in values)
    reading = read_date_column("d", parts, NO_MAPPING, DROP, personal=False, month_names=True)
    con = duckdb.connect()
    iso = [con.execute(f"select {reading.expression} from (select ? as d)", [v]).fetchone()[0] for v in values]
    # A two-digit year's century would be DuckDB's guess: left as delivered, for dbt to quarantine as unparseable.
    assert (reading.format, iso) == ("English month names", [
        "2024-03-01 09:12:45", "2024-03-12 00:00:00", "2024-03-31 00:00:00", "2024-03-01 14:05:00",
        "2024-03-01 00:00:00", None, None])


def test_a_magento_export_s_dates_land_as_iso(tmp_path):
    con, result = load(tmp_path, 'order_id,customer_id,order_date,amount\nO1,C1,"Mar 1, 2024 9:12:45 PM",10\n'
                                 'O2,C1,"Mar 2, 2024 10:00:00 AM",20\nO3,C1,2024-03-03,30\n')
    assert [r[0] for r in con.execute("select order_date from raw.orders order by _row_number").fetchall()] == [
        "2024-03-01 21:12:45", "2024-03-02 10:00:00", "2024-03-03"]
    assert result.files[0].notes == ["order_date read as ISO + English month names"]
    # Without a month name, nothing is tried: an ISO column costs no extra scan.
    con, result = load(tmp_path / "iso", "order_id,customer_id,order_date,amount\nO1,C1,2024-03-01 9:12 PM,10\n")
    assert result.files[0].notes == ["order_date read as ISO with AM/PM"]


def test_a_file_s_twelve_hour_times_land_as_twenty_four_hour_times(tmp_path):
    con, result = load(tmp_path, "order_id,customer_id,order_date,amount\nO1,C1,2024-06-02 2:05 PM,10\n"
                                 "O2,C1,2024-06-03 12:30 AM,20\nO3,C1,2024-06-04 09:15,30\n"
                                 "O4,C1,2024/6/5 下午 9:05:01,40\n")
    assert [r[0] for r in con.execute("select order_date from raw.orders order by _row_number").fetchall()] == [
        "2024-06-02 14:05:00", "2024-06-03 00:30:00", "2024-06-04 09:15", "2024-06-05 21:05:01"]
    assert "order_date read as ISO with AM/PM" in result.files[0].notes


ZONED = ("order_id,customer_id,order_date,amount,updated_at\n"
         # Zendesk's API writes UTC (Z), its CSV export the agent's offset: both say 09:00 and 09:30 in Los Angeles.
         "O1,C1,2024-03-01T17:00:00Z,10,2024-03-01 09:30:00 -0800\n"
         "O2,C1,2024-07-01T17:00:00.250Z,20,2024-07-01 10:30:00-07:00\n"
         "O3,C1,2024-07-02 08:00,30,2024-07-02 09:00 America/Los_Angeles\n")


def test_times_in_time_zones_hours_apart_stop_and_the_mapping_s_timezone_converts_them(tmp_path):
    """Read as written (DuckDB's cast to TIMESTAMP drops a zone), O1 would have been updated 7.5 hours before it was
    placed."""
    with pytest.raises(ingest.IngestError, match=r"exports/2024-06-30/orders.csv: its times are written in time zones "
                                                 r"more than an hour apart \(order_date: Z; updated_at: -07:00, -0800, "
                                                 r"America/Los_Angeles\), .* set timezone for orders in mapping.yml "
                                                 r"\(e.g. timezone: America/Los_Angeles, or UTC\)"):
        load(tmp_path, ZONED)
    # The session's own time zone plays no part.
    con, result = load(tmp_path / "mapped", ZONED, mapping="orders:\n  timezone: America/Los_Angeles\n",
                       session_time_zone="Asia/Tokyo")
    assert con.execute("select order_date, updated_at from raw.orders order by _row_number").fetchall() == [
        ("2024-03-01 09:00:00", "2024-03-01 09:30:00"), ("2024-07-01 10:00:00", "2024-07-01 10:30:00"),
        ("2024-07-02 08:00", "2024-07-02 09:00:00")]
    assert result.files[0].notes == ["order_date read as ISO + time zones converted to America/Los_Angeles",
                                     "updated_at read as ISO + time zones converted to America/Los_Angeles"]


def test_one_place_s_winter_and_summer_offsets_are_read_as_written_and_an_unknown_zone_stops(tmp_path):
    """A shop's export in its own time (Shopify writes -0500 in winter and -0400 in summer) keeps its local times."""
    text = ("order_id,customer_id,order_date,amount\n"
            "O1,C1,2024-03-01 09:00:00 -0500,10\nO2,C1,2024-07-01 09:00:00 -0400,20\n")
    con, result = load(tmp_path, text)
    assert con.execute("select order_date from raw.orders order by _row_number").fetchall() == [
        ("2024-03-01 09:00:00 -0500",), ("2024-07-01 09:00:00 -0400",)]
    assert result.files[0].notes == ["times read as written in their time zone (order_date: -0400, -0500); set "
                                     "timezone for orders in mapping.yml to convert them"]
    with pytest.raises(ingest.IngestError, match=r"orders.csv: order_date names a time zone that cannot be applied "
                                                 r"\(Mars/Olympus\)"):
        load(tmp_path / "mars", "order_id,customer_id,order_date,amount\nO1,C1,2024-03-01 09:00 Mars/Olympus,10\n")


def test_dates_dbt_reads_as_they_are_stay_as_delivered():
    assert read(["2025-08-27", "2025/8/27 14:05", "2025年8月27日"]) == ("ISO", [None, None, None])


def test_two_digit_years_fall_in_the_century_ending_twenty_years_after_the_drop():
    _, iso = read(["13/01/40", "13/01/41", "13/01/99"], drop=date(2020, 1, 5))
    assert iso == ["2040-01-13 00:00:00", "1941-01-13 00:00:00", "1999-01-13 00:00:00"]


def test_a_column_that_never_decides_is_ambiguous_and_one_deciding_both_ways_too():
    assert decide_day_month(Counter(["03/01/2025", "04/02/2025"])) == (None, None)
    assert decide_day_month(Counter(["13/01/2025", "01/13/2025"]))[0] == "mixed"
    reading = read_date_column("d", Counter(["03/01/2025"]), NO_MAPPING, DROP, personal=False)
    assert reading.format == "ambiguous date order" and reading.ambiguous is not None
    # The mapping's format decides it, and values it does not fit are told apart.
    mapped = read_date_column("d", Counter(["03/01/2025"]), EntityMapping(date_format="%d/%m/%Y"), DROP, False)
    assert (mapped.format, mapped.ambiguous, mapped.unfit is not None) == ("mapping %d/%m/%Y", None, True)


def test_the_deciding_value_of_a_personal_column_is_not_logged():
    reading = read_date_column("birth_date", Counter(["13/01/1980", "03/01/1980"]), NO_MAPPING, DROP, personal=True)
    assert (reading.format, reading.evidence) == ("DD/MM/YYYY", None)


def test_values_are_classified_by_shape():
    assert [classify(v) for v in ["2025-08-27", "3/1/19", "19970101", "2019.01.03", "43831.5", "99999999", "N/A"]] == [
        "native", "day_month", "compact", "dotted_ymd", "serial", "unknown", "unknown"]


# ---------------------------------------------------------------------------------------------------- files


def load(tmp_path: Path, text: str, name: str = "orders.csv", mapping: str | None = None,
         session_time_zone: str | None = None):
    exports = tmp_path / "exports"
    (exports / "2024-06-30").mkdir(parents=True)
    (exports / "2024-06-30" / name).write_text(text)
    loaded = None
    if mapping is not None:
        (exports / "mapping.yml").write_text(mapping)
        loaded = load_mapping(exports / "mapping.yml")
    con = duckdb.connect()
    if session_time_zone:
        con.execute(f"set TimeZone = '{session_time_zone}'")
    return con, ingest_all(con, exports, mapping=loaded)


@pytest.mark.parametrize("delimiter, amounts, read_as", [
    (";", ["1.299", "12.800", "850"], ["1299", "12800", "850"]),  # Germany: whole euros, points group thousands
    (";", ["1.299,00", "12,5", "850"], ["1299.00", "12.5", "850"]),
    (",", ['"1,299"', '"12,800"', "850"], ["1,299", "12,800", "850"]),  # the US: dbt drops the grouping commas
    (",", ['"12,5"', "7"], ["12.5", "7"]),  # a decimal comma, quoted in a comma-separated file
])
def test_the_decimal_mark_is_decided_by_the_whole_file(tmp_path, delimiter, amounts, read_as):
    rows = [delimiter.join(["order_id", "customer_id", "order_date", "amount"])]
    rows += [delimiter.join([f"O{i}", "C1", "2024-06-01", a]) for i, a in enumerate(amounts)]
    con, _ = load(tmp_path, "\n".join(rows) + "\n")
    assert [r[0] for r in con.execute("select amount from raw.orders order by _row_number").fetchall()] == read_as


@pytest.mark.parametrize("delimiter, amounts, problem", [
    ("\t", ["1.299", "12.800"], "'1.299' may be a decimal or thousands; no value of the file decides"),
    (";", ["1.299,50", "12.50"], "its numbers mix decimal commas ('1.299,50') and decimal points ('12.50')"),
])
def test_a_decimal_mark_the_file_cannot_tell_stops_naming_file_and_setting(tmp_path, delimiter, amounts, problem):
    rows = [delimiter.join(["order_id", "customer_id", "order_date", "amount"])]
    rows += [delimiter.join([f"O{i}", "C1", "2024-06-01", a]) for i, a in enumerate(amounts)]
    with pytest.raises(ingest.IngestError) as error:
        load(tmp_path, "\n".join(rows) + "\n")
    assert str(error.value) == (f"exports/2024-06-30/orders.csv: cannot tell its decimal mark: {problem}; set decimal "
                                "(\".\" or \",\") for orders in mapping.yml")


SHOP = """\
Name,Email,Financial Status,Subtotal,Total,Discount Amount,Created at,Lineitem quantity,Lineitem price,Lineitem sku
#1001,anna@example.de,paid,158.99,158.99,0.00,2024-03-01 14:22:01 +0100,1,29.99,THR-05
#1001,,,,,,,1,129.00,JAC-11
#1002,ben@example.com,paid,53.85,48.85,5.00,2024-03-03 10:00:00 +0100,2,17.95,CAP-02
#1002,,,,,,,1,17.95,CAP-03
#1003,cai@example.com,refunded,20.00,20.00,0.00,2024-03-04 09:00:00 +0100,1,20.00,MUG-01
"""
SHOP_MAPPING = """\
orders:
  columns:
    Name: order_id
    Email: customer_id
    Financial Status: status
    Lineitem quantity: quantity
    Lineitem price: unit_price
    Lineitem sku: product_id
"""


def test_order_fields_on_every_line_of_a_shop_export_are_not_counted_per_line(tmp_path):
    con, result = load(tmp_path, SHOP, mapping=SHOP_MAPPING)
    (file,) = result.files
    assert (file.entity, file.dropped_as) == ("order_items", "orders")
    # Subtotal (a line_amount synonym) holds the order's value: kept aside, lines priced by unit. Discount Amount,
    # on the order's first line only, counts once as it stands.
    assert "'Subtotal' holds one value per order: kept as the order's, not the line's; lines priced at quantity x " \
           "unit price" in file.notes
    assert con.execute("select count(line_amount), count(discount), count(*) from raw.order_items").fetchone() == (
        0, 3, 5)
    assert con.execute("select json_extract_string(_extra_columns, '$.Subtotal') from raw.order_items "
                       "where _row_number = 1").fetchone() == ("158.99",)


def test_a_real_system_s_export_name_is_read_as_the_entity_the_mapping_names(tmp_path):
    """Shopee names its orders Order.all.20240301_20240331.csv: skipped (with a warning) until mapping.yml's files
    names its entity, in any case."""
    text = "order_id,customer_id,order_date,amount\nS1,C1,2024-03-01,10\n"
    con, result = load(tmp_path, text, name="Order.all.20240301_20240331.csv")
    assert not result.files and result.warnings == [
        "exports/2024-06-30/Order.all.20240301_20240331.csv: not a .csv/.txt/.tsv/.parquet file named after an "
        'entity, skipped (to read it, list it under its entity in mapping.yml, e.g. orders: files: '
        '["Order.all.20240301_20240331.csv"])']
    con, result = load(tmp_path / "mapped", text, name="Order.all.20240301_20240331.csv",
                       mapping='orders:\n  files: ["order.all.*.csv"]\n')
    assert not result.warnings and con.execute("select order_id, _source_file from raw.orders").fetchall() == [
        ("S1", "2024-06-30/Order.all.20240301_20240331.csv")]


@pytest.mark.parametrize("text, error", [
    ('orders:\n  files: "Order.all.*.csv"\n', r"mapping.yml:2: files must be a list of file names"),
    ('orders:\n  files: ["2024-03-31/Order.all.csv"]\n', r"mapping.yml:2: files must list file names .*not paths"),
    ('orders:\n  files: ["deals*.csv"]\nopportunities:\n  files: ["Deals*.csv"]\n',
     r"mapping.yml:3: files 'deals\*.csv' is also listed for orders"),
])
def test_a_files_setting_that_cannot_route_stops(tmp_path, text, error):
    (tmp_path / "mapping.yml").write_text(text)
    with pytest.raises(ingest.MappingError, match=error):
        load_mapping(tmp_path / "mapping.yml")


def test_a_mapping_naming_a_column_the_file_lacks_stops_instead_of_being_ignored(tmp_path):
    with pytest.raises(ingest.IngestError, match=r"exports/2024-06-30/orders.csv: mapping.yml maps 'bestelstatus', "
                                                 r"which the file does not have \(columns: Bestellnummer, "):
        load(tmp_path, "Bestellnummer,Kunde,Datum,Betrag,Bestellstatus\nB1,K1,2024-06-01,10,storniert\n",
             mapping="orders:\n  columns:\n    Bestellnummer: order_id\n    Kunde: customer_id\n"
                     "    Datum: order_date\n    Betrag: amount\n    Bestelstatus: status\n")


def test_a_date_format_per_column_and_values_it_does_not_fit_quarantined(tmp_path):
    text = ("order_id,customer_id,order_date,amount,updated_at\n"
            "O1,C1,04/10/2024,10,4/10/2024 8:32 PM\nO2,C1,04/11/2024,10,2024-04-11\n")
    con, result = load(tmp_path, text, mapping='orders:\n  date_format:\n    order_date: "%m/%d/%Y"\n'
                                                '    updated_at: "%m/%d/%Y %I:%M %p"\n')
    assert (result.files[0].rows_loaded, result.files[0].rows_quarantined) == (1, 1)
    assert con.execute("select order_date, updated_at from raw.orders").fetchall() == [
        ("2024-04-10 00:00:00", "2024-04-10 20:32:00")]
    assert con.execute("select reason, detail from raw._quarantine").fetchall() == [
        ("date does not fit date_format", "updated_at = 2024-04-11 is not %m/%d/%Y %I:%M %p; fix date_format in "
                                          "mapping.yml (it may name a format per column)")]


def shop_with(tmp_path, extra_rows: str, mapping: str = SHOP_MAPPING):
    return load(tmp_path, SHOP + extra_rows, mapping=mapping)


def test_a_per_order_subtotal_is_the_orders_even_beside_many_single_line_orders(tmp_path):
    singles = "".join(f"#2{i:03d},s{i}@example.com,paid,10.00,10.00,0.00,2024-03-05 10:00:00 +0100,1,10.00,S-{i}\n"
                      for i in range(10))
    con, result = shop_with(tmp_path, singles)
    assert con.execute("select count(line_amount) from raw.order_items").fetchone() == (0,)


def test_a_discount_on_every_line_of_an_order_counts_once_and_a_real_line_discount_stays(tmp_path):
    text = ("order_id,customer_id,order_date,sku,quantity,unit_price,discount\n"
            "A1,c1,2024-06-01,p1,1,100,5\nA1,c1,2024-06-01,p2,1,50,5\n"
            "A2,c2,2024-06-01,p1,1,100,7\nA2,c2,2024-06-01,p2,1,50,7\n")
    con, result = load(tmp_path, text)
    assert con.execute("select order_id, discount from raw.order_items order by _row_number").fetchall() == [
        ("A1", "5"), ("A1", None), ("A2", "7"), ("A2", None)]
    assert any("counted once per order" in note for note in result.files[0].notes)
    # Mostly zero discounts and one order discounted on one line: a line's own discount, kept as it is.
    text = ("order_id,customer_id,order_date,sku,quantity,unit_price,discount\n"
            + "".join(f"Z{i},c1,2024-06-01,p1,1,10,0\nZ{i},c1,2024-06-01,p2,1,10,0\n" for i in range(4))
            + "A5,c2,2024-06-01,p1,1,100,30\nA5,c2,2024-06-01,p2,1,50,\n")
    con, _ = load(tmp_path / "again", text)
    assert con.execute("select discount from raw.order_items where order_id = 'A5' order by _row_number"
                       ).fetchall() == [("30",), (None,)]
    # 10% off items of one price: one discount per line, as the contract says (no order prices its lines apart).
    text = ("order_id,customer_id,order_date,sku,quantity,unit_price,discount\n"
            "S1,c1,2024-06-01,red,1,20.00,2.00\nS1,c1,2024-06-01,blue,1,20.00,2.00\nS1,c1,2024-06-01,green,1,20.00,2.00\n"
            "S2,c2,2024-06-05,mug-a,2,8.00,1.60\nS2,c2,2024-06-05,mug-b,2,8.00,1.60\n")
    con, result = load(tmp_path / "promotion", text)
    assert con.execute("select count(discount) from raw.order_items").fetchone() == (5,)
    assert not any("counted once per order" in note for note in result.files[0].notes)


def test_a_line_file_maps_amount_to_its_line_amount_and_needs_its_customer(tmp_path):
    text = "order_id,customer_id,order_date,product_id,quantity,Betrag\nO1,c1,2024-06-01,p1,2,19.90\n"
    con, result = load(tmp_path, text, mapping="orders:\n  columns:\n    Betrag: amount\n")
    assert result.files[0].entity == "order_items"
    assert con.execute("select line_amount from raw.order_items").fetchall() == [("19.90",)]
    with pytest.raises(ingest.IngestError, match="missing required column 'customer_id'"):
        load(tmp_path / "again", "order_id,Kundennummer,order_date,sku,quantity,unit_price\nO1,k1,2024-06-01,p,1,5\n")


def test_a_line_file_without_a_price_or_an_amount_stops(tmp_path):
    with pytest.raises(ingest.IngestError, match="cannot price its lines .* or, if each row is a whole order, set "
                                                 "grain: order for orders$"):
        load(tmp_path, "order_id,customer_id,order_date,sku,quantity\nO1,c1,2024-06-01,p1,2\n")


def test_excel_text_formulas_are_read_as_their_text(tmp_path):
    """Taobao's ExportOrderList writes each order id as ="3712345678901234561", to keep Excel from turning it into
    3.71E+18: the id is the text inside, not the formula."""
    text = ('订单编号,买家会员名,订单创建时间,买家实际支付金额\n'
            '"=""3712345678901234561""",小鱼儿2019,2024-03-01 09:12:33,128.00\n'
            '"=""3712345678901234562""",tb_8837261,2024-03-02 10:00:00,"=""256.00"""\n')
    con, result = load(tmp_path, text, mapping="orders:\n  columns: {买家会员名: customer_id, "
                                                "买家实际支付金额: amount, 订单创建时间: order_date}\n")
    assert con.execute("select order_id, customer_id, amount from raw.orders order by _row_number").fetchall() == [
        ("3712345678901234561", "小鱼儿2019", "128.00"), ("3712345678901234562", "tb_8837261", "256.00")]
    assert "Excel text formulas (=\"...\") read as their text: amount, order_id" in result.files[0].notes


def test_a_credit_note_mapped_by_status_values_is_refunded_and_counts_negative(tmp_path):
    """Xero exports a credit note with a positive total beside the invoices (Type "Sales credit note"); PayPal writes
    a refund as a row of its own with a negative amount. Mapped to credit_note, each is a refunded order of negative
    amount, which nets out of revenue (the mart's credit notes)."""
    text = ("InvoiceNumber,ContactName,InvoiceDate,Total,Type\nINV-1,Bayside Club,2024-03-04,963.00,Sales invoice\n"
            "CN-7,Bayside Club,2024-03-13,£51.00,Sales credit note\nR-1,Bayside Club,2024-03-14,-20.00,Refund\n")
    con, result = load(tmp_path, text, mapping="orders:\n  columns: {ContactName: customer_id, Type: status}\n"
                       "  status_values: {sales invoice: paid, sales credit note: credit_note, refund: credit_note}\n")
    assert con.execute("select order_id, amount, status from raw.orders order by _row_number").fetchall() == [
        ("INV-1", "963.00", "paid"), ("CN-7", "-£51.00", "refunded"), ("R-1", "-20.00", "refunded")]


def test_a_second_status_column_overrides_the_status_where_it_says_refunded_or_cancelled(tmp_path):
    """Shopee writes a refund in "Return / Refund Status" beside an Order Status that stays Completed; Xero writes an
    invoice's Type and its Status (PAID, DRAFT, VOIDED) in two columns. Read from one column, the refund and the draft
    counted as sales. status_overrides names the other: where its value maps to anything but paid, that wins."""
    shopee = ("Order ID,Username (Buyer),Order Creation Date,Order Status,Return / Refund Status,Grand Total\n"
              "240301A,buyer1,2024-03-01 10:00,Completed,,S$25.00\n"
              "240302B,buyer2,2024-03-02 11:00,Completed,Refund approved,S$40.00\n"
              "240303C,buyer3,2024-03-03 12:00,Cancelled,,S$12.00\n"
              "240304D,buyer1,2024-03-04 13:00,Completed,Return requested,S$30.00\n")
    con, result = load(tmp_path / "shopee", shopee, mapping=(
        "orders:\n  currency: SGD\n  columns: {Order ID: order_id, Username (Buyer): customer_id, Order Creation Date: "
        "order_date, Order Status: status, Grand Total: amount}\n  status_overrides: [Return / Refund Status]\n"
        "  status_values: {refund approved: refunded}\n"))
    assert con.execute("select order_id, status from raw.orders order by 1").fetchall() == [
        ("240301A", "Completed"), ("240302B", "refunded"), ("240303C", "Cancelled"), ("240304D", "Completed")]
    assert ("Return / Refund Status: values status_values does not map, which leave the status as it was: "
            "Return requested (1)") in result.files[0].notes
    xero = ("InvoiceNumber,ContactName,InvoiceDate,Total,Type,Status\nINV-1,Bayside Club,2024-03-04,963.00,Sales invoice,"
            "PAID\nINV-2,Bayside Club,2024-03-05,120.00,Sales invoice,DRAFT\nCN-7,Bayside Club,2024-03-13,51.00,Sales "
            "credit note,PAID\nCN-8,Bayside Club,2024-03-14,20.00,Sales credit note,VOIDED\n")
    con, _ = load(tmp_path / "xero", xero, mapping=(
        "orders:\n  columns: {ContactName: customer_id, Type: status}\n  status_overrides: [Status]\n"
        "  status_values: {sales invoice: paid, sales credit note: credit_note, paid: paid, draft: cancelled, "
        "voided: cancelled}\n"))
    assert con.execute("select order_id, status, amount from raw.orders order by 1").fetchall() == [
        ("CN-7", "refunded", "-51.00"), ("CN-8", "cancelled", "20.00"), ("INV-1", "paid", "963.00"),
        ("INV-2", "cancelled", "120.00")]
    chinese = "订单编号,客户编号,下单时间,金额,订单状态,退款状态\nT1,C1,2024-03-01,¥10,已完成,退款成功\n"
    con, _ = load(tmp_path / "taobao", chinese, mapping="orders:\n  status_overrides: [退款状态]\n"
                                                        "  status_values: {退款成功: refunded}\n")
    assert con.execute("select status from raw.orders").fetchall() == [("refunded",)]


def test_a_status_override_the_file_does_not_have_or_reads_as_a_contract_column_stops(tmp_path):
    text = "order_id,customer_id,order_date,amount,status\nO1,C1,2024-06-01,10,paid\n"
    with pytest.raises(ingest.IngestError, match=r"orders.csv: mapping.yml's status_overrides names 'refund_status', "
                                                 r"which the file does not have \(columns: order_id, "):
        load(tmp_path / "a", text, mapping="orders:\n  status_overrides: [Refund Status]\n  status_values: {x: paid}\n")
    with pytest.raises(ingest.IngestError, match=r"status_overrides names 'status', which is read as a column of "
                                                 r"orders; an override is a status column kept aside"):
        load(tmp_path / "b", text, mapping="orders:\n  status_overrides: [Status]\n  status_values: {x: paid}\n")


ODOO = ("Order Reference,Customer,Order Date,Status,Currency,Order Lines/Product,Order Lines/Quantity,"
        "Order Lines/Unit Price,Order Lines/Subtotal\n"
        "S00041,Deco Addict,2024-03-01 09:30:12,Sales Order,EUR,[FURN_8888] Office Lamp,2.00,40.00,80.00\n"
        ",,,,,[E-COM11] Cabinet with Doors,1.00,140.00,126.00\n"
        "S00043,Gemini Furniture,2024-03-06 10:00:00,Sales Order,EUR,[FURN_0269] Office Chair Black,4.00,120.50,482.00\n"
        ",,,,,[FURN_1118] Corner Desk Left Sit,1.00,85.00,85.00\n"
        ",,,,,[FURN_8220] Four Person Desk,1.00,2350.00,2232.50\n")
ODOO_MAPPING = ("orders:\n  columns: {Order Reference: order_id, Customer: customer_id, Order Lines/Product: product_id, "
                "Order Lines/Quantity: quantity, Order Lines/Unit Price: unit_price, Order Lines/Subtotal: line_amount}\n")


@pytest.mark.parametrize("currency", ["", "  currency: EUR\n"])  # which fills the blank currency cells as rows land
def test_lines_that_continue_the_order_above_them_are_read_as_that_order_s(tmp_path, currency):
    """Odoo exports an order of several lines with its reference, customer, date and status on the first line only:
    the other lines were quarantined as missing their order_id, and the order lost them."""
    con, result = load(tmp_path, ODOO, name="sales.csv", mapping=ODOO_MAPPING + currency)
    assert con.execute("select order_id, customer_id, order_date, status, currency, product_id from raw.order_items "
                       "order by _row_number").fetchall() == [
        ("S00041", "Deco Addict", "2024-03-01 09:30:12", "Sales Order", "EUR", "[FURN_8888] Office Lamp"),
        ("S00041", "Deco Addict", "2024-03-01 09:30:12", "Sales Order", "EUR", "[E-COM11] Cabinet with Doors"),
        ("S00043", "Gemini Furniture", "2024-03-06 10:00:00", "Sales Order", "EUR", "[FURN_0269] Office Chair Black"),
        ("S00043", "Gemini Furniture", "2024-03-06 10:00:00", "Sales Order", "EUR", "[FURN_1118] Corner Desk Left Sit"),
        ("S00043", "Gemini Furniture", "2024-03-06 10:00:00", "Sales Order", "EUR", "[FURN_8220] Four Person Desk")]
    assert any(note.startswith("3 line(s) without an order continue the order above them") for note in
               result.files[0].notes)


@pytest.mark.parametrize("change", [
    ("\n,,,,,[E-COM11]", "\n,Someone,,,,[E-COM11]"),  # a line naming a customer but no order: broken, not a continuation
    ("\n,,,,,[FURN_1118]", "\nS00043,Gemini Furniture,2024-03-06 10:00:00,Sales Order,EUR,[FURN_1118]"),  # ids repeat
])
def test_lines_without_an_order_are_not_continuations_unless_the_whole_file_is_of_that_shape(tmp_path, change):
    con, _ = load(tmp_path, ODOO.replace(*change), name="sales.csv", mapping=ODOO_MAPPING)
    assert con.execute("select count(*) from raw.order_items where order_id is null").fetchone()[0] >= 1


def test_a_total_beside_shipping_and_tax_columns_is_said_to_perhaps_include_them(tmp_path):
    """Etsy's Order Total (the order_total synonym of amount) includes its Shipping and Sales Tax: revenue would count
    them. Only the system knows; the progress line says so and what to map instead."""
    etsy = ("Sale Date,Order ID,Buyer User ID,Currency,Order Value,Shipping,Sales Tax,Order Total,Adjusted Order Total\n"
            "03/01/24,3201,buyer1,USD,40.00,5.00,3.20,48.20,40.00\n")
    _, result = load(tmp_path / "etsy", etsy, mapping="orders:\n  columns: {Buyer User ID: customer_id, "
                     "Sale Date: order_date}\n  date_format: \"%m/%d/%y\"\n")
    assert ("'Order Total' is read as the amount; the file also has 'Shipping', 'Sales Tax': if the total includes "
            "them, revenue does too; map the merchandise total as amount in mapping.yml") in result.files[0].notes
    _, plain = load(tmp_path / "plain", "order_id,customer_id,order_date,amount,ship_mode\nO1,C1,2024-06-01,10,Air\n")
    assert not any("revenue does too" in note for note in plain.files[0].notes)


def test_the_currency_check_knows_the_symbols_and_codes_dbt_reads_and_no_others():
    """Ingestion judges whether a file's amounts name a currency with its own pattern; dbt reads the currency with
    crm.currency_from_amount_text. The two lists must be one."""
    import re

    from dagster_project.ingest.file_load import CURRENCY_IN_AMOUNT

    macros = (Path(__file__).parent.parent / "dbt" / "macros" / "money.sql").read_text()
    macro = macros[macros.index("macro currency_from_amount_text"):]
    read_by_dbt = set(re.findall(r"like '%([^%']+)%'", macro[:macro.index("endmacro")]))
    symbols, *codes = CURRENCY_IN_AMOUNT.split("|")
    assert read_by_dbt == set(symbols.strip("[]")) | {code.replace("\\", "") for code in codes}
    # ... and crm.parse_amount removes each of them before the number is read
    parsing = (Path(__file__).parent.parent / "dbt" / "macros" / "parsing.sql").read_text()
    parse_amount = parsing[parsing.index("macro parse_amount"):parsing.index("endmacro", parsing.index("macro parse_amount"))]
    prefixes = set(re.search(r"\(\?i\)\(([A-Z|]+)\)\[\$\]", parse_amount).group(1).split("|"))
    stripped = set(re.findall(r"\|([A-Z]{3}|[^|'\[\]A-Za-z(){}~ ]+)(?=[|'])", parse_amount))
    for read in read_by_dbt:
        if read.endswith("$") and len(read) > 1:
            assert read[:-1] in prefixes, read
        elif len(read) == 3 and read.isalpha():
            assert read in stripped, read
        else:
            assert read in parse_amount, read


def test_a_blank_line_above_the_header_names_skip_rows(tmp_path):
    """eBay's orders report starts with a blank line."""
    with pytest.raises(ingest.IngestError, match=r"orders.csv: empty header line \(the first line that is not blank "
                                                 r"is line 2: if it is the header, set skip_rows: 1 for orders in "
                                                 r"mapping.yml\)$"):
        load(tmp_path, "\norder_id,customer_id,order_date,amount\nO1,c1,2024-06-01,2\n")


def test_a_crm_s_deal_stages_are_mapped_by_status_values(tmp_path):
    """HubSpot's stages are the pipeline's own (Appointment Scheduled, Contract Sent, Closed Won): without a mapping
    each is an unknown stage, and no opportunity of the export loads."""
    text = ("Deal ID,Deal Stage,Create Date,Amount\nD1,Appointment Scheduled,2024-03-01,100\n"
            "D2,Contract Sent,2024-03-02,200\nD3,closed-won,2024-03-03,300\n")
    con, result = load(tmp_path, text, name="deals.csv", mapping="opportunities:\n  status_values:\n"
                       "    Appointment Scheduled: contacted\n    contract sent: negotiation\n")
    assert con.execute("select opportunity_id, stage from raw.opportunities order by 1").fetchall() == [
        ("D1", "contacted"), ("D2", "negotiation"), ("D3", "closed-won")]
    assert "2 status value(s) mapped by status_values in mapping.yml" in result.files[0].notes


def test_three_decimal_amounts_below_one_are_decimals_not_thousands(tmp_path):
    con, _ = load(tmp_path, "order_id;customer_id;order_date;amount\nO1;C1;2024-06-01;0.125\nO2;C1;2024-06-01;12\n")
    assert con.execute("select amount from raw.orders order by _row_number").fetchall() == [("0.125",), ("12",)]


@pytest.mark.parametrize("text", [
    "order_id,customer_id,order_date,amount\rO1,C1,2024-06-01,10\rO2,C1,2024-06-02,12\r",  # old Mac line ends
])
def test_cr_line_ends_read(tmp_path, text):
    con, result = load(tmp_path, text)
    assert result.files[0].rows_loaded == 2


def test_utf16_with_crlf_is_routed_and_read(tmp_path):
    exports = tmp_path / "exports"
    (exports / "2024-06-30").mkdir(parents=True)
    text = "order_id\tcustomer_id\torder_date\tamount\r\nO1\tC1\t2024-06-01\t10\r\n"
    (exports / "2024-06-30" / "orders.csv").write_bytes(text.encode("utf-16"))
    result = ingest_all(duckdb.connect(), exports)
    assert (result.files[0].entity, result.files[0].rows_loaded) == ("orders", 1)


def test_a_file_without_header_numbers_its_rows_from_one(tmp_path):
    con, result = load(tmp_path, "c1 20240101 10\nc2 20240102 11 extra\nc3 20240103 12\n", name="orders.txt",
                       mapping="orders:\n  header: [customer_id, order_date, amount]\n  delimiter: whitespace\n")
    assert con.execute("select _row_number, customer_id from raw.orders order by 1").fetchall() == [
        (1, "c1"), (3, "c3")]
    assert con.execute("select row_number from raw._quarantine").fetchall() == [(2,)]
