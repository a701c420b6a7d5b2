"""Product associations in DuckDB SQL over ``marts.fct_order_items`` (paid orders dated on or before ``as_of``).

Both functions count each product once per basket (order, or customer for :func:`also_bought`), drop products
below the minimum count before the self-join (a pair can never be more frequent than either of its products), and
self-join on the basket id with ``a.product_id < b.product_id`` (compared as dense integer keys), so the join only
produces each unordered pair of frequent products once per basket. Cost grows with the sum over baskets of
(frequent products in it)^2; DuckDB spills to disk beyond its ``memory_limit``.

Measures for a rule A -> B over N baskets: support = n(A and B) / N, confidence = n(A and B) / n(A),
lift = n(A and B) * N / (n(A) * n(B)) (symmetric; > 1 means bought together more often than by chance).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from dagster_project.analytics.marts_sql import query_marts

PRODUCT_PAIRS_COLUMNS = (
    "product_id", "other_product_id", "pair_orders", "product_orders", "other_product_orders", "support",
    "confidence", "lift",
)
ALSO_BOUGHT_COLUMNS = (
    "product_id", "product_name", "rank", "also_bought_product_id", "also_bought_product_name", "customers_both",
    "customers", "confidence", "lift",
)

# Pair counts of frequent products, from a ``basket`` CTE of distinct (basket_id, product_id); $min_count is the
# minimum number of baskets for a product and for a pair. Products get a dense integer key (in product_id order)
# for the self-join and the pair aggregation, the expensive steps, which run faster on integers than on text.
_PAIRS = """
basket_count AS (
    SELECT count(DISTINCT basket_id) AS n FROM basket
),
frequent AS (
    SELECT product_id, count(*) AS baskets, CAST(row_number() OVER (ORDER BY product_id) AS INTEGER) AS product_key
    FROM basket
    GROUP BY product_id
    HAVING count(*) >= $min_count
),
frequent_basket AS (
    SELECT b.basket_id, f.product_key FROM basket AS b JOIN frequent AS f USING (product_id)
),
pairs AS (
    SELECT a.product_key AS key_a, b.product_key AS key_b, count(*) AS pair_baskets
    FROM frequent_basket AS a
    JOIN frequent_basket AS b ON a.basket_id = b.basket_id AND a.product_key < b.product_key
    GROUP BY ALL
    HAVING count(*) >= $min_count
)"""

# Both directions of each pair in a ``kept_pairs`` CTE (a subset of ``pairs``) with their measures.
_RULES = """
rules AS (
    SELECT fa.product_id, fb.product_id AS other_product_id, p.pair_baskets,
           fa.baskets AS product_baskets, fb.baskets AS other_product_baskets,
           p.pair_baskets / n.n AS support,
           p.pair_baskets / fa.baskets AS confidence,
           p.pair_baskets * n.n / (fa.baskets * fb.baskets) AS lift
    FROM (SELECT key_a, key_b, pair_baskets FROM kept_pairs
          UNION ALL
          SELECT key_b, key_a, pair_baskets FROM kept_pairs) AS p
    JOIN frequent AS fa ON fa.product_key = p.key_a
    JOIN frequent AS fb ON fb.product_key = p.key_b
    CROSS JOIN basket_count AS n
)"""


def product_pairs(
    con: duckdb.DuckDBPyConnection, as_of: date, min_support_orders: int = 10, max_pairs: int = 10_000
) -> pd.DataFrame:
    """Order-level association rules A -> B, both directions of each pair (lift is the same both ways, confidence
    is not). Products and pairs in fewer than ``min_support_orders`` paid orders are dropped; of the rest, the
    ``max_pairs`` unordered pairs found in the most orders are kept (so up to 2 * max_pairs rows)."""
    sql = f"""
    WITH basket AS (
        SELECT DISTINCT order_id AS basket_id, product_id
        FROM marts.fct_order_items
        WHERE status = 'paid' AND order_date <= $as_of AND product_id IS NOT NULL
    ),
    {_PAIRS},
    kept_pairs AS (
        SELECT * FROM pairs
        ORDER BY pair_baskets DESC, key_a, key_b
        LIMIT $max_pairs
    ),
    {_RULES}
    SELECT r.product_id, r.other_product_id, r.pair_baskets AS pair_orders, r.product_baskets AS product_orders,
           r.other_product_baskets AS other_product_orders, r.support, r.confidence, r.lift
    FROM rules AS r
    ORDER BY r.pair_baskets DESC, r.lift DESC, r.product_id, r.other_product_id
    """
    params = {"as_of": as_of, "min_count": int(min_support_orders), "max_pairs": int(max_pairs)}
    return query_marts(con, sql, params, PRODUCT_PAIRS_COLUMNS)


def also_bought(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    top_n: int = 5,
    min_confidence: float = 0.05,
    min_customers: int = 5,
    max_customers: int = 200_000,
) -> pd.DataFrame:
    """"Customers who bought X also bought Y": for each product X, the ``top_n`` products Y with the highest lift
    among customers (both bought at any time up to ``as_of``, in any order), keeping rules with confidence
    X -> Y >= ``min_confidence`` and at least ``min_customers`` customers who bought both (lift on a handful of
    customers is noise).

    Customer-level pairs grow with the square of the products each customer bought, so above ``max_customers``
    the rules are estimated on a uniform sample of that many customers (a seeded hash of the key): confidence and
    lift are ratios and survive sampling; ``customers_both`` then counts sampled customers."""
    counted = query_marts(con, "SELECT count(DISTINCT customer_key) AS n FROM marts.fct_order_items "
                               "WHERE order_date <= $as_of", {"as_of": as_of}, ("n",))
    n_customers = int(counted["n"].iloc[0]) if len(counted) else 0
    keep = 10_000 if n_customers <= max_customers else max(1, 10_000 * max_customers // n_customers)
    sql = f"""
    WITH basket AS (
        SELECT DISTINCT customer_key AS basket_id, product_id
        FROM marts.fct_order_items
        WHERE status = 'paid' AND order_date <= $as_of AND product_id IS NOT NULL AND customer_key IS NOT NULL
          AND ($keep >= 10000 OR hash(customer_key) % 10000 < $keep)
    ),
    {_PAIRS},
    kept_pairs AS (SELECT * FROM pairs),
    {_RULES},
    ranked AS (
        SELECT *, row_number() OVER (
            PARTITION BY product_id ORDER BY lift DESC, confidence DESC, other_product_id) AS rank
        FROM rules
        WHERE confidence >= $min_confidence
        QUALIFY rank <= $top_n
    )
    SELECT r.product_id, p.product_name, r.rank, r.other_product_id AS also_bought_product_id,
           o.product_name AS also_bought_product_name, r.pair_baskets AS customers_both,
           r.product_baskets AS customers, r.confidence, r.lift
    FROM ranked AS r
    LEFT JOIN marts.dim_products AS p ON p.product_id = r.product_id
    LEFT JOIN marts.dim_products AS o ON o.product_id = r.other_product_id
    ORDER BY r.product_id, r.rank
    """
    params = {
        "as_of": as_of, "top_n": int(top_n), "min_confidence": float(min_confidence),
        "min_count": int(min_customers), "keep": keep,
    }
    return query_marts(con, sql, params, ALSO_BOUGHT_COLUMNS)
