"""Independent computation of decimal_comma/expected.json (standard library only).

Rules: `;`-delimited, CR LF; amounts use `.` as thousands separator and `,` as decimal separator
(`1.234,50` = 1234.50, `12,5` = 12.50, `349` = 349.00); dates are DD.MM.YYYY (decidable: days > 12 occur).
One row = one order, amount = `amount`; every order date <= drop date 2026-03-01.
"""
import csv, json, re, datetime as dt
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "2026-03-01"
with open(HERE / "exports" / DROP / "orders.csv", encoding="ascii", newline="") as f:
    rows = list(csv.DictReader(f, delimiter=";"))
assert list(rows[0].keys()) == ["order_id", "customer_id", "order_date", "amount"]


def amount(s: str) -> Decimal:
    assert re.fullmatch(r"\d{1,3}(\.\d{3})*(,\d{1,2})?", s), s
    return Decimal(s.replace(".", "").replace(",", "."))


dates = sorted(dt.datetime.strptime(r["order_date"], "%d.%m.%Y").date() for r in rows)
assert dates[-1] <= dt.date.fromisoformat(DROP)
assert any(int(r["order_date"].split(".")[0]) > 12 for r in rows)
expected = {
    "export_date": DROP,
    "orders": len({r["order_id"] for r in rows}),
    "customers": len({r["customer_id"] for r in rows}),
    "revenue": float(sum(amount(r["amount"]) for r in rows)),
    "first_order_date": dates[0].isoformat(),
    "last_order_date": dates[-1].isoformat(),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2))
