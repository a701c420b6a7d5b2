"""Independent computation of mixed_line_endings/expected.json (standard library only).

Rules: the header line ends in LF, every data row ends in CR LF (a file assembled by two tools);
one row = one order, amount = `amount`, dates are ISO; every order date <= drop date 2026-01-10.
"""
import csv, json, datetime as dt
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "2026-01-10"
raw = (HERE / "exports" / DROP / "orders.csv").read_bytes()
header, rest = raw.split(b"\n", 1)
assert not header.endswith(b"\r"), "header must end in a bare LF"
assert rest.count(b"\r\n") == rest.count(b"\n") == 10, "every data row must end in CR LF"
rows = list(csv.DictReader(raw.decode("ascii").splitlines(keepends=True)))
assert list(rows[0].keys()) == ["order_id", "customer_id", "order_date", "amount"]  # no stray \r in "amount"
assert all(dt.date.fromisoformat(r["order_date"]) <= dt.date.fromisoformat(DROP) for r in rows)
expected = {
    "export_date": DROP,
    "orders": len({r["order_id"] for r in rows}),
    "customers": len({r["customer_id"] for r in rows}),
    "revenue": float(sum(Decimal(r["amount"]) for r in rows)),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2))
