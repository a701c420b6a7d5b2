"""Product associations on a hand-made basket set whose support / confidence / lift are computed by hand."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from dagster_project.analytics import baskets

AS_OF = date(2024, 3, 31)

# (order, customer, date, status, products)
ORDERS = [
    ("O1", "c1", date(2024, 1, 1), "paid", ["A", "B"]),
    ("O2", "c2", date(2024, 1, 2), "paid", ["A", "B", "C"]),
    ("O3", "c3", date(2024, 1, 3), "paid", ["A", "C"]),
    ("O4", "c1", date(2024, 1, 4), "paid", ["B", "B"]),  # a product on two lines counts once
    ("O5", "c4", date(2024, 1, 5), "paid", ["D"]),
    ("O6", "c4", date(2024, 1, 6), "cancelled", ["A", "B"]),
    ("O7", "c3", date(2024, 5, 1), "paid", ["A", "B"]),  # after AS_OF
]
N_ORDERS = 5  # paid orders up to AS_OF: O1-O5


@pytest.fixture
def con(tmp_path):
    items = pd.DataFrame(
        [(order, line, product, customer, day, status)
         for order, customer, day, status, products in ORDERS
         for line, product in enumerate(products, start=1)],
        columns=["order_id", "line_number", "product_id", "customer_key", "order_date", "status"],
    )
    products = pd.DataFrame({"product_id": list("ABCD"), "product_name": ["Apple", "Bread", "Cheese", "Dates"]})
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("CREATE SCHEMA marts")
    connection.execute("CREATE TABLE marts.fct_order_items AS SELECT * FROM items")
    connection.execute("CREATE TABLE marts.dim_products AS SELECT * FROM products")
    yield connection
    connection.close()


def rule(frame, a, b):
    rows = frame[(frame.product_id == a) & (frame.other_product_id == b)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_support_confidence_and_lift_match_hand_computation(con):
    pairs = baskets.product_pairs(con, AS_OF, min_support_orders=1)
    # n(A) = 3, n(B) = 3, n(C) = 2; n(AB) = 2, n(AC) = 2, n(BC) = 1 over 5 orders
    ab, ba = rule(pairs, "A", "B"), rule(pairs, "B", "A")
    assert (ab.pair_orders, ab.product_orders, ab.other_product_orders) == (2, 3, 3)
    assert ab.support == pytest.approx(2 / N_ORDERS)
    assert ab.confidence == pytest.approx(2 / 3)
    assert ab.lift == pytest.approx(2 * N_ORDERS / (3 * 3))
    ac, ca = rule(pairs, "A", "C"), rule(pairs, "C", "A")
    assert (ac.confidence, ca.confidence) == (pytest.approx(2 / 3), pytest.approx(1.0))
    assert ac.lift == pytest.approx(2 * N_ORDERS / (3 * 2))
    assert rule(pairs, "C", "B").lift == pytest.approx(1 * N_ORDERS / (3 * 2))
    assert len(pairs) == 6  # three pairs, both directions; D is never bought with anything
    # lift and support are symmetric, confidence is not
    assert (ab.lift, ab.support) == (ba.lift, ba.support)
    assert ac.confidence != ca.confidence


def test_thresholds_bound_the_pairs(con):
    frequent = baskets.product_pairs(con, AS_OF, min_support_orders=2)
    assert set(zip(frequent.product_id, frequent.other_product_id)) == {("A", "B"), ("B", "A"), ("A", "C"),
                                                                       ("C", "A")}
    top = baskets.product_pairs(con, AS_OF, min_support_orders=1, max_pairs=1)
    assert set(top.product_id) | set(top.other_product_id) == {"A", "B"}  # AB and AC tie on 2 orders: AB first


def test_as_of_excludes_later_orders(con):
    assert rule(baskets.product_pairs(con, AS_OF, min_support_orders=1), "A", "B").pair_orders == 2
    later = rule(baskets.product_pairs(con, date(2024, 6, 1), min_support_orders=1), "A", "B")
    assert (later.pair_orders, later.support) == (3, pytest.approx(3 / 6))
    assert baskets.product_pairs(con, date(2023, 12, 31), min_support_orders=1).empty


def test_also_bought_is_customer_level_and_ranked_by_lift(con):
    result = baskets.also_bought(con, AS_OF, top_n=2, min_confidence=0.0, min_customers=1)
    # customers: c1 {A, B}, c2 {A, B, C}, c3 {A, C}, c4 {D}: n(A) = 3, n(B) = 2, n(C) = 2, n(AB) = 2, n(AC) = 2,
    # n(BC) = 1 over 4 customers
    bread = result[result.product_id == "B"]
    assert bread.also_bought_product_id.tolist() == ["A", "C"]
    assert bread.lift.tolist() == pytest.approx([2 * 4 / (2 * 3), 1 * 4 / (2 * 2)])
    assert bread.confidence.tolist() == pytest.approx([1.0, 0.5])
    assert bread.customers_both.tolist() == [2, 1]
    assert (bread.product_name.unique().tolist(), bread.also_bought_product_name.tolist()) == (["Bread"],
                                                                                              ["Apple", "Cheese"])
    assert result[result.product_id == "A"].also_bought_product_id.tolist() == ["B", "C"]  # tie broken by id
    assert "D" not in set(result.product_id)
    confident = baskets.also_bought(con, AS_OF, top_n=5, min_confidence=0.6, min_customers=1)
    assert confident[confident.product_id == "B"].also_bought_product_id.tolist() == ["A"]


def test_empty_and_missing_tables_give_empty_frames(con):
    con.execute("DELETE FROM marts.fct_order_items")
    for function, columns in ((baskets.product_pairs, baskets.PRODUCT_PAIRS_COLUMNS),
                              (baskets.also_bought, baskets.ALSO_BOUGHT_COLUMNS)):
        for connection in (con, duckdb.connect()):
            result = function(connection, AS_OF)
            assert result.empty and list(result.columns) == list(columns)


def test_also_bought_on_a_customer_sample_keeps_the_strong_rules(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for customer in range(4000):
        products = set(rng.choice(list("CDEFGHIJ"), size=2, replace=False))
        if customer % 3 == 0:
            products |= {"A", "B"}  # A and B are bought by the same customers
        rows += [(f"o{customer}", i, p, f"c{customer}", AS_OF, "paid") for i, p in enumerate(sorted(products))]
    items = pd.DataFrame(rows, columns=["order_id", "line_number", "product_id", "customer_key", "order_date", "status"])
    products = pd.DataFrame({"product_id": list("ABCDEFGHIJ"), "product_name": list("ABCDEFGHIJ")})
    con = duckdb.connect(str(tmp_path / "sample.duckdb"))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.fct_order_items AS SELECT * FROM items")
    con.execute("CREATE TABLE marts.dim_products AS SELECT * FROM products")

    full = baskets.also_bought(con, AS_OF, top_n=1)
    sampled = baskets.also_bought(con, AS_OF, top_n=1, max_customers=1000)
    for frame in (full, sampled):
        top = frame.set_index("product_id")["also_bought_product_id"]
        assert top["A"] == "B" and top["B"] == "A"
    assert sampled["customers_both"].max() < full["customers_both"].max()  # computed on the sample
    assert sampled.set_index("product_id").loc["A", "lift"] == pytest.approx(
        full.set_index("product_id").loc["A", "lift"], rel=0.15)
