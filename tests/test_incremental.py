"""Incremental refreshes give exactly what a full one gives.

The generated sample's daily drops, then hand-made drops of the awkward kinds (a newer version of an old order, a
row delivered again on a later day, conflicting duplicates resolved later, quarantined rows fixed by a later drop, a
drop file delivered again with other content, a drop folder of an earlier date arriving last, customers merged and
split again, a record moved to another customer, a customer record arriving after its interactions, a record entering
the as-of window) are applied one refresh at a time: ingestion, then an incremental `dbt build`. A second warehouse
loads the final exports at once and builds them in full. Every table and view the refresh builds before the analytics
(raw, staging, intermediate, marts, audit, restricted) must hold the same rows in both, compared with EXCEPT ALL both
ways (load times and the per-customer models' build history aside). Each incremental build is also published, as a
refresh publishes it (the large facts month by month in a copy of the last publication), and the last publication's
marts must equal the full build's.
"""

from __future__ import annotations

import csv
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import SAMPLE_END, run_dbt
from dagster_project import ingest
from dagster_project.contract import ENTITIES
from dagster_project.publish.publication import publish

pytestmark = pytest.mark.slow

# Everything a refresh builds before the analytics; the analytics fit models and are compared elsewhere.
COMPARED_SCHEMAS = ("raw", "staging", "intermediate", "marts", "audit", "restricted")
# When a file was loaded differs between the two warehouses by design, and so do the files' identities on disk (the
# full build reads copies of the drops).
LOAD_TIME_COLUMNS = {"_loaded_at", "loaded_at", "quarantined_at", "file_identity"}
INCREMENTAL_MODELS = ("base_crm__orders", "base_crm__order_items", "base_crm__interactions")
CUSTOMER_INCREMENTAL_MODELS = ("int_orders_deduplicated", "int_interactions_deduplicated", "fct_orders",
                               "fct_order_items", "fct_interactions")
ORDER_INCREMENTAL_MODEL = "int_orders_combined"
# The per-customer models' record of their builds (which customers each recomputed, which the facts applied): a
# history of the builds, which differs by design.
BUILD_HISTORY_SUFFIXES = ("__changes", "__applied")
ORDER_COLUMNS = ["order_id", "customer_id", "order_date", "status", "amount", "currency", "channel", "rep_id",
                 "updated_at"]
LINE_COLUMNS = ["order_id", "line_number", "product_id", "quantity", "unit_price", "discount", "updated_at"]
CUSTOMER_COLUMNS = ["customer_id", "name", "email", "phone", "gender", "birth_date", "city", "region", "country",
                    "signup_date", "acquisition_channel", "marketing_consent", "updated_at"]
INTERACTION_COLUMNS = ["interaction_id", "customer_id", "interaction_type", "occurred_at", "campaign_id", "rep_id"]


def load(work: Path, exports: Path) -> None:
    with duckdb.connect(str(work)) as con:
        for _ in ingest.ingest_entities(con, exports, [entity.name for entity in ENTITIES]):
            pass


def dbt_build(work: Path, target: Path, full_refresh: bool = False, select: tuple[str, ...] = ()) -> None:
    """The refresh's `dbt build` with the default settings' vars, models only (the equivalence is the test here); of
    the `select`ed models only, if any."""
    run_dbt(work, target, "build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test", "--quiet",
            *(["--full-refresh"] if full_refresh else []), *(["--select", *select] if select else []))


def logged_row_counts(target: Path) -> dict[str, int]:
    """The latest row count dbt's log holds for each incremental model."""
    counts = {}
    log = (target / "logs" / "dbt.log").read_text()
    for model, count in re.findall(r"crm row count: model\.crm\.(\w+) (\d+)", log):
        if model in INCREMENTAL_MODELS:
            counts[model] = int(count)
    return counts


def logged_recomputed_customers(target: Path, what: str = "customers") -> dict[str, int]:
    """The customers (or orders) each per-customer (per-order) incremental model recomputed in the latest build
    (dbt's log)."""
    counts = {}
    log = (target / "logs" / "dbt.log").read_text().rsplit("Running with dbt=", 1)[-1]
    for model, count in re.findall(rf"crm {what} recomputed: model\.crm\.(\w+) (\d+)", log):
        counts[model] = int(count)
    return counts


def customers(work: Path) -> int:
    with duckdb.connect(str(work), read_only=True) as con:
        return con.execute("select count(distinct customer_key) from intermediate.int_customer_identities_resolved"
                           ).fetchone()[0]


def orders(work: Path) -> int:
    with duckdb.connect(str(work), read_only=True) as con:
        return con.execute(f"select count(*) from intermediate.{ORDER_INCREMENTAL_MODEL}").fetchone()[0]


def golden_keys(work: Path, *customer_ids: str) -> list[str]:
    with duckdb.connect(str(work), read_only=True) as con:
        keys = dict(con.execute("select source_customer_id, customer_key from "
                                "intermediate.int_customer_identities_resolved").fetchall())
        return [keys.get(customer_id) for customer_id in customer_ids]


def table_row_counts(work: Path) -> dict[str, int]:
    with duckdb.connect(str(work), read_only=True) as con:
        return {model: con.execute(f"select count(*) from staging.{model}").fetchone()[0]
                for model in INCREMENTAL_MODELS}


def differences(first: Path, second: Path,
                schemas: tuple[str, ...] = COMPARED_SCHEMAS) -> dict[str, tuple[int, int, int]]:
    """Relation -> (rows, rows only in first, rows only in second), for every relation of `schemas` in `first` that
    differs."""
    found = {}
    with duckdb.connect(str(first), read_only=True) as con:
        con.execute(f"attach '{second}' as other (read_only)")
        relations = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
            "and schema_name in (select unnest($schemas)) union all "
            "select schema_name, view_name from duckdb_views() where database_name = current_database() "
            "and schema_name in (select unnest($schemas)) order by 1, 2",
            {"schemas": list(schemas)}).fetchall()
        assert len(relations) > (40 if schemas == COMPARED_SCHEMAS else 10), relations
        for schema, name in relations:
            if name.endswith(BUILD_HISTORY_SUFFIXES):
                continue
            columns = [c for (c,) in con.execute(
                "select column_name from duckdb_columns() where database_name = current_database() "
                "and schema_name = ? and table_name = ? order by column_index", [schema, name]).fetchall()
                       if c not in LOAD_TIME_COLUMNS]
            listed = ", ".join(f'"{c}"' for c in columns)
            mine, theirs = f'"{schema}"."{name}"', f'other."{schema}"."{name}"'
            only_first = con.execute(f"select count(*) from (select {listed} from {mine} "
                                     f"except all select {listed} from {theirs})").fetchone()[0]
            only_second = con.execute(f"select count(*) from (select {listed} from {theirs} "
                                      f"except all select {listed} from {mine})").fetchone()[0]
            if only_first or only_second:
                rows = con.execute(f"select count(*) from {mine}").fetchone()[0]
                found[f"{schema}.{name}"] = (rows, only_first, only_second)
    return found


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:  # (the sample's customer file starts with a BOM)
        return list(csv.DictReader(f))


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


class LateDrops:
    """Hand-made drops after the sample's last one, each step a change to the exports folder."""

    def __init__(self, sample: Path):
        snapshot = sorted(p for p in sample.iterdir() if p.is_dir())[0]
        orders = _rows(snapshot / "orders.csv")
        self.corrected, self.redelivered, self.late_version, self.withdrawn = orders[0], orders[1], orders[2], orders[3]
        self.snapshot = snapshot.name
        self.customer = self.corrected["customer_id"]
        self.line = next(line for line in _rows(snapshot / "order_items.csv")
                         if line["order_id"] == self.corrected["order_id"])
        self.interaction = _rows(snapshot / "interactions.csv")[0]
        # Two pairs of customers with e-mails, orders and interactions: a later drop gives one of each pair the
        # other's e-mail (one person now); a later one gives the second pair's merged customer a new e-mail (two
        # people again). The first pair stays one person.
        people = {row["customer_id"]: row for row in _rows(snapshot / "customers.csv") if row["email"]}
        active = ({row["customer_id"] for row in orders} & {row["customer_id"] for row in
                                                             _rows(snapshot / "interactions.csv")})
        self.kept, self.merged, self.kept_again, self.split = (people[c] for c in sorted(active & set(people))[:4])
        # Customers no other step touches, so that only the change made to them can recompute them (a missed change
        # would stay): one whose interaction enters the as-of window later, one whose order and one whose interaction
        # a newer version moves to self.customer.
        touched = {self.customer, self.interaction["customer_id"], *(row["customer_id"] for row in orders[:4]),
                   *(person["customer_id"] for person in (self.kept, self.merged, self.kept_again, self.split))}
        interactions = _rows(snapshot / "interactions.csv")
        bystanders = sorted(active - touched)
        self.waiting_customer = bystanders[0]
        self.moved_order = next(row for row in orders if row["customer_id"] == bystanders[1])
        self.moved_interaction = next(row for row in interactions if row["customer_id"] == bystanders[2])

    def _line(self, order_id: str, line_number: str, unit_price: str) -> dict[str, str]:
        return {"order_id": order_id, "line_number": line_number, "product_id": self.line["product_id"],
                "quantity": "1", "unit_price": unit_price, "discount": "0", "updated_at": "2026-10-31 08:00:00"}

    def _order(self, order_id: str, amount: str, updated_at: str, **values) -> dict[str, str]:
        return {"order_id": order_id, "customer_id": self.customer, "order_date": "2026-10-30 10:00:00",
                "status": "paid", "amount": amount, "currency": "CNY", "updated_at": updated_at, **values}

    def first(self, exports: Path, correction_amount: str = "999.00", retracted: bool = True) -> None:
        """2026-11-01: a newer version of an old order and of its line, an old order and an old interaction
        delivered again, an unreadable amount and an unknown interaction type (quarantined), two orders with two
        conflicting versions each (one resolved later), an order and a newer version of an old order that a later
        delivery of this file retracts (the old order's earlier version must win again), an order its lines price."""
        drop = exports / "2026-11-01"
        orders = [
            {**self.corrected, "status": "refunded", "amount": correction_amount, "updated_at": "2026-11-01 09:00:00"},
            self.redelivered,
            self._order("O-FIX-1", "12.3x", "2026-10-31 08:00:00"),
            self._order("O-CONF-1", "50.00", "2026-10-31 08:00:00"),
            self._order("O-CONF-1", "60.00", "2026-10-31 08:00:00"),
            self._order("O-CONF-2", "80.00", "2026-10-31 08:00:00"),
            self._order("O-CONF-2", "90.00", "2026-10-31 08:00:00"),
        ]
        if retracted:
            orders.append(self._order("O-GONE-1", "70.00", "2026-10-31 08:00:00"))
            orders.append({**self.withdrawn, "amount": "777.00", "updated_at": "2026-11-01 09:00:00"})
        # An order whose header has no amount, as in a marketplace's order file: its lines price it (one more
        # arrives in self.second).
        orders.append(self._order("O-LINES-1", "", "2026-10-31 08:00:00"))
        _write(drop / "orders.csv", ORDER_COLUMNS, orders)
        _write(drop / "order_items.csv", LINE_COLUMNS, [
            {**self.line, "quantity": "3", "updated_at": "2026-11-01 09:00:00"},
            {"order_id": "O-FIX-1", "line_number": "1", "product_id": self.line["product_id"], "quantity": "1",
             "unit_price": "123.00", "discount": "0", "updated_at": "2026-10-31 08:00:00"},
            self._line("O-LINES-1", "1", "20.00"),
        ])
        _write(drop / "interactions.csv", INTERACTION_COLUMNS, [
            self.interaction,
            {"interaction_id": "I-FIX-1", "customer_id": self.customer, "interaction_type": "fax",
             "occurred_at": "2026-10-31 12:00:00", "campaign_id": "", "rep_id": ""},
            # A customer whose record arrives in a later drop (self.merge).
            {"interaction_id": "I-LATE-1", "customer_id": "C-LATE-1", "interaction_type": "call",
             "occurred_at": "2026-10-31 13:00:00", "campaign_id": "", "rep_id": ""},
        ])

    def second(self, exports: Path) -> None:
        """2026-11-02: the unreadable amount and the unknown type fixed, the conflict resolved by a newer version, an
        older version of the corrected order (it must not win: its updated_at is older), and a second line of the order
        its lines price."""
        drop = exports / "2026-11-02"
        _write(drop / "orders.csv", ORDER_COLUMNS, [
            self._order("O-FIX-1", "123.00", "2026-11-02 08:00:00"),
            self._order("O-CONF-1", "55.00", "2026-11-02 08:00:00"),
            {**self.corrected, "amount": "1.00", "updated_at": "2026-10-01 00:00:00"},
        ])
        _write(drop / "order_items.csv", LINE_COLUMNS, [self._line("O-LINES-1", "2", "5.00")])
        _write(drop / "interactions.csv", INTERACTION_COLUMNS, [
            {"interaction_id": "I-FIX-1", "customer_id": self.customer, "interaction_type": "call",
             "occurred_at": "2026-10-31 12:00:00", "campaign_id": "", "rep_id": ""},
        ])

    def merge(self, exports: Path) -> None:
        """2026-11-03: two customers take another's e-mail (their orders and interactions become one customer's), and
        the record of the customer of an earlier interaction arrives."""
        _write(exports / "2026-11-03" / "customers.csv", CUSTOMER_COLUMNS, [
            {**self.merged, "email": self.kept["email"], "updated_at": "2026-11-03 08:00:00"},
            {**self.split, "email": self.kept_again["email"], "updated_at": "2026-11-03 08:00:00"},
            {**self.kept, "customer_id": "C-LATE-1", "name": "Late Arrival", "email": "late.arrival@example.com",
             "phone": "", "updated_at": "2026-11-03 08:00:00"},
        ])

    def split_and_moves(self, exports: Path) -> None:
        """2026-11-04: a merged customer's e-mail changes again: two customers as before. Newer versions of an old
        order and an old interaction on another customer, and an interaction dated after the as-of date (the latest
        order date) until a later drop's order."""
        drop = exports / "2026-11-04"
        _write(drop / "customers.csv", CUSTOMER_COLUMNS, [
            {**self.split, "email": "new.address@example.com", "updated_at": "2026-11-04 08:00:00"},
        ])
        _write(drop / "orders.csv", ORDER_COLUMNS, [
            {**self.moved_order, "customer_id": self.customer, "updated_at": "2026-11-04 08:00:00"}])
        _write(drop / "interactions.csv", INTERACTION_COLUMNS, [
            {**self.moved_interaction, "customer_id": self.customer},
            {"interaction_id": "I-WAIT-1", "customer_id": self.waiting_customer, "interaction_type": "call",
             "occurred_at": "2026-11-04 09:00:00", "campaign_id": "", "rep_id": ""},
        ])

    def redelivery(self, exports: Path) -> None:
        """2026-11-01/orders.csv delivered again, other content: the retracted order gone, another correction."""
        self.first(exports, correction_amount="888.00", retracted=False)

    def earlier_folder(self, exports: Path) -> None:
        """A drop folder dated before the snapshot, arriving last: a version of an old order newer than the
        snapshot's (it wins, whatever its drop), and an order from long ago. With it, 2026-11-05: an order of that
        day moves the as-of date past the waiting interaction (split_and_moves)."""
        _write(exports / "2026-11-05" / "orders.csv", ORDER_COLUMNS, [
            self._order("O-NEXT-1", "10.00", "2026-11-05 12:00:00", order_date="2026-11-05 12:00:00")])
        drop = exports / (SAMPLE_END.replace(day=27)).isoformat()
        _write(drop / "orders.csv", ORDER_COLUMNS, [
            {**self.late_version, "channel": "store", "updated_at": "2026-10-27 23:00:00"},
            self._order("O-LATE-1", "42.00", "2025-05-01 12:00:00", order_date="2025-05-01 11:00:00"),
        ])


def test_daily_drops_applied_one_refresh_at_a_time_equal_one_full_refresh(sample_export, tmp_path, monkeypatch):
    sample, _ = sample_export
    late = LateDrops(sample)
    incremental, full = tmp_path / "incremental", tmp_path / "full"
    incremental_work = tmp_path / "incremental.work.duckdb"
    steps = [lambda exports, d=drop: shutil.copytree(d, exports / d.name)
             for drop in sorted(p for p in sample.iterdir() if p.is_dir())]
    # A new pseudonym secret, and no drop: every customer's facts change. It and the redelivery recompute every
    # customer: what comes after them must be right on its own.
    new_secret = lambda exports: monkeypatch.setenv("CRM_PSEUDONYM_KEY", "a-new-secret-" + "0" * 40)  # noqa: E731
    steps += [late.first, late.second, late.redelivery, new_secret, late.merge, late.split_and_moves,
              late.earlier_folder]
    incremental.mkdir()
    recomputed_at_all = set()
    # Each build's marts published as a refresh publishes them: the large facts month by month in a copy of the last
    # publication, when few months changed.
    published, months_replaced = tmp_path / "published" / "crm.duckdb", []
    for number, step in enumerate(steps):
        step(incremental)
        load(incremental_work, incremental)
        if step == late.merge:
            # A build that stops after the deduplication models (as a failed run would): the next build's facts apply
            # this one's changes too.
            dbt_build(incremental_work, tmp_path / "target_incremental",
                      select=("+int_orders_deduplicated", "+int_interactions_deduplicated"))
            pairs = [late.kept["customer_id"], late.merged["customer_id"], late.kept_again["customer_id"],
                     late.split["customer_id"]]
            assert golden_keys(incremental_work, *pairs, "C-LATE-1") == \
                [min(pairs[:2])] * 2 + [min(pairs[2:])] * 2 + ["C-LATE-1"]
            continue
        if step == late.split_and_moves:
            # Subset builds, as materialising some assets runs them: the deduplication model after the base models
            # but not after int_orders_combined (its records are that table's: it must not take the new loads as
            # read), then after it; then fct_order_items alone, before fct_orders applied that build (it must not
            # either). The full build after them must still come out right.
            for select in (("base_crm__orders", "base_crm__order_items", "int_orders_deduplicated"),
                           ("+int_orders_deduplicated",), ("fct_order_items",)):
                dbt_build(incremental_work, tmp_path / "target_subsets", select=select)
        dbt_build(incremental_work, tmp_path / "target_incremental")
        with duckdb.connect(str(incremental_work)) as con:
            months_replaced.append(publish(con, published, f"run-{number}", None).months_replaced)
            if step == late.second:  # a late line reprices its order at once (the redelivery recomputes them all)
                assert con.execute("select amount_original from intermediate.int_orders_combined "
                                   "where order_id = 'O-LINES-1'").fetchall() == [(25.0,)]
        if number > 0:  # the first build created the models; every later one updated them
            for model in INCREMENTAL_MODELS + CUSTOMER_INCREMENTAL_MODELS + (ORDER_INCREMENTAL_MODEL,):
                compiled = next((tmp_path / "target_incremental" / "run").rglob(f"{model}.sql")).read_text().lower()
                # (The per-customer and per-order models delete in their pre-hook.)
                assert "insert into" in compiled and ("delete from" in compiled) == (model in INCREMENTAL_MODELS), model
            # The combined orders recompute the orders a drop's rows carry: all of them only when a load they read is
            # gone (the redelivery), none when no load is new to them (the new secret; the moves, which the subset
            # builds before this one applied).
            (recomputed_orders,) = logged_recomputed_customers(tmp_path / "target_incremental", "orders").items()
            assert recomputed_orders[0] == ORDER_INCREMENTAL_MODEL
            if step == late.redelivery:
                assert recomputed_orders[1] >= orders(incremental_work), recomputed_orders
            elif step in (new_secret, late.split_and_moves):
                assert recomputed_orders[1] == 0, recomputed_orders
            else:
                assert 0 < recomputed_orders[1] < orders(incremental_work) / 4, recomputed_orders
            # The deduplication models recompute the customers a drop touches, not all of them.
            recomputed = logged_recomputed_customers(tmp_path / "target_incremental")
            assert set(recomputed) == set(CUSTOMER_INCREMENTAL_MODELS), recomputed
            if step == new_secret:  # (the facts' pseudonyms all changed)
                assert {model: count for model, count in recomputed.items() if not model.startswith("fct_")} == \
                    {"int_orders_deduplicated": 0, "int_interactions_deduplicated": 0}, recomputed
                assert all(count >= customers(incremental_work) for model, count in recomputed.items()
                           if model.startswith("fct_")), recomputed
            elif step != late.redelivery:  # (a load they read is gone: every customer)
                assert all(count < customers(incremental_work) / 4 for count in recomputed.values()), recomputed
            recomputed_at_all |= {model for model, count in recomputed.items() if count}
            # The count each model's post-hook logged for Dagster (dbt/macros/row_counts.sql) is taken after the
            # model's own post-hook forgot the rows of replaced loads (the redelivery replaces one).
            assert logged_row_counts(tmp_path / "target_incremental") == table_row_counts(incremental_work)

    assert recomputed_at_all == set(CUSTOMER_INCREMENTAL_MODELS)
    shutil.copytree(incremental, full)
    full_work = tmp_path / "full.work.duckdb"
    load(full_work, full)
    dbt_build(full_work, tmp_path / "target_full", full_refresh=True)

    assert differences(incremental_work, full_work) == {}
    # The last publication holds the full build's marts, though its facts were kept up to date month by month.
    assert any(replaced for replaced in months_replaced[1:]), months_replaced
    assert differences(published, full_work, schemas=("marts",)) == {}
    pairs = [late.kept["customer_id"], late.merged["customer_id"], late.kept_again["customer_id"],
             late.split["customer_id"]]
    assert golden_keys(incremental_work, *pairs) == [min(pairs[:2])] * 2 + pairs[2:]
    # And the awkward records came out as they should.
    with duckdb.connect(str(incremental_work), read_only=True) as con:
        def order(order_id):
            return con.execute("select amount_original, status from staging.stg_crm__orders where order_id = ?",
                               [order_id]).fetchall()
        assert order(late.corrected["order_id"]) == [(888.0, "refunded")]
        assert order("O-FIX-1") == [(123.0, "paid")] and order("O-CONF-1") == [(55.0, "paid")]
        assert order("O-GONE-1") == [] and order("O-LATE-1") == [(42.0, "paid")]
        assert con.execute("select amount_original from intermediate.int_orders_combined where order_id = 'O-LINES-1'"
                           ).fetchall() == [(25.0,)]
        assert con.execute("select _source_file from staging.stg_crm__orders where order_id = ?",
                           [late.withdrawn["order_id"]]).fetchone() == (f"{late.snapshot}/orders.csv",)
        assert con.execute("select channel from staging.stg_crm__orders where order_id = ?",
                           [late.late_version["order_id"]]).fetchone() == ("store",)
        assert con.execute("select quantity from staging.stg_crm__order_items where order_id = ? and line_number = ?",
                           [late.line["order_id"], int(late.line["line_number"])]).fetchone() == (3,)
        assert con.execute("select interaction_type from staging.stg_crm__interactions "
                           "where interaction_id = 'I-FIX-1'").fetchone() == ("call",)
        outcomes = con.execute("select _row_number, outcome, reason from audit.audit_raw_rows_classified "
                               "where _source_file = '2026-11-01/orders.csv' order by 1").fetchall()
        assert outcomes == [(1, "landed", None), (2, "landed", None), (3, "quarantined", "unparseable amount"),
                            (4, "superseded", None), (5, "superseded", None),
                            (6, "quarantined", "conflicting duplicate"), (7, "landed", None), (8, "landed", None)]
        assert con.execute("select outcome, reason from audit.audit_raw_rows_classified "
                           "where _source_file = '2026-11-01/interactions.csv' order by _row_number").fetchall() == \
            [("landed", None), ("quarantined", "unknown interaction_type"), ("landed", None)]
        assert con.execute("select customer_key, order_date from intermediate.int_orders_deduplicated "
                           "where order_id = ?", [late.moved_order["order_id"]]).fetchall() == \
            [(late.customer, date.fromisoformat(late.moved_order["order_date"][:10]))]
        assert con.execute("select count(*) from intermediate.int_interactions_deduplicated "
                           "where interaction_id = 'I-WAIT-1'").fetchone() == (1,)
        # The interaction whose customer's record came later is that customer's.
        assert con.execute("select customer_key from intermediate.int_interactions_deduplicated "
                           "where interaction_id = 'I-LATE-1'").fetchall() == [("C-LATE-1",)]
