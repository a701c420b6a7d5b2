"""Independent computation of chinese_crm/expected.json (standard library only).

Rules (written out, not imported from the project):
- both files are GB18030 (not GBK: one customer name uses 䶮 U+4DAE, which GBK cannot encode, and
  the half-width yen sign ¥ U+00A5 is a 4-byte GB18030 sequence), comma-separated, CR LF, Chinese headers;
- customers.csv: 客户编号 = customer id, one row per customer;
- orders.csv: one row per order (no lines file); 订单号 = order id, 客户编号 = customer id,
  下单时间 = order time written `2025年1月5日 14:03` or `2025/1/5`, 订单金额 = amount written
  `¥1,234.50`, `￥89.00` (full-width yen) or `1234.5元` / `2,680.00元` (thousands separator ",");
- 订单状态: 已支付 = paid, 已取消 = cancelled, 已退款 = refunded;
- revenue counts paid orders only; cancelled and refunded orders count 0;
- customers = distinct customers with at least one paid order;
- every order date must be on or before the drop folder's date (2025-03-31).
"""
import csv, json, re, datetime as dt
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROP = "2025-03-31"
DIR = HERE / "exports" / DROP


def read(name):
    raw = (DIR / name).read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")
    try:
        raw.decode("utf-8")
        raise AssertionError(f"{name} must not be valid UTF-8")
    except UnicodeDecodeError:
        pass
    return list(csv.DictReader(raw.decode("gb18030").splitlines(keepends=True)))


def parse_time(s: str) -> dt.datetime:
    m = re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日 (\d{1,2}):(\d{2})", s)
    if m:
        return dt.datetime(*(int(g) for g in m.groups()))
    m = re.fullmatch(r"(\d{4})/(\d{1,2})/(\d{1,2})", s)
    assert m, s
    return dt.datetime(*(int(g) for g in m.groups()))


def parse_amount(s: str) -> Decimal:
    m = re.fullmatch(r"[¥￥]?([0-9][0-9,]*(?:\.[0-9]+)?)元?", s)
    assert m and (s[0] in "¥￥") != s.endswith("元"), s
    return Decimal(m.group(1).replace(",", ""))


customers = read("customers.csv")
orders = read("orders.csv")
assert list(customers[0].keys()) == ["客户编号", "姓名", "手机", "邮箱", "性别", "生日", "城市", "省份", "注册日期"]
assert list(orders[0].keys()) == ["订单号", "客户编号", "下单时间", "订单金额", "订单状态", "渠道"]
known = {c["客户编号"] for c in customers}
drop = dt.date.fromisoformat(DROP)
by_status = {"已支付": [], "已取消": [], "已退款": []}
for o in orders:
    assert o["客户编号"] in known
    assert parse_time(o["下单时间"]).date() <= drop
    by_status[o["订单状态"]].append(o)

paid = by_status["已支付"]
expected = {
    "export_date": DROP,
    "customer_records": len(customers),
    "orders": len(orders),
    "paid_orders": len(paid),
    "cancelled_orders": len(by_status["已取消"]),
    "refunded_orders": len(by_status["已退款"]),
    "customers": len({o["客户编号"] for o in paid}),
    "revenue": float(sum(parse_amount(o["订单金额"]) for o in paid)),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
print(json.dumps(expected, indent=2, ensure_ascii=False))
for o in orders:
    print(o["订单号"], o["客户编号"], o["订单状态"], parse_amount(o["订单金额"]), parse_time(o["下单时间"]))
