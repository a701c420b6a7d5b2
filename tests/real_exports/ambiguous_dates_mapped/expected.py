"""Independent computation of ambiguous_dates_mapped/expected.json (standard library only).

Same orders.csv as ../ambiguous_dates (byte for byte), plus exports/mapping.yml declaring
`orders: date_format: "%d/%m/%Y"`. With that mapping the dates are read as D/M/Y:
one row = one order, amount = `amount`, every order date <= drop date 2026-02-01.
"""
import csv, json, datetime as dt
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "2026-02-01"
FILE = HERE / "exports" / DROP / "orders.csv"
assert FILE.read_bytes() == (HERE.parent / "ambiguous_dates" / "exports" / DROP / "orders.csv").read_bytes()
assert (HERE / "exports" / "mapping.yml").read_text() == 'orders:\n  date_format: "%d/%m/%Y"\n'
with open(FILE, encoding="ascii", newline="") as f:
    rows = list(csv.DictReader(f))
dates = sorted(dt.datetime.strptime(r["order_date"], "%d/%m/%Y").date() for r in rows)
assert dates[-1] <= dt.date.fromisoformat(DROP)
expected = {
    "export_date": DROP,
    "orders": len({r["order_id"] for r in rows}),
    "first_order_date": dates[0].isoformat(),
    "last_order_date": dates[-1].isoformat(),
    "revenue": float(sum(Decimal(r["amount"]) for r in rows)),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2))
print("under M/D/Y it would be:", min(dt.datetime.strptime(r["order_date"], "%m/%d/%Y").date() for r in rows),
      max(dt.datetime.strptime(r["order_date"], "%m/%d/%Y").date() for r in rows))
