"""An order's values as a file of order lines writes them: its total or discount on every line (a shop system's
Subtotal or Discount Amount column), kept once per order, since counted per line it would count the order once per
line; and its reference, customer and date on its first line only (Odoo), given to the lines that continue it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster_project.ingest.export_file import IngestError
from dagster_project.sql import identifier

if TYPE_CHECKING:
    from dagster_project.ingest.file_load import FileLoad


def keep_order_values_once(load: FileLoad) -> None:
    """In a file of order lines that carry their order's customer or date:

    - A line amount that holds one value per order (on every line, or on the first and blank on the others) and
      is not the lines' quantity x unit price is the order's: kept as an extra column, the lines priced at
      quantity x unit price.
    - A discount written with the same value on every line of an order whose lines are priced differently is one
      discount of the order: kept on the order's first line only. (Written on one line, it counts once either
      way.)"""
    delivered = set(load.layout.mapping.values())
    if load.entity.name != "order_items" or not delivered & {"customer_id", "order_date"}:
        return
    totals_per_order = "line_amount" in delivered and _line_amount_is_the_orders(load)
    if totals_per_order:
        name = load.layout.file_column("line_amount")
        if not {"quantity", "unit_price"} <= delivered:
            raise IngestError(
                f"{load.file.display}: {name!r} holds one value per order, not per line, and the file has no "
                "quantity and unit price to price its lines; map a per-line amount in mapping.yml")
        load.con.execute(
            f"UPDATE {load.table} SET _extra_columns = CAST(json_merge_patch(coalesce(_extra_columns, '{{}}'), "
            "json_object($name, line_amount)) AS VARCHAR), line_amount = NULL "
            "WHERE _source_file = $source_file", {"name": name, "source_file": load.file.source_file})
        load.layout = load.layout.without("line_amount")
        load.notes.append(f"{name!r} holds one value per order: kept as the order's, not the line's; lines priced "
                          "at quantity x unit price")
    # A file that writes the order's total on its lines writes its discount so too: one such order is evidence.
    if "discount" in delivered and (orders := _orders_repeating_their_discount(load, 1 if totals_per_order else 2)):
        (kept,) = load.con.execute(
            f"UPDATE {load.table} AS t SET discount = NULL FROM ("
            f"  SELECT order_id, min(_row_number) AS first_row FROM {load.table} "
            "   WHERE _source_file = $source_file GROUP BY order_id) AS o "
            "WHERE t._source_file = $source_file AND t.order_id = o.order_id AND t._row_number <> o.first_row "
            "AND t.order_id IN (SELECT unnest($orders))",
            {"source_file": load.file.source_file, "orders": orders}).fetchone()
        load.notes.append(f"{load.layout.file_column('discount')!r} repeats one discount on every line of "
                          f"{len(orders)} order(s): counted once per order ({kept} line values set aside)")


def _order_shapes(load: FileLoad, column: str, nonzero: bool = False) -> tuple[int, int, int]:
    """Of the file's orders of several lines that have a value in `column` (a value other than zero, when
    `nonzero`): how many, how many carry one value on every line, and how many carry one on some lines only."""
    value = f"try_cast({identifier(column)} AS DOUBLE)"
    present = f"{value} <> 0" if nonzero else f"{identifier(column)} IS NOT NULL"
    return load.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE values_ = 1 AND filled = lines), "
        "count(*) FILTER (WHERE values_ = 1 AND filled < lines) FROM ("
        f"  SELECT count(*) AS lines, count(*) FILTER (WHERE {present}) AS filled, "
        f"         count(DISTINCT {identifier(column)}) FILTER (WHERE {present}) AS values_ "
        f"  FROM {load.table} WHERE _source_file = $source_file GROUP BY order_id "
        "   HAVING count(*) > 1 AND filled > 0)",
        {"source_file": load.file.source_file}).fetchone()


def _line_amount_is_the_orders(load: FileLoad) -> bool:
    """Most orders of several lines (80%) carry one line amount on all their lines that have one (on some lines
    only: one such order is evidence; on all lines: two), and it is not the lines' quantity x unit price."""
    orders, on_every_line, on_some_lines = _order_shapes(load, "line_amount")
    if not orders or on_every_line + on_some_lines < 0.8 * orders or (on_some_lines == 0 and orders < 2):
        return False
    if "unit_price" not in set(load.layout.mapping.values()):
        return True
    # Priced lines decide against it: compared on the lines of orders of several lines only (a single line's
    # amount is its order's either way).
    priced, lines = load.con.execute(
        "SELECT count(*) FILTER (WHERE abs(try_cast(line_amount AS DOUBLE) - try_cast(quantity AS DOUBLE) * "
        "try_cast(unit_price AS DOUBLE)) < 0.01), count(try_cast(line_amount AS DOUBLE)) "
        f"FROM {load.table} WHERE _source_file = $source_file AND order_id IN ("
        f"  SELECT order_id FROM {load.table} WHERE _source_file = $source_file GROUP BY order_id "
        "   HAVING count(*) > 1)", {"source_file": load.file.source_file}).fetchone()
    return not (lines and priced >= 0.8 * lines)


def _orders_repeating_their_discount(load: FileLoad, evidence: int) -> list[str]:
    """The orders carrying one non-zero discount on every line, when they are most (80%) of the orders of several
    lines with a discount and at least `evidence` of them price their lines differently; else none. Lines of one
    price carry one per-line discount as well (10% off three shirts of one price): such an order is no evidence
    either way, and a file without evidence keeps the contract's per-line discount."""
    orders, on_every_line, _ = _order_shapes(load, "discount", nonzero=True)
    if orders < evidence or on_every_line < 0.8 * orders:
        return []
    line_amount = ("coalesce(try_cast(line_amount AS DOUBLE), "
                   "try_cast(quantity AS DOUBLE) * try_cast(unit_price AS DOUBLE))")
    repeating = load.con.execute(
        f"SELECT order_id, count(DISTINCT {line_amount}) > 1 FROM {load.table} WHERE _source_file = $source_file "
        "GROUP BY order_id HAVING count(*) > 1 AND count(DISTINCT discount) = 1 AND count(discount) = count(*) "
        "AND bool_and(try_cast(discount AS DOUBLE) <> 0) ORDER BY order_id",
        {"source_file": load.file.source_file}).fetchall()
    if sum(differently_priced for _, differently_priced in repeating) < evidence:
        return []
    return [order_id for order_id, _ in repeating]


# The columns of an order that a line of it may carry (a file of order lines).
ORDER_COLUMNS = ("order_id", "customer_id", "order_date", "status", "currency", "channel", "rep_id")


def fill_continuation_lines(load: FileLoad) -> None:
    """Lines that continue the order above them: some systems (Odoo) write an order's reference, customer, date and
    status on its first line only, and leave them blank on its other lines. Read so only when the file is plainly of
    that shape: its first line names an order, no order's reference is written on two lines, and every line without
    one leaves all of the order's columns blank (a line that names a customer or a date without an order is broken,
    not a continuation, and stays to be quarantined as missing its order_id). Each such line takes its order's values
    from the order's first line."""
    delivered = set(load.layout.mapping.values())
    if load.entity.name != "order_items" or "order_id" not in delivered:
        return
    columns = [c for c in ORDER_COLUMNS if c in delivered]
    # (The mapping's currency fills a blank currency cell as the rows are inserted: no sign of a line of its own.)
    others = [c for c in columns if c != "order_id" and not (c == "currency" and load.mapping.currency)]
    params = {"source_file": load.file.source_file}
    own_values = " OR ".join(f"{identifier(c)} IS NOT NULL" for c in others) or "false"
    # Most files have an order id on every line: one count says so before the costlier look at the ids.
    (blank, broken, first_named) = load.con.execute(
        "SELECT count(*) FILTER (WHERE order_id IS NULL), "
        f"count(*) FILTER (WHERE order_id IS NULL AND ({own_values})), arg_min(order_id IS NOT NULL, _row_number) "
        f"FROM {load.table} WHERE _source_file = $source_file", params).fetchone()
    if not blank or broken or not first_named:
        return
    (repeated,) = load.con.execute(
        f"SELECT count(*) FROM (SELECT order_id FROM {load.table} WHERE _source_file = $source_file "
        "AND order_id IS NOT NULL GROUP BY order_id HAVING count(*) > 1)", params).fetchone()
    if repeated:
        return
    firsts = ", ".join(f"first_value({identifier(c)}) OVER orders AS {identifier(c)}" for c in columns)
    (filled,) = load.con.execute(
        f"UPDATE {load.table} AS t SET {', '.join(f'{identifier(c)} = o.{identifier(c)}' for c in columns)} FROM ("
        f"  SELECT _row_number, {firsts} "
        f"  FROM (SELECT *, count(order_id) OVER (ORDER BY _row_number) AS _order FROM {load.table} "
        "         WHERE _source_file = $source_file) "
        "  WINDOW orders AS (PARTITION BY _order ORDER BY _row_number)) AS o "
        "WHERE t._source_file = $source_file AND t._row_number = o._row_number AND t.order_id IS NULL",
        params).fetchone()
    load.notes.append(f"{filled:,} line(s) without an order continue the order above them (its reference, customer "
                      "and date written on its first line only): read as that order's")
