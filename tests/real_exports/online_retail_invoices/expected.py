"""Independent computation of online_retail_invoices/expected.json (standard library only).

Rules (written out, not imported from the project):
- one CSV row = one invoice line; an order = all rows sharing `InvoiceNo`;
- the file has no sales/amount column and no discount-amount column, so
  line amount = Quantity x UnitPrice (exact decimals, rounded to the cent at the end);
- an invoice whose number starts with `C` is a credit note (cancellation): its quantities are
  negative, so its amount is negative;
- `CustomerID` is written `17850.0`; the customer is the integer part (`17850`);
- a row with an empty `CustomerID` is not attributed to any customer: it is counted in
  `lines_without_customer` / `amount_without_customer` and excluded from orders and revenue;
- `InvoiceDate` is M/D/YYYY H:MM (decidable: some day values are > 12);
- every invoice date must be on or before the drop folder's date (2011-01-10).
Figures:
- orders = attributed invoices incl. credit notes; paid_orders = amount > 0; credit_notes = amount < 0;
- revenue = net revenue = sum of the amounts of all attributed invoices (credit notes negative);
- gross_revenue = sum of the amounts of paid orders only.
"""
import csv, json, datetime as dt
from decimal import Decimal, ROUND_HALF_UP
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "2011-01-10"
FILE = HERE / "exports" / DROP / "orders.csv"
CENT = Decimal("0.01")


def cents(x: Decimal) -> float:
    q = x.quantize(CENT, rounding=ROUND_HALF_UP)
    assert abs(x - q) != Decimal("0.005")
    return float(q)


def mdy_hm(s: str) -> dt.datetime:
    date, time = s.split(" ")
    m, d, y = (int(p) for p in date.split("/"))
    hh, mm = (int(p) for p in time.split(":"))
    return dt.datetime(y, m, d, hh, mm)


with open(FILE, encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))
assert list(rows[0].keys()) == ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                                "CustomerID", "Country"]
assert any(int(r["InvoiceDate"].split("/")[1]) > 12 for r in rows), "M/D must be decidable"

drop = dt.date.fromisoformat(DROP)
no_customer_lines, no_customer_amount = 0, Decimal(0)
invoices = {}  # invoice -> dict(customer, amount)
for r in rows:
    assert mdy_hm(r["InvoiceDate"]).date() <= drop
    amount = int(r["Quantity"]) * Decimal(r["UnitPrice"])
    if r["InvoiceNo"].startswith("C"):
        assert int(r["Quantity"]) < 0
    if r["CustomerID"].strip() == "":
        no_customer_lines += 1
        no_customer_amount += amount
        continue
    cust = str(int(Decimal(r["CustomerID"])))
    inv = invoices.setdefault(r["InvoiceNo"], {"customer": cust, "amount": Decimal(0)})
    assert inv["customer"] == cust
    inv["amount"] += amount

paid = [i for i in invoices.values() if i["amount"] > 0]
credit = [i for i in invoices.values() if i["amount"] < 0]
assert len(paid) + len(credit) == len(invoices)
expected = {
    "export_date": DROP,
    "lines": len(rows),
    "lines_without_customer": no_customer_lines,
    "amount_without_customer": cents(no_customer_amount),
    "orders": len(invoices),
    "paid_orders": len(paid),
    "credit_notes": len(credit),
    "revenue": cents(sum(i["amount"] for i in invoices.values())),
    "gross_revenue": cents(sum(i["amount"] for i in paid)),
    "customers": len({i["customer"] for i in invoices.values()}),
    "order_amounts": {k: cents(invoices[k]["amount"]) for k in ["536580", "C536733"]},
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2))
