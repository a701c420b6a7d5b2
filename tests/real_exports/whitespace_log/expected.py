"""Independent computation of whitespace_log/expected.json (standard library only).

Rules (written out, not imported from the project):
- orders.txt has no header row; columns are separated by runs of spaces (leading spaces too),
  lines end in CR LF; exports/mapping.yml names the columns
  [customer_id, date, number_of_cds, dollar_value] and maps dollar_value -> amount, date -> order_date;
- one row = one order (the log has no order id; no customer has two rows on the same day);
- customer_id keeps its leading zeros ("00001"), date is YYYYMMDD;
- order amount = dollar_value (a row with dollar_value 0.00 is still an order);
- every order date must be on or before the drop folder's date (1998-07-01).
"""
import json, datetime as dt
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "1998-07-01"
FILE = HERE / "exports" / DROP / "orders.txt"

raw = FILE.read_bytes()
assert raw.count(b"\r\n") == raw.count(b"\n") and raw.endswith(b"\r\n")
rows = []
for line in raw.decode("ascii").split("\r\n"):
    if not line.strip():
        continue
    customer_id, date, n_cds, value = line.split()  # split() = split on runs of whitespace
    rows.append((customer_id, dt.datetime.strptime(date, "%Y%m%d").date(), int(n_cds), Decimal(value)))

drop = dt.date.fromisoformat(DROP)
assert all(r[1] <= drop for r in rows)
assert len({(r[0], r[1]) for r in rows}) == len(rows), "no two orders of one customer on one day"
assert all(len(r[0]) == 5 and r[0].isdigit() for r in rows)
dates = sorted(r[1] for r in rows)
expected = {
    "export_date": DROP,
    "orders": len(rows),
    "customers": len({r[0] for r in rows}),
    "revenue": float(sum(r[3] for r in rows)),
    "first_order_date": dates[0].isoformat(),
    "last_order_date": dates[-1].isoformat(),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2))
print("zero-value rows:", [r for r in rows if r[3] == 0])
