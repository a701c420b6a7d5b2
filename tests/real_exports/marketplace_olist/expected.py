"""Independent computation of marketplace_olist/expected.json (standard library only).

Rules (written out, not imported from the project):
- orders.csv: one row per order; customers.csv: one row per order-level `customer_id`;
  the person is `customer_unique_id` (identity resolution: several customer_ids -> one person);
- order_items.csv: one row per UNIT (no quantity column); line amount = `price`;
  `freight_value` is shipping, NOT revenue;
- order amount = sum of its items' price;
- `order_status` = canceled -> a cancellation: not revenue, not a paid order;
  every other status (delivered, shipped, invoiced) is a paid order;
- the order date is `order_purchase_timestamp`; every order date must be on or before the
  drop folder's date (2018-09-01). (order_estimated_delivery_date may lie after it: it is a forecast.)
Figures:
- orders = all orders; paid_orders = not canceled; cancelled_orders = canceled;
- customers = distinct customer_unique_id with at least one non-canceled order;
- revenue = sum of price over items of non-canceled orders.
"""
import csv, json, datetime as dt
from decimal import Decimal, ROUND_HALF_UP
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "2018-09-01"
DIR = HERE / "exports" / DROP
CENT = Decimal("0.01")


def cents(x: Decimal) -> float:
    q = x.quantize(CENT, rounding=ROUND_HALF_UP)
    assert q == x
    return float(q)


def read(name):
    with open(DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


orders, items, customers = read("orders.csv"), read("order_items.csv"), read("customers.csv")
person_of = {c["customer_id"]: c["customer_unique_id"] for c in customers}
assert len(person_of) == len(customers) == len(orders), "every order has its own customer_id"
for ident in [o["order_id"] for o in orders] + list(person_of) + list(person_of.values()):
    assert len(ident) == 32 and all(ch in "0123456789abcdef" for ch in ident)

drop = dt.date.fromisoformat(DROP)
status = {}
for o in orders:
    assert dt.datetime.strptime(o["order_purchase_timestamp"], "%Y-%m-%d %H:%M:%S").date() <= drop
    assert o["order_status"] in {"delivered", "shipped", "canceled", "invoiced"}
    status[o["order_id"]] = o["order_status"]

amount = {oid: Decimal(0) for oid in status}
freight = {oid: Decimal(0) for oid in status}
for it in items:
    amount[it["order_id"]] += Decimal(it["price"])
    freight[it["order_id"]] += Decimal(it["freight_value"])

paid = [oid for oid, s in status.items() if s != "canceled"]
cancelled = [oid for oid, s in status.items() if s == "canceled"]
assert all(amount[oid] > 0 for oid in paid)
person_orders = {}
for o in orders:
    person_orders.setdefault(person_of[o["customer_id"]], []).append(o["order_id"])
persons_with_paid = {person_of[o["customer_id"]] for o in orders if o["order_status"] != "canceled"}
three = [p for p, os in person_orders.items() if len(os) == 3]
assert len(three) == 1
expected = {
    "export_date": DROP,
    "items": len(items),
    "orders": len(orders),
    "paid_orders": len(paid),
    "cancelled_orders": len(cancelled),
    "persons": len(person_orders),
    "customers": len(persons_with_paid),
    "revenue": cents(sum(amount[o] for o in paid)),
    "orders_per_person": {three[0]: 3},
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2))
print("freight of paid orders (must NOT be in revenue):", sum(freight[o] for o in paid))
print("price of canceled orders (must NOT be in revenue):", sum(amount[o] for o in cancelled))
print("orders of", three[0], ":", [(o, status[o], amount[o]) for o in person_orders[three[0]]])
