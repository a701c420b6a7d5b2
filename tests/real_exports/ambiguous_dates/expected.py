"""Independent computation of ambiguous_dates/expected.json (standard library only).

Rules: `order_date` is written NN/NN/YYYY and in EVERY row both NN fields are <= 12, so the data cannot tell
D/M/Y from M/D/Y. The drop date (2026-02-01) cannot break the tie either: under both readings every date is
on or before it (checked below). Without a mapping the loader must refuse to guess: expected `ambiguous: true`
and the 10 rows must not be loaded as orders with a guessed date.
"""
import csv, json, datetime as dt
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = dt.date(2026, 2, 1)
with open(HERE / "exports" / DROP.isoformat() / "orders.csv", encoding="ascii", newline="") as f:
    rows = list(csv.DictReader(f))
for r in rows:
    a, b, y = (int(p) for p in r["order_date"].split("/"))
    assert a <= 12 and b <= 12, r
    assert dt.date(y, b, a) <= DROP and dt.date(y, a, b) <= DROP, r  # D/M/Y and M/D/Y both plausible
assert any(r["order_date"].split("/")[0] != r["order_date"].split("/")[1] for r in rows)  # readings differ
expected = {"export_date": DROP.isoformat(), "ambiguous": True, "rows": len(rows)}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2))
