"""Publishing what changed: only tables whose content changed are written again; the rest, in the new file and in the
new export versions, are the previous publication's. (That readers still see whole publications only:
tests/test_faults.py and tests/test_bi_clients.py, which run on this code.)"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.publish.changes import manifest_path
from dagster_project.publish.publication import publish


def inode(path: Path) -> int:
    return path.stat().st_ino


def published(warehouse: Path, sql: str):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_only_changed_tables_are_written_and_the_rest_are_kept(tmp_path):
    warehouse, parquet = tmp_path / "crm.duckdb", tmp_path / "parquet"
    with duckdb.connect(str(tmp_path / "crm.work.duckdb")) as con:
        con.execute("create schema marts; create schema analytics")
        con.execute("create table marts.orders as select range as id, range * 0.1 as amount from range(20000)")
        con.execute("create table marts.customers as select range as id, 'c' || range as name from range(500)")
        con.execute("create table analytics.scores as select range as id, 1 / (range + 1) as score from range(500)")
        first = publish(con, warehouse, "run-1", None)
        assert sorted(first.changed) == ["analytics.scores", "marts.customers", "marts.orders"]
        files = {p.name: inode(p) for p in parquet.iterdir()}

        # Nothing changed: a new publication (its own run), every table and export file the previous one's.
        again = publish(con, warehouse, "run-2", None)
        assert again.changed == [] and again.rows == first.rows
        assert published(warehouse, "select run_id from meta.publication") == [("run-2",)]
        assert {p.name: inode(p) for p in parquet.iterdir()} == files
        assert set(published(warehouse, "select changed_by_run from meta.published_tables")) == {("run-1",)}

        # One table changes, one only in the last bits of its doubles (as a parallel sum does), one goes away, one
        # comes.
        con.execute("update marts.customers set name = 'renamed' where id = 7")
        con.execute("update analytics.scores set score = score * (1 + 1e-13)")
        con.execute("drop table marts.orders")
        con.execute("create table marts.products as select 1 as id")
        third = publish(con, warehouse, "run-3", None)
        assert sorted(third.changed) == ["marts.customers", "marts.products"]
        assert published(warehouse, "select schema_name || '.' || table_name, changed_by_run "
                                    "from meta.published_tables order by 1") == \
            [("analytics.scores", "run-1"), ("marts.customers", "run-3"), ("marts.products", "run-3")]
        assert published(warehouse, "select name from marts.customers where id = 7") == [("renamed",)]
        assert published(warehouse, "select count(*) from duckdb_tables() where table_name = 'orders'") == [(0,)]
        assert inode(parquet / "analytics.scores.parquet") == files["analytics.scores.parquet"]
        assert inode(parquet / "marts.customers.parquet") != files["marts.customers.parquet"]
        assert not (parquet / "marts.orders.parquet").exists() and (parquet / "marts.products.parquet").exists()
        assert not (tmp_path / "csv" / "marts.orders.csv").exists()

        # An export file is reused only when its own version says it holds that content (a publish killed between
        # the database and the exports leaves them of different runs).
        manifest = manifest_path(parquet.resolve())
        claims = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**claims, "analytics.scores": "not what the file holds"}))
        fourth = publish(con, warehouse, "run-4", None)
        assert fourth.changed == []
        assert inode(parquet / "analytics.scores.parquet") != files["analytics.scores.parquet"]

        # Only the current and the previous version are kept, each with its checksums.
        assert len(list(tmp_path.glob(".parquet-*"))) == 2 and len(list(tmp_path.glob(".checksums-parquet-*"))) == 2

        # A full rebuild writes everything anew.
        full = publish(con, warehouse, "run-5", None, reuse=False)
        assert sorted(full.changed) == ["analytics.scores", "marts.customers", "marts.products"]
        assert set(published(warehouse, "select changed_by_run from meta.published_tables")) == {("run-5",)}


def test_a_publication_that_changes_most_rows_writes_a_new_file_and_one_that_changes_few_starts_from_a_copy(tmp_path):
    warehouse = tmp_path / "crm.duckdb"
    free_blocks = "select free_blocks from pragma_database_size() where database_name = current_database()"
    with duckdb.connect(str(tmp_path / "crm.work.duckdb")) as con:
        con.execute("create schema marts")
        con.execute("create table marts.facts as select range as id, md5(range::varchar) as payload from range(300000)")
        con.execute("create table marts.small as select range as id from range(10)")
        publish(con, warehouse, "run-1", None)
        # Most rows changed: replacing them in a copy would only leave the old table's blocks as free space.
        con.execute("update marts.facts set payload = payload || 'x'")
        most = publish(con, warehouse, "run-2", None)
        assert most.changed == ["marts.facts"]
        assert published(warehouse, free_blocks) == [(0,)]
        assert published(warehouse, "select count(*) from marts.facts where payload like '%x'") == [(300000,)]
        # A few rows changed: the copy keeps the large table as it was, and only the small one is written.
        con.execute("update marts.small set id = id + 1")
        few = publish(con, warehouse, "run-3", None)
        assert few.changed == ["marts.small"]
        assert published(warehouse, free_blocks)[0][0] > 0
        assert published(warehouse, "select changed_by_run from meta.published_tables order by table_name") == \
            [("run-2",), ("run-3",)]


def test_a_large_fact_changed_in_a_few_months_has_only_those_months_replaced_in_a_copy(tmp_path):
    """marts.fct_orders is compared and replaced by month of its order date: a day's drop (rows added to the last
    month, one older order corrected, a month withdrawn, an undated row fixed) replaces those months in a copy of
    the published file and keeps the others' rows where they were. The published table then holds exactly the
    working table's rows."""
    warehouse = tmp_path / "crm.duckdb"
    same_rows = ("select count(*) from (select * from (select * from pub.marts.fct_orders except all "
                 "select * from marts.fct_orders) union all select * from (select * from marts.fct_orders "
                 "except all select * from pub.marts.fct_orders))")
    with duckdb.connect(str(tmp_path / "crm.work.duckdb")) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_orders as select 'O' || range as order_id, "
                    "date '2024-01-01' + cast(range % 730 as integer) as order_date, range * 1.5 as amount "
                    "from range(40000)")
        con.execute("insert into marts.fct_orders values ('UNDATED', null, 1.0)")
        con.execute("create table marts.dim_customers as select range as id from range(50000)")
        first = publish(con, warehouse, "run-1", None)
        assert first.months_replaced == {}
        assert published(warehouse, "select count(*), count(partition_month) from meta.published_partitions") == \
            [(25, 24)]

        con.execute("insert into marts.fct_orders select 'N' || range, date '2025-12-31', 2.0 from range(50)")
        con.execute("update marts.fct_orders set amount = 0 where order_id = 'O100'")  # an order of 2024-04
        con.execute("delete from marts.fct_orders where order_date between date '2024-07-01' and date '2024-07-31'")
        con.execute("update marts.fct_orders set amount = 2.0 where order_id = 'UNDATED'")
        december = con.execute("select count(*) from marts.fct_orders where order_date >= '2025-12-01'").fetchone()[0]
        second = publish(con, warehouse, "run-2", None)
        assert second.changed == ["marts.fct_orders"]
        assert second.months_replaced == {"marts.fct_orders": (4, 24)}  # 2024-04, 2024-07 (gone), 2025-12, undated
        assert con.execute(f"attach '{warehouse}' as pub (read_only)").execute(same_rows).fetchone()[0] == 0
        con.execute("detach pub")
        with duckdb.connect(str(warehouse), read_only=True) as published_con:
            # The kept months' rows were not written again: they still come before every replaced row.
            kept, replaced = published_con.execute(
                "select max(rowid) filter (where order_date not between '2024-04-01' and '2024-04-30' "
                "and order_date < '2025-12-01'), min(rowid) filter (where order_date between '2024-04-01' and "
                "'2024-04-30' or order_date >= '2025-12-01' or order_date is null) from marts.fct_orders").fetchone()
            assert kept < replaced
            assert published_con.execute(
                "select partition_month, row_count from meta.published_partitions where partition_month in "
                "('2024-07-01', '2025-12-01') order by 1").fetchall() == \
                [(date(2025, 12, 1), december)]

        # Most months changed (a column recomputed everywhere): the table is written whole, in a new file.
        con.execute("update marts.fct_orders set amount = amount + 1")
        third = publish(con, warehouse, "run-3", None)
        assert third.changed == ["marts.fct_orders"] and third.months_replaced == {}
        assert con.execute(f"attach '{warehouse}' as pub (read_only)").execute(same_rows).fetchone()[0] == 0
        con.execute("detach pub")
