"""Independent computation of crm_deals_hubspot/expected.json (standard library only).

Rules (written out, not imported from the project):
- one row = one deal, as it stands at the export; `Create Date` is when it was created;
- `Close Date` is when a closed deal (Closed Won / Closed Lost) closed; on an open deal it is the owner's estimate
  (in the future, or already passed on an overdue deal) and says nothing about the deal's history;
- days to close = (Close Date - Create Date) in days, for closed deals only;
- won amount = sum of Amount over Closed Won deals (USD).
"""
import csv
import json
import statistics
from datetime import datetime
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "2024-04-01"
(FILE,) = (HERE / "exports" / DROP).glob("hubspot-crm-exports-all-deals-*.csv")


def at(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M")


deals = list(csv.DictReader(FILE.open(encoding="utf-8", newline="")))
closed = {d["Record ID"]: d for d in deals if d["Deal Stage"] in ("Closed Won", "Closed Lost")}
assert all(at(d["Close Date"]).date().isoformat() <= DROP for d in closed.values())
days = {i: (at(d["Close Date"]) - at(d["Create Date"])).total_seconds() / 86400 for i, d in closed.items()}
won = [d for d in closed.values() if d["Deal Stage"] == "Closed Won"]
expected = {
    "export_date": DROP,
    "deals": len(deals),
    "won": len(won),
    "lost": len(closed) - len(won),
    "open": len(deals) - len(closed),
    "won_amount": float(sum(Decimal(d["Amount"]) for d in won)),
    "closed_at": {i: at(d["Close Date"]).isoformat() for i, d in sorted(closed.items())},
    "days_to_close": {i: round(v, 4) for i, v in sorted(days.items())},
    "median_days_to_close_won": round(statistics.median(days[d["Record ID"]] for d in won), 4),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2))
