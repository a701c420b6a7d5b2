"""Ingestion of export drops into raw DuckDB tables: real files in tmp_path, a real DuckDB database file."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import ingest_all
from dagster_project import ingest
from dagster_project.contract import ENTITIES, ENTITIES_BY_NAME, LINEAGE_COLUMNS
from dagster_project.files import file_identity
from dagster_project.ingest import IngestError, discover_drops, ensure_raw_schema
from dagster_project.ingest.file_load import FileLoad

ORDERS = ENTITIES_BY_NAME["orders"]
ORDERS_CSV = "order_id,customer_id,order_date,amount\nO1,C1,2026-10-01,10\nO2,C2,2026-10-02,20\n"


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def deliver(exports: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = exports / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def rows(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def ingest_entity(con, exports: Path, entity: str) -> list[ingest.FileResult]:
    """Every drop of one entity, oldest first."""
    ((_, results),) = ingest.ingest_entities(con, exports, [entity], workers=1)
    return results


def one_file(con, exports: Path, entity: str = "orders") -> ingest.FileResult:
    (result,) = ingest_entity(con, exports, entity)
    return result


# ------------------------------------------------------------------------------------------------ schema


def test_every_entity_has_a_raw_table_with_all_columns_even_without_files(con, exports):
    result = ingest_all(con, exports)
    assert result.files == []
    for entity in ENTITIES:
        columns = rows(con, "SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'raw' AND table_name = ? ORDER BY ordinal_position", [entity.name])
        assert [c for c, _ in columns] == [*entity.column_names, *LINEAGE_COLUMNS]
        assert dict(columns)["_drop_date"] == "DATE" and dict(columns)["_row_number"] == "BIGINT"
        assert rows(con, f"SELECT count(*) FROM raw.{entity.name}") == [(0,)]
    assert rows(con, "SELECT count(*) FROM raw._ingest_log") == [(0,)]
    assert rows(con, "SELECT count(*) FROM raw._quarantine") == [(0,)]


def test_ensure_raw_schema_is_idempotent_and_adds_columns_the_contract_gained(con):
    ensure_raw_schema(con)
    con.execute("ALTER TABLE raw.customers DROP COLUMN updated_at")
    ensure_raw_schema(con)
    ensure_raw_schema(con)
    names = [r[0] for r in rows(con, "SELECT column_name FROM information_schema.columns "
                                     "WHERE table_schema = 'raw' AND table_name = 'customers'")]
    assert "updated_at" in names and len(names) == len(set(names))


def test_a_warehouse_of_an_older_version_loads_its_files_again_to_judge_their_currency(con, exports):
    """The ingest log's amounts_without_currency is filled by a load: files an older version loaded would be skipped
    as loaded and stay unjudged, their bare dollars read as yuan. Gaining the column makes them load again."""
    deliver(exports, "2026-10-28/orders.csv", "order_id,customer_id,order_date,amount\nO1,C1,2026-10-01,12.50\n")
    ingest_all(con, exports)
    con.execute("ALTER TABLE raw._ingest_log DROP COLUMN amounts_without_currency")
    ensure_raw_schema(con)
    (again,) = ingest_all(con, exports).files
    assert not again.skipped
    assert rows(con, "SELECT source_file, amounts_without_currency FROM raw._ingest_log") == [
        ("2026-10-28/orders.csv", True)]
    assert ingest_all(con, exports).files[0].skipped  # once judged, skipped as before


def test_order_lines_are_judged_for_their_currency_only_where_they_price_orders_without_an_amount(con, exports):
    """Lines without their order's customer or date are priced by their orders; where an order has no amount, the
    lines' sum is its amount, in the lines' currency (ingest.currency_check)."""
    deliver(exports, "2026-10-28/orders.csv", "order_id,customer_id,order_date,amount,currency\n"
                                               "O1,C1,2026-10-01,12.50,EUR\n")
    deliver(exports, "2026-10-28/order_items.csv", "order_id,product_id,unit_price\nO1,P1,12.50\nO2,P1,3.00\n")
    ingest_all(con, exports)
    assert ingest.files_without_currency(con) == []
    assert ingest.lines_pricing_orders_without_currency(con) == []  # O1 has an amount; O2 no order at all
    deliver(exports, "2026-10-29/orders.csv", "order_id,customer_id,order_date\nO2,C2,2026-10-02\n")
    ingest_all(con, exports)
    assert ingest.lines_pricing_orders_without_currency(con) == ["2026-10-28/order_items.csv"]
    # a symbol in the lines' amounts names their currency
    deliver(exports, "2026-10-28/order_items.csv", "order_id,product_id,unit_price\nO1,P1,12.50\nO2,P1,€3.00\n")
    ingest_all(con, exports)
    assert ingest.lines_pricing_orders_without_currency(con) == []


# ------------------------------------------------------------------------------------------------ discovery


def test_discovery_matches_synonyms_and_warns_about_the_rest(exports):
    deliver(exports, "2026-10-29/Sales.CSV", ORDERS_CSV)
    deliver(exports, "2026-10-28/customers.csv", "customer_id\nC1\n")
    deliver(exports, "2026-10-28/orders.parquet", b"")
    deliver(exports, "2026-10-28/notes.csv", "x\n")
    deliver(exports, "2026-10-28/orders.xlsx", b"")
    deliver(exports, "2026-10-28/.DS_Store", b"")
    deliver(exports, "latest/orders.csv", ORDERS_CSV)
    deliver(exports, "2026-13-01/orders.csv", ORDERS_CSV)

    drops, warnings = ingest.find_drops(exports)

    assert [(d.isoformat(), p.relative_to(exports).as_posix(), e.name) for d, p, e in drops] == [
        ("2026-10-28", "2026-10-28/customers.csv", "customers"),
        ("2026-10-28", "2026-10-28/orders.parquet", "orders"),
        ("2026-10-29", "2026-10-29/Sales.CSV", "orders"),
    ]
    assert discover_drops(exports) == drops
    assert sorted(warnings) == [
        "exports/2026-10-28/notes.csv: not a .csv/.txt/.tsv/.parquet file named after an entity, skipped"
        ' (to read it, list it under its entity in mapping.yml, e.g. orders: files: ["notes.csv"])',
        "exports/2026-10-28/orders.xlsx: not a .csv/.txt/.tsv/.parquet file named after an entity, skipped",
        "exports/2026-13-01: not a drop folder named YYYY-MM-DD, skipped",
        "exports/latest: not a drop folder named YYYY-MM-DD, skipped",
    ]


def test_ingest_all_reports_warnings_and_totals(con, exports):
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV)
    deliver(exports, "2026-10-28/customers.csv", "customer_id\nC1\n")
    deliver(exports, "2026-10-28/readme.txt", "hello")
    seen = []

    result = ingest_all(con, exports, progress=seen.append)

    assert seen == result.files and [f.entity for f in result.files] == ["customers", "orders"]
    assert result.warnings == [
        "exports/2026-10-28/readme.txt: not a .csv/.txt/.tsv/.parquet file named after an entity, skipped (to read "
        'it, list it under its entity in mapping.yml, e.g. orders: files: ["readme.txt"])']
    assert result.totals_by_entity()["orders"] == {
        "files_loaded": 1, "files_skipped": 0, "rows_read": 2, "rows_loaded": 2, "rows_quarantined": 0,
    }


# ------------------------------------------------------------------------------------------------ headers


def test_canonical_and_synonym_headers_map_case_insensitively_with_lineage(con, exports):
    deliver(exports, "2026-10-28/orders.csv",
            "Order_No,CUST_ID,Order Date,Total,Order-Status\n O1 , C1 ,2026-10-01,\"1,234.50\",\n")

    result = one_file(con, exports)

    assert (result.encoding, result.delimiter, result.rows_read, result.rows_loaded) == ("utf-8", ",", 1, 1)
    assert rows(con, "SELECT order_id, customer_id, order_date, amount, status, currency, _source_file, "
                     "_drop_date, _row_number, _extra_columns, _loaded_at IS NOT NULL FROM raw.orders") == [
        ("O1", "C1", "2026-10-01", "1,234.50", None, None, "2026-10-28/orders.csv", date(2026, 10, 28), 1, None, True)
    ]
    (column_map,) = rows(con, "SELECT column_map FROM raw._ingest_log")[0]
    assert json.loads(column_map)["Order-Status"] == "status"


def test_camel_case_headers_meet_their_synonyms(con, exports):
    """Xero writes InvoiceNumber and InvoiceDate, an API customerId: folded, they are invoicenumber and the like,
    which used to match nothing, so every line of an invoice was an order of its own (its id derived)."""
    deliver(exports, "2026-10-28/orders.csv",
            "InvoiceNumber,customerId,InvoiceDate,OrderTotal\nINV-1,C1,2026-10-01,5\n")
    one_file(con, exports)
    assert rows(con, "SELECT order_id, customer_id, order_date, amount FROM raw.orders") == [
        ("INV-1", "C1", "2026-10-01", "5")]


def test_gb18030_file_with_chinese_headers_and_dates(con, exports):
    deliver(exports, "2026-10-28/orders.csv",
            "订单号,客户编号,下单时间,金额,订单状态\nA1,客户一,2026年10月1日,¥1234.5,已支付\n", encoding="gb18030")

    result = one_file(con, exports)

    assert result.encoding == "gb18030"
    assert rows(con, "SELECT order_id, customer_id, order_date, amount, status FROM raw.orders") == [
        ("A1", "客户一", "2026年10月1日", "¥1234.5", "已支付")
    ]
    header = rows(con, "SELECT header FROM raw._ingest_log")[0][0]
    assert json.loads(header) == ["订单号", "客户编号", "下单时间", "金额", "订单状态"]


def test_utf8_bom_is_stripped_from_the_first_header(con, exports):
    deliver(exports, "2026-10-28/orders.csv", b"\xef\xbb\xbf" + ORDERS_CSV.encode())

    result = one_file(con, exports)

    assert (result.encoding, result.extra_columns) == ("utf-8-sig", [])
    assert rows(con, "SELECT order_id FROM raw.orders ORDER BY _row_number") == [("O1",), ("O2",)]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_are_detected_from_the_header(con, exports, delimiter):
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV.replace(",", delimiter).replace("10\n", '"1,5"\n'))

    result = one_file(con, exports)

    assert result.delimiter == delimiter
    # A comma inside a field of a file delimited otherwise is its decimal mark: 1,5 is one and a half, never 15.
    assert rows(con, "SELECT order_id, amount FROM raw.orders ORDER BY _row_number") == [("O1", "1.5"), ("O2", "20")]
    assert "decimal comma" in result.notes


def test_windows_line_ends_and_trailing_blank_lines(con, exports):
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV.replace("\n", "\r\n") + "O3,C3\r\n\r\n\r\n")

    result = one_file(con, exports)

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert rows(con, "SELECT amount FROM raw.orders ORDER BY _row_number") == [("10",), ("20",)]
    assert rows(con, "SELECT row_number, raw_record FROM raw._quarantine") == [(3, "O3,C3")]


def test_missing_required_column_names_the_file_and_the_column(con, exports):
    deliver(exports, "2026-10-28/orders.csv", "customer_id,dollar_value\nC1,10\n")

    with pytest.raises(IngestError) as error:
        ingest_all(con, exports)

    assert str(error.value) == (
        "exports/2026-10-28/orders.csv: missing required column 'order_date' (found: customer_id, dollar_value; if "
        "the file calls it otherwise, say so in mapping.yml, e.g. orders: columns: {<name in the file>: order_date})"
    )
    assert rows(con, "SELECT count(*) FROM raw._ingest_log") == [(0,)]


def test_duplicated_header_is_refused_naming_the_column(con, exports):
    deliver(exports, "2026-10-28/orders.csv", "customer_id,order_date,amount,Amount\nC1,2026-10-01,1,2\n")

    with pytest.raises(IngestError, match=r"^exports/2026-10-28/orders\.csv: duplicated header column 'Amount'$"):
        ingest_all(con, exports)


def test_header_only_file_is_an_empty_delta(con, exports):
    deliver(exports, "2026-10-28/orders.csv", "customer_id,order_date,amount\n")

    result = one_file(con, exports)

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined, result.skipped) == (0, 0, 0, False)
    assert rows(con, "SELECT source_file, rows_read FROM raw._ingest_log") == [("2026-10-28/orders.csv", 0)]


def test_zero_byte_file_is_an_error(con, exports):
    deliver(exports, "2026-10-28/orders.csv", b"")

    with pytest.raises(IngestError, match=r"^exports/2026-10-28/orders\.csv: empty file, no header$"):
        ingest_all(con, exports)


def test_extra_columns_are_kept_per_row_and_reported(con, exports):
    deliver(exports, "2026-10-28/orders.csv",
            'customer_id,order_date,amount,Coupon "Code",备注\nC1,2026-10-01,1,SAVE5,加急\nC2,2026-10-02,2,,\n')

    result = one_file(con, exports)

    assert result.extra_columns == ['Coupon "Code"', "备注"]
    extras = rows(con, "SELECT _extra_columns FROM raw.orders ORDER BY _row_number")
    assert json.loads(extras[0][0]) == {'Coupon "Code"': "SAVE5", "备注": "加急"}
    assert extras[1] == (None,)
    logged = rows(con, "SELECT extra_columns FROM raw._ingest_log")[0][0]
    assert json.loads(logged) == ['Coupon "Code"', "备注"]


# ------------------------------------------------------------------------------------------------ quarantine


def test_unreadable_rows_are_quarantined_with_reason_and_row_number(con, exports):
    deliver(exports, "2026-10-28/orders.csv",
            "order_id,customer_id,order_date,amount\n"
            "O1,C1,2026-10-01,1\n"
            "O2,C2,2026-10-02\n"  # too few fields
            'O3,C3,"2026-10-03\nlate",3\n'  # a quoted newline is one record
            "O4,C4,2026-10-04,4,extra\n"  # too many fields
            "order_id,customer_id,order_date,amount\n"  # header repeated (two files concatenated)
            "O6,C6,2026-10-06,6\n"
            'O7,C7,2026-10-07,"7')  # truncated: unterminated quote, no newline

    result = one_file(con, exports)

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (7, 3, 4)
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    assert rows(con, "SELECT _row_number, order_id FROM raw.orders ORDER BY _row_number") == [
        (1, "O1"), (3, "O3"), (6, "O6")
    ]
    quarantined = rows(con, "SELECT row_number, reason, raw_record, entity, source_file, drop_date "
                            "FROM raw._quarantine ORDER BY row_number")
    assert [(n, reason.split(":")[0], record) for n, reason, record, *_ in quarantined] == [
        (2, "wrong field count", "O2,C2,2026-10-02"),
        (4, "wrong field count", "O4,C4,2026-10-04,4,extra"),
        (5, "repeated header row", "order_id,customer_id,order_date,amount"),
        (7, "unterminated or stray quote", 'O7,C7,2026-10-07,"7'),
    ]
    assert {tuple(q[3:]) for q in quarantined} == {("orders", "2026-10-28/orders.csv", date(2026, 10, 28))}
    logged = rows(con, "SELECT rows_read, rows_loaded, rows_quarantined FROM raw._ingest_log")
    assert logged == [(7, 3, 4)]


def test_row_numbers_stay_file_row_numbers_around_runs_of_rejected_rows(con, exports):
    bad = {1, 2, 50, 99, 100, 101, 300}
    body = "".join(f"O{i},C,d\n" if i in bad else f"O{i},C,d,1\n" for i in range(1, 301))
    deliver(exports, "2026-10-28/orders.csv", "order_id,customer_id,order_date,amount\n" + body)

    result = one_file(con, exports)

    assert (result.rows_read, result.rows_quarantined) == (300, len(bad))
    assert rows(con, "SELECT count(*) FROM raw.orders WHERE _row_number <> substr(order_id, 2)::BIGINT") == [(0,)]
    assert {r[0] for r in rows(con, "SELECT row_number FROM raw._quarantine")} == bad


def test_stray_invalid_bytes_quarantine_their_line_only(con, exports):
    lines = [f"O{i},C{i},2026-10-01,{i}" for i in range(1, 31)]
    lines[9] = "O10,C\xff,2026-10-01,10"
    content = ("order_id,customer_id,order_date,amount\n" + "\n".join(lines) + "\n").encode("latin-1")
    deliver(exports, "2026-10-28/orders.csv", content)

    result = one_file(con, exports)

    assert (result.encoding, result.rows_read, result.rows_loaded, result.rows_quarantined) == ("utf-8", 30, 29, 1)
    assert rows(con, "SELECT row_number, reason LIKE 'encoding error%' FROM raw._quarantine") == [(10, True)]
    assert rows(con, "SELECT max(_row_number) FROM raw.orders") == [(30,)]


@pytest.mark.parametrize("content", [
    "Café,Zoë\n".encode(),  # valid multi-byte characters, cut by the chunk ends
    b"a\xe4\xb8" + b"bcd" + b"ef\n",  # a character cut short at a chunk's end, the next chunk ASCII only
    b"ab\xff" + b"cde" + b"f\xe4\xb8" + b"ghi",  # a stray byte, then the same
])
def test_invalid_utf8_is_counted_whatever_the_chunks_cut(tmp_path, monkeypatch, content):
    """The fingerprint skips decoding ASCII chunks; a character begun in one chunk and broken off by the next must
    still count."""
    expected = content.decode("utf-8", errors="replace").count("\ufffd")
    assert fingerprint_in_3_byte_chunks(tmp_path, monkeypatch, content).bad_utf8 == expected


@pytest.mark.parametrize("content", [
    b"ab\r\ncd\r\nef\n",  # CR LF cut by a chunk's end, then a chunk without a CR
    b"abcdef\ngh\r" + b"\nij\rk\n",  # a lone CR and a CR LF across chunks after CR-free ones
])
def test_line_ends_are_counted_whatever_the_chunks_cut(tmp_path, monkeypatch, content):
    crlf = content.count(b"\r\n")
    assert fingerprint_in_3_byte_chunks(tmp_path, monkeypatch, content).line_ends == (
        crlf, content.count(b"\n") - crlf, content.count(b"\r") - crlf)


def fingerprint_in_3_byte_chunks(tmp_path, monkeypatch, content: bytes):
    """The fingerprint of a file holding `content`, read in chunks of 3 bytes (8 MiB in a refresh)."""
    from dagster_project.ingest import encodings

    path = tmp_path / "orders.csv"
    path.write_bytes(content)
    monkeypatch.setattr(encodings, "CHUNK_BYTES", 3)
    return encodings.fingerprint(path, text=True)


def test_text_in_neither_encoding_is_refused(con, exports):
    body = "".join(f"O{i},Café {i},2026-10-01,{i}\n" for i in range(20))
    deliver(exports, "2026-10-28/orders.csv", "order_id,customer_id,order_date,amount\n" + body, encoding="latin-1")

    with pytest.raises(IngestError, match=r"^exports/2026-10-28/orders\.csv: file is neither UTF-8 nor GB18030 text: "
                                          r"save it as UTF-8, or name its encoding in its section of mapping\.yml "
                                          r"\(e\.g\. encoding: windows-1252"):
        ingest_all(con, exports)


# Western European names as Excel saves them on Windows (Windows-1252): every accented letter inside a word, so the
# bytes are valid GB18030 ("Müller" reads "M羹ller").
LATIN_CUSTOMERS = "customer_id,name,city\n" + "".join(
    f"C{i},{name},{city}\n" for i, (name, city) in enumerate(
        [("Jürgen Müller", "Köln"), ("Käthe Schäfer", "Düsseldorf"), ("Björn Köhler", "München"),
         ("Hélène Brändle", "Nürnberg")] * 3, 1))


def test_windows_1252_text_that_reads_as_gb18030_is_refused_not_misread(con, exports):
    assert LATIN_CUSTOMERS.encode("cp1252").decode("gb18030")  # the trap: valid GB18030
    deliver(exports, "2026-10-28/customers.csv", LATIN_CUSTOMERS, encoding="cp1252")
    with pytest.raises(IngestError, match=r"^exports/2026-10-28/customers\.csv: file is neither UTF-8 nor GB18030 "
                                          r"text \(read as GB18030, 36 of its 36 non-ASCII passages run into a Latin "
                                          r"letter, as Windows-1252 or Latin-1 text would\): save it as UTF-8, or "
                                          r"name its encoding"):
        ingest_all(con, exports)
    assert rows(con, "select count(*) from raw.customers") == [(0,)]


def test_a_latin_line_in_a_utf8_file_is_quarantined_not_read_as_chinese(con, exports):
    """One Windows-1252 line among UTF-8 ones: the whole file is valid GB18030 too, and used to land as Chinese
    characters, the UTF-8 names with it."""
    lines = [f"C{i},Jörg Schäfer {i},Köln" for i in range(1, 30)] + ["C30,Jürgen Müller,Köln"]
    content = ("customer_id,name,city\n" + "\n".join(lines[:-1]) + "\n").encode() + (lines[-1] + "\n").encode("cp1252")
    deliver(exports, "2026-10-28/customers.csv", content)

    result = one_file(con, exports, "customers")

    assert (result.encoding, result.rows_loaded, result.rows_quarantined) == ("utf-8", 29, 1)
    assert rows(con, "select distinct city from raw.customers") == [("Köln",)]
    (reason, detail), = rows(con, "select reason, detail from raw._quarantine")
    assert reason == "encoding error" and detail.endswith("save the file as UTF-8, or name its encoding in its "
                                                          "section of mapping.yml, e.g. encoding: windows-1252)")


# A Japanese shop's orders as Excel saves them (cp932): the yen sign is the byte 0x5C, a backslash in cp932.
JAPANESE_ORDERS = "注文番号,顧客ID,注文日,合計金額,ステータス\n" + "".join(
    f"J{i},C{i % 4},2024/03/{1 + i:02d},\"\\{1200 + 10 * i:,}\",発送済み\n" for i in range(12))


def test_a_japanese_file_that_reads_as_gb18030_is_refused_and_its_yen_must_be_named(con, exports):
    """Shift_JIS bytes are valid GB18030: 山田 of 東京都 used to land as 嶳揷 of 搶嫗搒, and yen as yuan."""
    from dagster_project.ingest.mapping import load_mapping

    deliver(exports, "2026-10-28/orders.csv", JAPANESE_ORDERS, encoding="cp932")
    assert JAPANESE_ORDERS.encode("cp932").decode("gb18030")  # the trap: valid GB18030
    with pytest.raises(IngestError, match=r"^exports/2026-10-28/orders\.csv: file is neither UTF-8 nor GB18030 text "
                                          r"\(read as GB18030, \d+% of its characters are ones Chinese text seldom "
                                          r"writes; its bytes read as cp932\): save it as UTF-8, or set encoding: "
                                          r"cp932 in its section of mapping\.yml$"):
        ingest_all(con, exports)
    columns = "  columns: {注文番号: order_id, 顧客ID: customer_id, 注文日: order_date, 合計金額: amount}\n"
    (exports / "mapping.yml").write_text("orders:\n  encoding: cp932\n" + columns)
    with pytest.raises(IngestError, match=r"a cp932 file's amounts are likely yen, but nothing says so .*set "
                                          r"currency: JPY \(or the currency they are in\) for orders in mapping\.yml"):
        ingest_all(con, exports, mapping=load_mapping(exports / "mapping.yml"))
    (exports / "mapping.yml").write_text("orders:\n  encoding: cp932\n  currency: JPY\n" + columns)

    ingest_all(con, exports, mapping=load_mapping(exports / "mapping.yml"))

    # Shift_JIS writes ¥ as the backslash's byte: read as ¥ again.
    assert rows(con, "select order_id, amount, currency from raw.orders order by _row_number limit 2") == [
        ("J0", "¥1,200", "JPY"), ("J1", "¥1,210", "JPY")]


KOREAN_CUSTOMERS = "customer_id,name,city\nK1,김민수,서울특별시\nK2,이영희,부산광역시\nK3,박지훈,대구광역시\n"


def test_a_korean_file_that_reads_as_gb18030_is_refused_and_its_won_must_be_named(con, exports):
    """EUC-KR bytes are valid GB18030, read as common Chinese characters: 김민수 of 서울 used to land as 辫刮荐
    of 辑匡."""
    from dagster_project.ingest.mapping import load_mapping

    deliver(exports, "2026-10-28/customers.csv", KOREAN_CUSTOMERS, encoding="cp949")
    assert KOREAN_CUSTOMERS.encode("cp949").decode("gb18030")  # the trap: valid GB18030, GB2312's characters
    with pytest.raises(IngestError, match=r"^exports/2026-10-28/customers\.csv: file reads as Korean: read as cp949 "
                                          r"\(EUC-KR\), 24 of its first non-ASCII characters are Hangul syllables, "
                                          r"none other; .* set encoding: cp949 in its section of mapping\.yml"):
        ingest_all(con, exports)
    deliver(exports, "2026-10-28/orders.csv", "order_id,customer_id,order_date,amount\nK-1,K1,2026-10-01,\\12000\n",
            encoding="cp949")
    (exports / "mapping.yml").write_text("customers:\n  encoding: cp949\norders:\n  encoding: euc-kr\n")
    with pytest.raises(IngestError, match=r"orders.csv: a euc_kr file's amounts are likely won, but nothing says so "
                                          r".*set currency: KRW \(or the currency they are in\) for orders"):
        ingest_all(con, exports, mapping=load_mapping(exports / "mapping.yml"))
    (exports / "mapping.yml").write_text("customers:\n  encoding: cp949\norders:\n  encoding: euc-kr\n"
                                         "  currency: KRW\n")
    ingest_all(con, exports, mapping=load_mapping(exports / "mapping.yml"))
    assert rows(con, "select name, city from raw.customers order by _row_number") == [
        ("김민수", "서울특별시"), ("이영희", "부산광역시"), ("박지훈", "대구광역시")]
    # EUC-KR writes ₩ as the backslash's byte (Korean Windows shows it so): read as ₩ again.
    assert rows(con, "select amount, currency from raw.orders") == [("₩12000", "KRW")]


def test_chinese_text_is_not_taken_for_korean(con, exports):
    """Chinese names and cities read as cp949 are partly Hanja and symbols, and many are not cp949 at all."""
    text = "customer_id,name,city\n" + "".join(f"C{i},{n},{c}\n" for i, (n, c) in enumerate(
        [("张三丰", "北京市"), ("李刚", "广州市天河区"), ("王小明", "上海市"), ("陈静", "深圳市南山区")]))
    deliver(exports, "2026-10-28/customers.csv", text, encoding="gb18030")
    ingest_all(con, exports)
    assert rows(con, "select name from raw.customers order by _row_number") == [
        ("张三丰",), ("李刚",), ("王小明",), ("陈静",)]


def test_the_mapping_s_encoding_reads_a_windows_1252_file_and_names_a_line_not_in_it(con, exports):
    from dagster_project.ingest.mapping import load_mapping

    deliver(exports, "2026-10-28/customers.csv", LATIN_CUSTOMERS + "C13,Zoë Dupré,Besançon\n", encoding="cp1252")
    (exports / "mapping.yml").write_text("customers:\n  encoding: windows-1252\n")
    mapping = load_mapping(exports / "mapping.yml")

    ingest_all(con, exports, mapping=mapping)

    assert rows(con, "select name, city from raw.customers where customer_id in ('C1', 'C13') order by 1") == [
        ("Jürgen Müller", "Köln"), ("Zoë Dupré", "Besançon")]
    assert rows(con, "select encoding from raw._ingest_log") == [("cp1252",)]
    # 0x81 is no character of Windows-1252: the mapping is wrong for that line, and nothing is guessed.
    deliver(exports, "2026-10-29/customers.csv", b"customer_id,name\nC6,Ok\nC7,\x81bad\n")
    with pytest.raises(IngestError, match=r"^exports/2026-10-29/customers\.csv: line 3 is not cp1252 text, as "
                                          r"mapping\.yml says the file is; check its encoding setting$"):
        ingest_all(con, exports, mapping=mapping)
    # A byte order mark says the encoding: a mapping saying otherwise is a mistake to point out.
    deliver(exports, "2026-10-29/customers.csv", "\ufeffcustomer_id,name\nC6,Ok\n")
    with pytest.raises(IngestError, match=r"starts with a UTF-8 byte order mark, but mapping\.yml says encoding: "
                                          r"cp1252; remove that setting"):
        ingest_all(con, exports, mapping=mapping)


def test_a_mapping_section_without_the_newer_settings_keeps_its_fingerprint():
    """Files loaded under a section are loaded again when its fingerprint changes: settings added later (encoding,
    skip_rows, status_values, timezone, files) must not change the fingerprint of a section that does not use them."""
    import hashlib

    from dagster_project.ingest.mapping import EntityMapping

    section = EntityMapping(columns={"dollar_value": "amount"}, delimiter=";", currency="USD")
    later = ("encoding", "skip_rows", "status_values", "timezone", "files", "skip_footer", "status_overrides")
    as_before = {k: v for k, v in section.__dict__.items() if k not in later}
    assert section.fingerprint == hashlib.sha256(
        json.dumps(as_before, sort_keys=True, default=list, ensure_ascii=False).encode()).hexdigest()
    assert EntityMapping(columns={"dollar_value": "amount"}, delimiter=";", currency="USD",
                         encoding="cp1252").fingerprint != section.fingerprint
    assert EntityMapping(columns={"dollar_value": "amount"}, delimiter=";", currency="USD",
                         timezone="UTC").fingerprint != section.fingerprint


def test_title_lines_above_the_header_are_named_and_skip_rows_leaves_them_out(con, exports):
    from dagster_project.ingest.mapping import load_mapping

    deliver(exports, "2026-10-28/orders.csv", "Umsatzbericht Oktober 2026\nExportiert am 28.10.2026\n\n" + ORDERS_CSV)
    with pytest.raises(IngestError, match=r"missing required columns 'customer_id', 'order_date' \(found: "
                                          r"Umsatzbericht Oktober 2026; the rows' header seems to be line 4: if the "
                                          r"lines above it are a title, set skip_rows: 3 for orders in mapping\.yml\)"):
        ingest_all(con, exports)
    # Excel pads the title lines with delimiters to the table's width: the same hint.
    padded = "Umsatzbericht Oktober 2026;;;\nExportiert am 28.10.2026;;;\n;;;\n" + ORDERS_CSV.replace(",", ";")
    deliver(exports, "2026-10-28/orders.csv", padded)
    with pytest.raises(IngestError, match=r"the rows' header seems to be line 4: if the lines above it are a title, "
                                          r"set skip_rows: 3 for orders in mapping\.yml"):
        ingest_all(con, exports)
    (exports / "mapping.yml").write_text("orders:\n  skip_rows: 3\n")

    ingest_all(con, exports, mapping=load_mapping(exports / "mapping.yml"))

    assert rows(con, "select _row_number, order_id, amount from raw.orders order by 1") == [
        (1, "O1", "10"), (2, "O2", "20")]


def test_skip_footer_leaves_out_a_report_s_last_lines(con, exports):
    """Salesforce's report export ends with a blank line and its Copyright, Confidential and Generated By lines: read
    as rows, each is quarantined (wrong field count), too many for a small report."""
    from dagster_project.ingest.mapping import load_mapping

    footer = ('\n"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."\n'
              '"Confidential Information - Do Not Distribute"\n"Generated By:  Jordan Lee  3/31/2024 10:02 AM"\n')
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV + footer)
    (exports / "mapping.yml").write_text("orders:\n  skip_footer: 3\n")
    (result,) = ingest_all(con, exports, mapping=load_mapping(exports / "mapping.yml")).files
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 2, 0)
    assert rows(con, "select _row_number, order_id from raw.orders order by 1") == [(1, "O1"), (2, "O2")]


def test_a_big5_file_is_refused_not_read_as_gb18030(con, exports):
    """Big5 (Traditional Chinese, Hong Kong and Taiwan exports) is mostly valid GB18030, read as other characters:
    陳大文 of 臺北 would land as 朝\ue610ゅ of 籓\ue665. Its private-use characters give it away."""
    deliver(exports, "2026-10-28/customers.csv",
            "customer_id,name,city,region\nC1,陳大文,臺北,臺灣\nC2,黃美玲,九龍,香港\n", encoding="big5")
    with pytest.raises(IngestError, match=r"^exports/2026-10-28/customers\.csv: file is neither UTF-8 nor GB18030 "
                                          r"text \(read as GB18030 it has \d+ private-use character\(s\), as a Big5 "
                                          r"file would\): save it as UTF-8, or set encoding: big5 in its section "
                                          r"of mapping\.yml$"):
        ingest_all(con, exports)
    # Simplified Chinese in GB18030 still reads.
    deliver(exports, "2026-10-28/customers.csv", "customer_id,name,city\nC1,张三丰,北京\n", encoding="gb18030")
    ingest_all(con, exports)
    assert rows(con, "select name, city from raw.customers") == [("张三丰", "北京")]


def test_export_file_names_with_numbers_or_dates_name_their_entity():
    from dagster_project.contract import entity_for_file

    names = ["orders_export_1", "Orders Export", "customers-2024-03-05", "sales_2", "order_items", "notes_1", "export"]
    assert [getattr(entity_for_file(n), "name", None) for n in names] == [
        "orders", "orders", "customers", "orders", "order_items", None, None]


def test_utf16_without_a_byte_order_mark_is_named(con, exports):
    deliver(exports, "2026-10-28/orders.csv", "order_id,customer_id,order_date,amount\nO1,C1,2026-10-01,5\n",
            encoding="utf-16-le")
    with pytest.raises(IngestError, match=r"^exports/2026-10-28/orders\.csv: the header has NUL bytes between its "
                                          r"letters: the file looks like UTF-16 without a byte order mark"):
        ingest_all(con, exports)


# ------------------------------------------------------------------------------------------------ idempotence


def test_reingesting_the_same_content_adds_nothing(con, exports):
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV + "O3,C3,2026-10-03\n")
    first = ingest_all(con, exports)
    before = rows(con, "SELECT (SELECT count(*) FROM raw.orders), (SELECT count(*) FROM raw._quarantine), "
                       "(SELECT count(*) FROM raw._ingest_log)")

    again = ingest_all(con, exports)

    (skipped,) = again.files
    assert skipped.skipped and not first.files[0].skipped
    assert (skipped.rows_read, skipped.encoding, skipped.delimiter) == (0, "utf-8", ",")
    assert before == [(2, 1, 1)]
    assert rows(con, "SELECT (SELECT count(*) FROM raw.orders), (SELECT count(*) FROM raw._quarantine), "
                     "(SELECT count(*) FROM raw._ingest_log)") == before


def test_changed_content_replaces_the_files_earlier_rows(con, exports):
    path = deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV + "O3,C3\n")
    ingest_all(con, exports)
    path.write_text("order_id,customer_id,order_date,amount\nO1,C1,2026-10-01,99\n")

    (result,) = ingest_all(con, exports).files

    assert not result.skipped and result.rows_loaded == 1
    assert rows(con, "SELECT order_id, amount FROM raw.orders") == [("O1", "99")]
    assert rows(con, "SELECT count(*) FROM raw._quarantine") == [(0,)]
    assert rows(con, "SELECT rows_loaded FROM raw._ingest_log") == [(1,)]


def test_other_content_of_the_same_size_and_modification_time_is_loaded_again(con, exports):
    # A file already loaded is skipped without being read when it is as it was when hashed; its modification time
    # can be set back (`touch -d`, `cp -p`), its status-change time cannot.
    path = deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV + "O3,C3,2026-10-03,10\n")
    ingest_all(con, exports)
    before = path.stat()
    path.write_text(path.read_text().replace("O3,C3,2026-10-03,10", "O3,C3,2026-10-03,99"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    (result,) = ingest_all(con, exports).files

    assert not result.skipped
    assert rows(con, "SELECT amount FROM raw.orders WHERE order_id = 'O3'") == [("99",)]


def test_a_copy_of_a_loaded_file_is_read_once_more_then_skipped_as_it_is(con, exports, tmp_path):
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV)
    ingest_all(con, exports)
    # The drops restored from a backup: the same content in other files.
    restored = tmp_path / "restored"
    shutil.copytree(exports, restored)
    shutil.rmtree(exports)
    restored.rename(exports)
    path = exports / "2026-10-28" / "orders.csv"
    assert rows(con, "SELECT file_identity FROM raw._ingest_log") != [(file_identity(path.stat()),)]

    (result,) = ingest_all(con, exports).files

    assert result.skipped
    # Re-read and found the same: remembered as it is now, so the next refresh does not read it again.
    assert rows(con, "SELECT file_identity FROM raw._ingest_log") == [(file_identity(path.stat()),)]
    assert rows(con, "SELECT count(*) FROM raw.orders") == [(2,)]


def test_a_new_drop_adds_only_itself(con, exports):
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV)
    ingest_all(con, exports)
    deliver(exports, "2026-10-29/orders.csv", "customer_id,order_date,amount\nC9,2026-10-29,9\n")

    result = ingest_all(con, exports)

    assert [(f.source_file, f.skipped, f.rows_loaded) for f in result.files] == [
        ("2026-10-28/orders.csv", True, 0), ("2026-10-29/orders.csv", False, 1)
    ]
    assert rows(con, "SELECT _drop_date, count(*) FROM raw.orders GROUP BY ALL ORDER BY 1") == [
        (date(2026, 10, 28), 2), (date(2026, 10, 29), 1)
    ]


def test_a_failing_load_leaves_earlier_data_untouched(con, exports, monkeypatch):
    path = deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV)
    ingest_all(con, exports)
    path.write_text(ORDERS_CSV + "O3,C3,2026-10-03,30\n")

    def fail(*_):
        con.execute("SELECT error('disk on fire')")

    monkeypatch.setattr(FileLoad, "_log", fail)
    with pytest.raises(IngestError, match=r"^exports/2026-10-28/orders\.csv: .*disk on fire"):
        ingest_all(con, exports)

    assert rows(con, "SELECT order_id FROM raw.orders ORDER BY 1") == [("O1",), ("O2",)]
    assert rows(con, "SELECT count(*) FROM raw._ingest_log") == [(1,)]
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE temporary") == [(0,)]


def test_a_bad_file_of_one_entity_does_not_touch_another(con, exports):
    deliver(exports, "2026-10-28/customers.csv", "customer_id\nC1\n")
    deliver(exports, "2026-10-28/orders.csv", "customer_id\nC1\n")

    assert one_file(con, exports, "customers").rows_loaded == 1
    with pytest.raises(IngestError, match="missing required column 'order_date'"):
        ingest_entity(con, exports, "orders")
    assert rows(con, "SELECT customer_id FROM raw.customers") == [("C1",)]



def raw_contents(con) -> dict[str, list[tuple]]:
    """Every raw table's rows in a fixed order, without the load timestamps (which differ from run to run)."""
    contents = {}
    for (table,) in rows(con, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' ORDER BY 1"):
        columns = [c for (c,) in rows(con, "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'raw' "
                                           "AND table_name = ? ORDER BY column_index", [table])
                   if c not in ("_loaded_at", "loaded_at", "quarantined_at")]
        listed = ", ".join(f'"{c}"' for c in columns)
        contents[table] = rows(con, f'SELECT {listed} FROM raw."{table}" ORDER BY ALL')
    return contents


def test_entities_loaded_side_by_side_land_as_they_do_one_at_a_time(con, exports, tmp_path):
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV + "O3,C3,bad,\"1\n")
    deliver(exports, "2026-10-29/orders.csv", "order_id,customer_id,order_date,amount\nO1,C1,2026-10-01,11\n")
    deliver(exports, "2026-10-28/customers.csv", "customer_id,email\nC1,a@x.cn\nC2,b@x.cn\n")
    deliver(exports, "2026-10-29/interactions.csv", "interaction_id,customer_id,type,occurred_at\nI1,C1,call,2026-10-02\n")
    names = [entity.name for entity in ENTITIES]
    progress = []

    finished = dict(ingest.ingest_entities(con, exports, names, progress=progress.append, workers=3))

    assert sorted(finished) == sorted(names)
    assert sorted(r.source_file for r in progress) == sorted(r.source_file for rs in finished.values() for r in rs)
    assert [r.drop_date for r in finished["orders"]] == [date(2026, 10, 28), date(2026, 10, 29)]
    one_at_a_time = duckdb.connect(str(tmp_path / "serial.duckdb"))
    ingest_all(one_at_a_time, exports)
    assert raw_contents(con) == raw_contents(one_at_a_time)
    assert rows(con, "SELECT entity, row_number FROM raw._quarantine") == [("orders", 3)]
    one_at_a_time.close()


def test_after_a_failing_entity_none_starts_and_finished_ones_stay(con, exports):
    deliver(exports, "2026-10-28/orders.csv", ORDERS_CSV * 50)  # the largest: loads first
    deliver(exports, "2026-10-28/customers.csv", "email\n" + "a@x.cn\n" * 20)  # next: no customer_id
    deliver(exports, "2026-10-28/tickets.csv", "ticket_id,customer_id,opened_at\nT1,C1,2026-10-01\n")
    finished = []

    with pytest.raises(IngestError, match=r"^exports/2026-10-28/customers\.csv: missing required column 'customer_id'"):
        for name, _ in ingest.ingest_entities(con, exports, ["customers", "orders", "tickets"], workers=1):
            finished.append(name)

    assert finished == ["orders"]
    assert rows(con, "SELECT count(*) FROM raw.orders") == [(100,)]
    assert rows(con, "SELECT entity FROM raw._ingest_log") == [("orders",)]
    assert rows(con, "SELECT count(*) FROM raw.tickets") == [(0,)]

# ------------------------------------------------------------------------------------------------ safety


def test_paths_outside_the_exports_folder_are_refused(con, exports, tmp_path):
    secret = deliver(tmp_path, "secret/orders.csv", ORDERS_CSV)
    ensure_raw_schema(con)

    with pytest.raises(IngestError, match="outside the exports folder"):
        ingest.ingest_file(con, exports, date(2026, 10, 28), exports / "2026-10-28" / ".." / ".." / "secret" /
                           "orders.csv", ORDERS)
    (exports / "2026-10-28").mkdir()
    (exports / "2026-10-28" / "orders.csv").symlink_to(secret)
    with pytest.raises(IngestError, match=r"2026-10-28/orders\.csv: path is outside the exports folder"):
        ingest_all(con, exports)
    assert rows(con, "SELECT count(*) FROM raw.orders") == [(0,)]


def test_quotes_in_paths_and_column_names_are_data_not_sql(con, tmp_path):
    exports = tmp_path / "it's \"exports\"; DROP TABLE raw.orders; --"
    deliver(exports, "2026-10-28/orders.csv", "customer_id,order_date,amount,\"x\"\"); DROP TABLE t; --\"\nC1,d,1,v\n")

    result = ingest_all(con, exports)

    assert result.files[0].extra_columns == ['x"); DROP TABLE t; --']
    assert rows(con, "SELECT _extra_columns FROM raw.orders") == [('{"x\\"); DROP TABLE t; --":"v"}',)]


# ------------------------------------------------------------------------------------------------ parquet


def test_parquet_drop_is_read_as_text_with_the_same_mapping(con, exports):
    path = exports / "2026-10-28" / "Orders.parquet"
    path.parent.mkdir()
    duckdb.connect().execute(
        "COPY (SELECT * FROM (VALUES ('O1', 'C1', DATE '2026-10-01', 12.50::DECIMAL(10, 2), 'gift'),"
        "                            ('O2', ' C2 ', DATE '2026-10-02', 3.00::DECIMAL(10, 2), NULL))"
        "      AS t(\"Order ID\", cust_id, order_date, total, note)) TO ? (FORMAT parquet)", [str(path)]
    )

    result = one_file(con, exports)

    assert (result.encoding, result.delimiter, result.rows_read, result.extra_columns) == (None, None, 2, ["note"])
    assert rows(con, "SELECT order_id, customer_id, order_date, amount, _row_number, _extra_columns "
                     "FROM raw.orders ORDER BY _row_number") == [
        ("O1", "C1", "2026-10-01", "12.50", 1, '{"note":"gift"}'),
        ("O2", "C2", "2026-10-02", "3.00", 2, None),
    ]
