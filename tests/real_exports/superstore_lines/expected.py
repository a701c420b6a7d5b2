"""Independent computation of superstore_lines/expected.json (standard library only).

Rules (written out, not imported from the project):
- one CSV row = one order line; an order = all rows sharing `Order ID`;
- line amount = `Sales` (the file has a sales column, so Quantity x price is NOT used and
  `Discount` is a rate that is informational only: Sales is already net of it);
- order amount = sum of its lines' Sales, rounded to the cent at the end (ROUND_HALF_UP);
- `Order Date` is DD/MM/YY, two-digit years are 20YY;
- every order date must be on or before the drop folder's date (2020-01-05).
"""
import csv, json, datetime as dt
from decimal import Decimal, ROUND_HALF_UP
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "2020-01-05"
FILE = HERE / "exports" / DROP / "orders.csv"
HEADER = ("Row ID,Order ID,Order Date,Ship Date,Ship Mode,Customer ID,Customer Name,Segment,Country/Region,City,"
          "State/Province,Postal Code,Region,Product ID,Category,Sub-Category,Product Name,Sales,Quantity,Discount,Profit")
CENT = Decimal("0.01")


def cents(x: Decimal) -> Decimal:
    q = x.quantize(CENT, rounding=ROUND_HALF_UP)
    assert abs(x - q) != Decimal("0.005"), f"half-cent tie in {x}: rounding would be ambiguous"
    return q


def ddmmyy(s: str) -> dt.date:
    d, m, y = s.split("/")
    assert len(d) == 2 and len(m) == 2 and len(y) == 2, s
    return dt.date(2000 + int(y), int(m), int(d))


raw = FILE.read_bytes()
assert raw.startswith(b"\xef\xbb\xbf"), "fixture must carry a UTF-8 BOM"
assert raw.count(b"\r\n") == raw.count(b"\n"), "fixture must use CRLF line ends everywhere"
text = raw.decode("utf-8-sig")
assert text.split("\r\n", 1)[0] == HEADER

rows = list(csv.DictReader(text.splitlines(keepends=True)))
drop = dt.date.fromisoformat(DROP)
orders = {}  # order id -> dict(customer, date, amount)
for r in rows:
    d = ddmmyy(r["Order Date"])
    assert d <= drop
    o = orders.setdefault(r["Order ID"], {"customer": r["Customer ID"], "date": d, "amount": Decimal(0)})
    assert o["customer"] == r["Customer ID"] and o["date"] == d, "order header fields differ between its lines"
    o["amount"] += Decimal(r["Sales"])

# the date format is decidable: some first field is > 12
assert any(int(r["Order Date"].split("/")[0]) > 12 for r in rows)

per_customer = {}
for o in orders.values():
    per_customer[o["customer"]] = per_customer.get(o["customer"], 0) + 1

dates = sorted(o["date"] for o in orders.values())
named_orders = ["CA-2019-115812", "US-2019-150630", "CA-2019-131926"]
expected = {
    "export_date": DROP,
    "lines": len(rows),
    "orders": len(orders),
    "customers": len(per_customer),
    "revenue": float(cents(sum(o["amount"] for o in orders.values()))),
    "order_amounts": {k: float(cents(orders[k]["amount"])) for k in named_orders},
    "first_order_date": dates[0].isoformat(),
    "last_order_date": dates[-1].isoformat(),
    "orders_per_customer": {k: per_customer[k] for k in ["MK-17650", "TB-21055"]},
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2, ensure_ascii=False))
print("exact revenue:", sum(o["amount"] for o in orders.values()))
for k in named_orders:
    print("exact", k, orders[k]["amount"])
