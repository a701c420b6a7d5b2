"""Orders and order lines: the BG/NBD and campaign purchases of a chunk turned into orders (Gamma-Gamma values, a
few cancelled / refunded copies, some in USD / EUR), split into lines that add up exactly, and their exports with
late arrivals, re-deliveries and planted bad dates, bad quantities and orphan lines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dagster_project.sample_data.customers import CustomerRecords
from dagster_project.sample_data.drops import DropWriter, drop_files, redelivery, replace_rows, take_rows
from dagster_project.sample_data.export_calendar import Calendar
from dagster_project.sample_data.formatting import CNY_AMOUNT_STYLE_P, DATETIME_STYLE_P, format_amounts, format_times
from dagster_project.sample_data.ids import IdCounters, id_text
from dagster_project.sample_data.params import (
    BAD_DATE_RATE, BAD_DATES, BAD_QUANTITIES, DAY, FX_RATES, HOUR, NEGATIVE_QTY_RATE, ORPHAN_RATE, TEXT_QTY_RATE,
    Params,
)
from dagster_project.sample_data.persons import Persons
from dagster_project.sample_data.reference import Reference
from dagster_project.sample_data.truth import TruthWriter
from dagster_project.sample_data.vectorised import (
    blank, choose, group_rank, group_starts, int_text, join_text, pick_labels,
)

_ORDER_CHANNELS = ["online", "app", "store", "phone"]
_ORDER_CHANNEL_P = [0.5, 0.3, 0.15, 0.05]
_LINE_COUNT_P = [0.2, 0.2, 0.25, 0.2, 0.15]  # 1..5 lines, ~2.9 on average


@dataclass
class Orders:
    """One chunk's orders in time order, with their lines (``line_*`` and the per-line arrays)."""

    person: np.ndarray
    record: np.ndarray
    t: np.ndarray
    status: np.ndarray  # 0 paid, 1 cancelled, 2 refunded
    currency: np.ndarray  # index into FX_RATES
    amount: np.ndarray  # cents in the order's currency
    updated: np.ndarray
    channel: np.ndarray
    rep: np.ndarray  # -1 if none
    number: np.ndarray
    campaign: np.ndarray  # e-mail campaign whose open / click caused the purchase, -1 for BG/NBD purchases
    line_order: np.ndarray  # per order line: index of its order
    line_number: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray  # cents in the order's currency
    discount: np.ndarray


def make_orders(rng, persons: Persons, records: CustomerRecords, repeats, campaign_buys, cal: Calendar,
                ref: Reference, params: Params, counters: IdCounters) -> Orders:
    """Signup, repeat and campaign purchases as orders plus cancelled / refunded copies, valued and split into lines."""
    repeat_person, repeat_t = repeats
    buy_person, buy_record, buy_t, buy_campaign = campaign_buys
    person = np.concatenate([np.arange(persons.size), repeat_person, buy_person])
    caused_by = np.concatenate([np.full(persons.size + repeat_person.size, -1), buy_campaign])
    t = np.concatenate([persons.t0, repeat_t, buy_t])
    record = np.concatenate([np.arange(persons.size), records.for_events(rng, repeat_person, repeat_t), buy_record])

    # Cancelled and refunded orders are extra orders later the same day, so the purchase process stays BG/NBD.
    u = rng.random(t.size)
    extra = np.flatnonzero(u < params.cancelled_rate + params.refunded_rate)
    extra_t = np.minimum(t[extra] + rng.integers(60, 3 * HOUR, extra.size), (t[extra] // DAY + 1) * DAY - 1)
    status = np.concatenate([np.zeros(t.size, np.int8), np.where(u[extra] < params.cancelled_rate, 1, 2)])
    person, record = np.concatenate([person, person[extra]]), np.concatenate([record, record[extra]])
    t = np.concatenate([t, extra_t])
    caused_by = np.concatenate([caused_by, np.full(extra.size, -1)])  # a cancelled / refunded copy earns nothing
    order = np.argsort(t, kind="stable")
    person, record, t, status = person[order], record[order], t[order], status[order].astype(np.int8)
    n = t.size

    value = np.maximum(np.round(rng.gamma(params.p, 1 / persons.nu[person]) * 100), 100)
    currency = choose(rng, [0.993, 0.004, 0.003], n)
    fx = np.array(list(FX_RATES.values()))[currency]
    amount = np.maximum(np.round(value / fx), 1).astype(np.int64)
    delay = np.select([status == 1, status == 2], [rng.integers(300, 2 * HOUR, n), rng.integers(HOUR, 48 * HOUR, n)],
                      rng.integers(0, 1800, n))
    channel = choose(rng, _ORDER_CHANNEL_P, n)
    assisted = (channel >= 2) & (rng.random(n) < 0.7)  # store and phone orders credit a rep
    return Orders(person=person, record=record, t=t, status=status, currency=currency, amount=amount,
                  updated=np.minimum(t + delay, cal.end_s - 1), channel=channel,
                  rep=np.where(assisted, rng.choice(ref.sales_reps, n), -1),
                  number=counters.take("order", n), campaign=caused_by[order],
                  **_order_lines(rng, amount, fx, ref))


def _order_lines(rng, amount: np.ndarray, fx: np.ndarray, ref: Reference) -> dict[str, np.ndarray]:
    """1-5 lines per order whose qty x unit_price - discount add up to the order amount exactly.

    The amount is split at random over the lines; each line takes a product listed at or just above its share
    per unit (prices converted to the order's currency) and the difference is the line's discount.
    """
    n_lines = rng.choice(len(_LINE_COUNT_P), amount.size, p=_LINE_COUNT_P) + 1
    order = np.repeat(np.arange(amount.size), n_lines)
    weight = rng.gamma(2.0, size=order.size)
    share = np.floor(amount[order] * weight / np.bincount(order, weight)[order]).astype(np.int64)
    share[group_starts(n_lines)] += amount - np.bincount(order, share, minlength=amount.size).astype(np.int64)
    quantity = rng.choice([1, 2, 3], order.size, p=[0.8, 0.15, 0.05])
    target_cny = share / quantity * fx[order]
    position = np.searchsorted(ref.product_price, target_cny) + rng.integers(0, 4, order.size)
    product = np.minimum(position, ref.product_price.size - 1)
    unit = np.maximum(np.round(ref.product_price[product] / fx[order]), 1).astype(np.int64)
    quantity = np.maximum(quantity, -(-share // unit))
    return {"line_order": order, "line_number": group_rank(n_lines) + 1, "product": product,
            "quantity": quantity, "unit_price": unit, "discount": quantity * unit - share}


def export_orders(rng, orders: Orders, records: CustomerRecords, cal: Calendar, counters: IdCounters,
                  writer: DropWriter, truth: TruthWriter):
    """Order headers and lines (lines travel with their order), with late arrivals, re-deliveries, bad rows."""
    n = orders.t.size
    export_t = cal.arrival(rng, orders.updated)
    drop = cal.drop_of(export_t)
    synonym = rng.random(n) < np.array([0.04, 0.3, 0.3])[orders.status]
    cny, usd = orders.currency == 0, orders.currency == 1
    u = rng.random(n)
    order_id = id_text("O", orders.number, 9)
    columns = {
        "order_id": order_id,
        "customer_id": records.ids.take(orders.record),
        "order_date": format_times(orders.t, choose(rng, DATETIME_STYLE_P, n)),
        "status": pick_labels(["paid", "completed", "cancelled", "canceled", "refunded", "returned"],
                              orders.status * 2 + synonym),
        "amount": format_amounts(orders.amount, np.where(cny, choose(rng, CNY_AMOUNT_STYLE_P, n), np.where(usd, 3, 0))),
        # An empty currency means the default (CNY) or whatever the amount's symbol says.
        "currency": blank(pick_labels(list(FX_RATES), orders.currency), (cny & (u < 0.25)) | (usd & (u < 0.1))),
        "channel": blank(pick_labels(_ORDER_CHANNELS, orders.channel), rng.random(n) < 0.02),
        "rep_id": blank(id_text("R", orders.rep + 1, 3), orders.rep < 0),
        "updated_at": format_times(orders.updated, choose(rng, DATETIME_STYLE_P, n)),
    }
    pick, new_drop = redelivery(rng, drop, export_t, cal)
    redelivered = np.zeros(n, dtype=bool)
    redelivered[pick] = True
    bad = np.flatnonzero((rng.random(n) < BAD_DATE_RATE) & ~redelivered)
    columns["order_date"] = replace_rows(columns["order_date"], bad,
                                         pick_labels(BAD_DATES, rng.integers(0, len(BAD_DATES), bad.size)))
    truth.planted("orders", drop_files(writer, "orders", drop[bad]), order_id.take(bad), "unparseable_date")
    yield "orders", columns, drop
    yield "orders", take_rows(columns, pick), new_drop

    redelivered_to = np.full(n, -1, dtype=np.int8)
    redelivered_to[pick] = new_drop
    yield from _export_lines(rng, orders, order_id, drop, redelivered_to, counters, writer, truth)


def _export_lines(rng, orders: Orders, order_id: pa.Array, order_drop: np.ndarray, redelivered_to: np.ndarray,
                  counters: IdCounters, writer: DropWriter, truth: TruthWriter):
    """Order lines in their order's drop, with planted bad quantities and orphan lines (unknown order_id)."""
    of = orders.line_order
    m = of.size
    drop = order_drop[of]
    line_number = int_text(orders.line_number)
    columns = {
        "order_id": order_id.take(of),
        "line_number": line_number,
        "product_id": id_text("SKU", orders.product + 1, 5),
        "quantity": int_text(orders.quantity),
        "unit_price": format_amounts(orders.unit_price, np.where(rng.random(m) < 0.05, 1, 0)),
        "discount": format_amounts(orders.discount, np.zeros(m, np.int8)),
        "updated_at": format_times(orders.updated[of], choose(rng, DATETIME_STYLE_P, m)),
    }
    keys = join_text(columns["order_id"], "|", line_number)
    new_drop = redelivered_to[of]
    u = np.where(new_drop < 0, rng.random(m), 1.0)  # re-delivered lines stay clean: one file per planted row
    negative = np.flatnonzero(u < NEGATIVE_QTY_RATE)
    text = np.flatnonzero((u >= NEGATIVE_QTY_RATE) & (u < NEGATIVE_QTY_RATE + TEXT_QTY_RATE))
    columns["quantity"] = replace_rows(columns["quantity"], negative,
                                       join_text("-", columns["quantity"].take(negative)))
    columns["quantity"] = replace_rows(columns["quantity"], text,
                                       pick_labels(BAD_QUANTITIES, rng.integers(0, len(BAD_QUANTITIES), text.size)))
    truth.planted("order_items", drop_files(writer, "order_items", drop[negative]), keys.take(negative),
                  "negative_quantity")
    truth.planted("order_items", drop_files(writer, "order_items", drop[text]), keys.take(text), "non_numeric_quantity")

    source = rng.integers(0, m, rng.binomial(m, ORPHAN_RATE))
    orphans = {c: v.take(source) for c, v in columns.items()}
    orphans["order_id"] = id_text("O", 900_000_000 + counters.take("orphan_order", source.size), 9)
    orphans["line_number"] = pa.array(["1"] * source.size, pa.string())
    truth.planted("order_items", drop_files(writer, "order_items", drop[source]), join_text(orphans["order_id"], "|1"),
                  "orphan_order")
    pick = np.flatnonzero(new_drop >= 0)
    yield "order_items", columns, drop
    yield "order_items", take_rows(columns, pick), new_drop[pick]
    yield "order_items", orphans, drop[source]
