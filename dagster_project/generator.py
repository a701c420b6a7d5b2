"""Deterministic generator of a realistic, deliberately messy sample CRM export, plus its ground truth.

Layout
    ``out_dir/<YYYY-MM-DD>/<entity>.csv``, one folder per export day ("drop"):

    * ``end_date - 3``: full snapshot, every record as of the end of that day (customers and tickets in their
      latest version; opportunities with one row per stage change so far).
    * ``end_date - 2``, ``end_date - 1``, ``end_date``: daily deltas holding that day's new records, new versions
      of existing customers / opportunities / tickets, late-arriving orders and interactions (dated days before
      the drop) and a few rows re-delivered unchanged from an earlier drop.

    Products and sales reps only appear in the snapshot; campaigns in the drop of their start date.

Ground truth (``truth_dir``, default the sibling folder ``<out_dir name>_truth`` so it is never ingested)
    * ``customers_truth.parquet``: one row per customer_id: ``person_id`` (duplicates share it), ``is_primary``,
      ``household_id`` (set for people sharing a phone; they are different persons), ``signup_at``, BG/NBD
      ``lambda_per_day`` and ``p_dropout``, Gamma-Gamma ``nu`` and ``mean_spend`` (= p / nu, CNY),
      ``n_purchases`` (BG/NBD purchases of the person incl. the first), ``n_campaign_purchases`` (extra purchases
      caused by opened / clicked e-mails), ``last_purchase_at``, ``dropout_date`` (day after the last purchase,
      null if alive) and ``is_alive_at_end``. Person-level values repeat on both ids of a duplicated person.
    * ``planted_issues.parquet``: ``entity, file, key, kind`` of every invalid or orphan row planted; ``file`` is
      relative to out_dir, ``key`` the entity key (``order_id|line_number`` for order_items).
    * ``campaigns_truth.parquet``: one row per campaign: ``campaign_id, channel, start_date``, ``persons_reached``
      (persons e-mailed), ``participants`` (persons who opened or clicked), ``incremental_purchases`` and
      ``incremental_revenue`` (CNY): the paid purchases the opens / clicks caused, i.e. the campaign's true effect
      among its participants, and ``incremental_revenue_per_participant``. Non-e-mail campaigns cause none.
    * ``params.json``: model parameters (BG/NBD r, alpha, a, b; Gamma-Gamma p, q, v), seed, sizes, dates, FX rates,
      row counts.

Behaviour model (time unit: days)
    Persons sign up over the window with exponential growth; the signup is their first purchase. Repeat purchases
    follow BG/NBD exactly: rate lambda ~ Gamma(r, rate alpha), and after each repeat purchase the person drops out
    with probability p ~ Beta(a, b). Purchase times are an inhomogeneous Poisson process with intensity
    lambda * m(t), where m (weekday, yearly cycle, 618 / Singles' Day / National Day / Spring Festival, hour of day)
    has mean 1 over the window, so seasonality moves purchases in time without changing the mean rate; it is
    simulated by time change (inverting the cumulative intensity), which is thinning without rejected candidates.
    Order values follow Gamma-Gamma: nu ~ Gamma(q, rate v), value ~ Gamma(p, rate nu). In the 60-90 days before
    dropout, and after it, e-mail opens / clicks, web visits and NPS fall and unresolved low-CSAT tickets appear.
    Opened and clicked e-mails cause extra purchases (a real campaign lift), always before the person's last
    BG/NBD purchase. Cancelled and refunded orders are extra orders placed the same day as a real purchase.

Messiness (a few % each): duplicate persons under a second customer_id (e-mail case / whitespace, phone format),
households sharing a phone, missing values, mixed date and amount formats, status synonyms, some USD / EUR
orders, invalid and orphan rows, one GB18030 file with Chinese headers and CRLF, one UTF-8 file with a BOM, one
file with synonym headers and one with an extra column.

Scale and determinism: persons are simulated in chunks of ``CHUNK_PERSONS`` with numpy and appended to the CSV
files, formatting is vectorised with pyarrow, so memory is bounded by one chunk. Each chunk draws from its own
``SeedSequence`` child, so the same seed and sizes give byte-identical files.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import IO, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dagster_project.contract import ENTITIES, ENTITIES_BY_NAME

CHUNK_PERSONS = 50_000
DAY = 86_400
HOUR = 3_600
NEVER = np.iinfo(np.int64).max // 4  # "no such event" time; far beyond any drop
N_DROPS = 4
FX_RATES = {"CNY": 1.0, "USD": 7.1, "EUR": 7.8}  # CNY per unit, used to price non-CNY orders


@dataclass(frozen=True)
class Params:
    """Parameters of the behaviour model, all written to params.json."""

    # BG/NBD (days): lambda ~ Gamma(r, rate alpha); dropout after each repeat purchase with p ~ Beta(a, b).
    r: float = 0.75
    alpha: float = 18.0
    a: float = 0.8
    b: float = 8.0
    # Gamma-Gamma (lifetimes / pymc-marketing names): value ~ Gamma(p, rate nu), nu ~ Gamma(q, rate v);
    # mean order value p * v / (q - 1) = 300 CNY.
    p: float = 6.0
    q: float = 4.0
    v: float = 150.0
    signup_growth: float = 3.0  # signup intensity on the last day relative to the first day
    duplicate_rate: float = 0.03
    household_rate: float = 0.02  # persons sharing their phone with another person (a household)
    email_missing_rate: float = 0.05
    phone_missing_rate: float = 0.05
    marketing_consent_rate: float = 0.8
    leads_per_person: float = 1 / 3
    warning_days_min: int = 60  # churn warning signs start this many days before dropout (uniform min..max)
    warning_days_max: int = 90
    open_purchase_prob: float = 0.1  # e-mail campaign lift: an opener buys within days with this probability,
    click_purchase_prob: float = 0.3  # a clicker with this one
    cancelled_rate: float = 0.03
    refunded_rate: float = 0.02


# --- reference lists ---------------------------------------------------------------------------------------

_SURNAMES = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"), ("黄", "huang"),
    ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"),
    ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"), ("罗", "luo"), ("郑", "zheng"),
    ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"),
    ("邓", "deng"), ("曹", "cao"), ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"),
    ("袁", "yuan"), ("潘", "pan"), ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"),
    ("叶", "ye"), ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"), ("任", "ren"),
    ("沈", "shen"),
]
_GIVEN = (  # (male, female) given-name characters with pinyin
    [("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("杰", "jie"),
     ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("刚", "gang"), ("平", "ping"), ("辉", "hui"), ("鹏", "peng"),
     ("华", "hua"), ("飞", "fei"), ("鑫", "xin"), ("波", "bo"), ("斌", "bin"), ("宇", "yu"), ("浩", "hao"),
     ("凯", "kai"), ("健", "jian"), ("俊", "jun"), ("帆", "fan"), ("建", "jian"), ("国", "guo"), ("文", "wen"),
     ("博", "bo"), ("志", "zhi")],
    [("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("艳", "yan"), ("娟", "juan"),
     ("霞", "xia"), ("秀", "xiu"), ("玲", "ling"), ("婷", "ting"), ("雪", "xue"), ("慧", "hui"), ("莹", "ying"),
     ("琳", "lin"), ("颖", "ying"), ("倩", "qian"), ("欣", "xin"), ("佳", "jia"), ("怡", "yi"), ("梅", "mei"),
     ("晶", "jing"), ("红", "hong"), ("燕", "yan"), ("萍", "ping"), ("洁", "jie"), ("琴", "qin"), ("云", "yun"),
     ("璐", "lu"), ("悦", "yue")],
)
_EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "sina.com", "outlook.com", "foxmail.com",
                  "hotmail.com"]
_EMAIL_DOMAIN_P = [0.35, 0.2, 0.1, 0.1, 0.07, 0.08, 0.05, 0.05]
_MOBILE_PREFIXES = [130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157, 158, 159, 177,
                    180, 181, 182, 183, 185, 186, 187, 188, 189, 198, 199]

# (city, province, country, weight)
_LOCATIONS = [
    ("上海", "上海", "CN", 8), ("北京", "北京", "CN", 8), ("广州", "广东", "CN", 6), ("深圳", "广东", "CN", 7),
    ("杭州", "浙江", "CN", 5), ("成都", "四川", "CN", 5), ("重庆", "重庆", "CN", 5), ("武汉", "湖北", "CN", 4),
    ("南京", "江苏", "CN", 4), ("苏州", "江苏", "CN", 4), ("西安", "陕西", "CN", 3.5), ("天津", "天津", "CN", 3.5),
    ("长沙", "湖南", "CN", 3), ("郑州", "河南", "CN", 3), ("东莞", "广东", "CN", 2.5), ("青岛", "山东", "CN", 2.5),
    ("沈阳", "辽宁", "CN", 2.5), ("宁波", "浙江", "CN", 2.5), ("昆明", "云南", "CN", 2), ("合肥", "安徽", "CN", 2),
    ("佛山", "广东", "CN", 2), ("福州", "福建", "CN", 2), ("厦门", "福建", "CN", 2), ("济南", "山东", "CN", 2),
    ("大连", "辽宁", "CN", 1.5), ("哈尔滨", "黑龙江", "CN", 1.5), ("长春", "吉林", "CN", 1.2),
    ("南昌", "江西", "CN", 1.2), ("南宁", "广西", "CN", 1.2), ("贵阳", "贵州", "CN", 1), ("石家庄", "河北", "CN", 1.2),
    ("太原", "山西", "CN", 1), ("香港", "香港", "HK", 0.4), ("Singapore", "Singapore", "SG", 0.2),
    ("San Francisco", "California", "US", 0.2),
]
_MUNICIPALITIES = {"北京", "上海", "天津", "重庆"}
_ACQUISITION_CHANNELS = ["organic_search", "paid_search", "social", "referral", "store", "app_store",
                         "marketplace", "sales"]
_ACQUISITION_P = [0.25, 0.15, 0.2, 0.1, 0.15, 0.1, 0.05, 0.0]  # "sales" comes only from won opportunities
_SALES = _ACQUISITION_CHANNELS.index("sales")

_CATEGORIES = {  # category: (price range CNY, product words)
    "electronics": ((199, 6999), ["蓝牙耳机", "智能手表", "平板电脑", "充电宝", "机械键盘"]),
    "appliances": ((299, 4999), ["空气净化器", "电饭煲", "扫地机器人", "咖啡机", "吹风机"]),
    "apparel": ((59, 899), ["羽绒服", "运动裤", "衬衫", "连衣裙", "卫衣"]),
    "beauty": ((49, 999), ["精华液", "面霜", "口红", "防晒霜", "面膜"]),
    "home": ((29, 1299), ["四件套", "收纳箱", "台灯", "香薰", "抱枕"]),
    "food": ((19, 299), ["坚果礼盒", "茶叶", "咖啡豆", "零食大礼包", "蜂蜜"]),
    "sports": ((49, 1999), ["瑜伽垫", "跑鞋", "哑铃", "骑行服", "登山包"]),
    "books": ((19, 199), ["小说", "童书", "历史读物", "编程教程", "绘本"]),
    "toys": ((29, 699), ["积木", "遥控车", "拼图", "毛绒玩具", "桌游"]),
    "health": ((39, 799), ["维生素", "蛋白粉", "按摩仪", "血压计", "鱼油"]),
}
_PRODUCTS_PER_CATEGORY = 20

_REP_TEAMS = [  # (team, region, head count)
    ("sales_east", "华东", 5), ("sales_north", "华北", 4), ("sales_south", "华南", 4), ("key_accounts", "全国", 3),
    ("customer_service", "全国", 9),
]
_CAMPAIGN_CHANNELS = ["email", "sms", "social", "search", "event"]
_CAMPAIGN_CHANNEL_P = [0.5, 0.15, 0.15, 0.1, 0.1]
_CAMPAIGN_COST = {"email": (2e3, 2e4), "sms": (5e3, 5e4), "social": (2e4, 2e5), "search": (2e4, 1.5e5),
                  "event": (3e4, 3e5)}
_CAMPAIGN_LABEL = {"email": "邮件营销", "sms": "短信营销", "social": "社媒推广", "search": "搜索推广",
                   "event": "线下活动"}
_MONTH_THEME = ["新春", "新春", "春季上新", "春季上新", "五一", "618", "暑期", "暑期", "开学季", "国庆", "双11",
                "双12"]

_LEAD_SOURCES = ["web_form", "campaign", "referral", "event", "cold_call", "partner"]
_LEAD_SOURCE_P = [0.3, 0.25, 0.15, 0.1, 0.1, 0.1]
_STAGES = ["new", "contacted", "qualified", "proposal", "negotiation", "won", "lost"]
_ADVANCE_P = np.array([0.85, 0.6, 0.65, 0.7, 0.55])  # new->contacted, ..., negotiation->won
_STAGE_GAP_DAYS = np.array([2.0, 7.0, 10.0, 14.0, 14.0])  # mean days spent before each next step

_ORDER_CHANNELS = ["online", "app", "store", "phone"]
_ORDER_CHANNEL_P = [0.5, 0.3, 0.15, 0.05]
_LINE_COUNT_P = [0.2, 0.2, 0.25, 0.2, 0.15]  # 1..5 lines, ~2.9 on average
_TICKET_CATEGORIES = ["delivery", "product_quality", "refund", "billing", "account", "other"]
_PRIORITIES = ["low", "normal", "high"]

# Interaction types and their per-day base rates for (healthy, warning, dropped-out) persons.
_INTERACTION_TYPES = ["email_sent", "email_open", "email_click", "call", "meeting", "web_visit", "chat"]
_TYPE = {name: i for i, name in enumerate(_INTERACTION_TYPES)}
_ACTIVITY_RATES = {
    "call": 0.0012 * np.array([1.0, 1.0, 0.3]),
    "meeting": 0.00015 * np.array([1.0, 1.0, 0.0]),
    "chat": 0.002 * np.array([1.0, 2.5, 0.3]),
}
_WEB_STATE_FACTOR = np.array([1.0, 0.35, 0.05])  # web visit rate = (1.2 lambda + 0.006) x factor
_OPEN_P = np.array([0.30, 0.12, 0.04])
_CLICK_P = np.array([0.25, 0.12, 0.05])  # given an open
_NPS_P = np.array([  # P(score 0..10) by state
    [0.01, 0.01, 0.01, 0.02, 0.02, 0.03, 0.05, 0.15, 0.25, 0.22, 0.23],
    [0.08, 0.07, 0.10, 0.12, 0.13, 0.15, 0.12, 0.10, 0.07, 0.03, 0.03],
    [0.15, 0.12, 0.13, 0.13, 0.12, 0.11, 0.08, 0.07, 0.05, 0.02, 0.02],
])
_CSAT_P = {"routine": [0.03, 0.05, 0.15, 0.37, 0.40], "warning": [0.45, 0.35, 0.12, 0.05, 0.03]}

# Seasonality: Monday..Sunday, hour of day (both rescaled to mean 1), Spring Festival (first day of lunar year).
_WEEKDAY = np.array([0.93, 0.91, 0.93, 0.96, 1.04, 1.18, 1.12])
_HOURLY = np.array([0.35, 0.2, 0.12, 0.08, 0.08, 0.12, 0.3, 0.6, 0.9, 1.1, 1.2, 1.25, 1.3, 1.2, 1.1, 1.1, 1.1,
                    1.2, 1.3, 1.5, 1.75, 1.9, 1.6, 0.9])
_SPRING_FESTIVAL = {
    2015: (2, 19), 2016: (2, 8), 2017: (1, 28), 2018: (2, 16), 2019: (2, 5), 2020: (1, 25), 2021: (2, 12),
    2022: (2, 1), 2023: (1, 22), 2024: (2, 10), 2025: (1, 29), 2026: (2, 17), 2027: (2, 6), 2028: (1, 26),
    2029: (2, 13), 2030: (2, 3), 2031: (1, 23), 2032: (2, 11), 2033: (1, 31), 2034: (2, 19), 2035: (2, 8),
}
_SPRING_FESTIVAL_APPROX = (2, 5)  # outside the table: close enough for a sample

# Messiness rates.
_LATE_RATE = 0.015  # orders / interactions exported 1-5 days after they happened
_REDELIVERY_RATE = 0.03  # of rows exported in the week before the snapshot or in a delta
_CUSTOMER_REDELIVERY_RATE = 0.001
_CUSTOMER_CHANGE_RATE = 0.009  # customers getting a new version during the three delta days
_BAD_DATE_RATE = 0.001
_NEGATIVE_QTY_RATE = 0.001
_TEXT_QTY_RATE = 0.0005
_ORPHAN_RATE = 0.001
_BAD_DATES = ["2025-13-45", "not a date", "2025-02-30"]
_BAD_QUANTITIES = ["two", "N/A", "1件", "x2"]

# Date styles: 0 "2025-08-27 14:05:00", 1 "2025/8/27 14:05", 2 "2025-08-27", 3 "2025/8/27", 4 "2025年8月27日".
_DATETIME_STYLE_P = [0.9, 0.04, 0.03, 0.015, 0.015]
_DATE_STYLE_P = [0.0, 0.0, 0.88, 0.07, 0.05]
# Amount styles: 0 "1234.50", 1 "1,234.50", 2 "¥1234.5", 3 "$1234.50".
_CNY_AMOUNT_STYLE_P = [0.85, 0.08, 0.07, 0.0]

_GB_DROP = 2  # the delta whose customers.csv comes from a Chinese Windows export


@dataclass(frozen=True)
class _FileSpec:
    encoding: str = "utf-8"
    newline: str = "\n"
    headers: tuple[str, ...] | None = None  # written instead of the canonical names, same order
    extra: tuple[str, ...] = ()  # non-contract columns appended to this file only


_FILE_SPECS = {
    (0, "customers"): _FileSpec(encoding="utf-8-sig"),
    (_GB_DROP, "customers"): _FileSpec(
        encoding="gb18030", newline="\r\n",
        headers=("客户编号", "姓名", "邮箱", "手机", "性别", "出生日期", "城市", "省份", "国家", "注册日期", "获客渠道",
                 "营销许可", "更新时间")),
    (3, "orders"): _FileSpec(headers=("order_no", "cust_id", "order_time", "order_status", "total", "currency",
                                      "channel", "sales_rep_id", "last_modified")),
    (0, "tickets"): _FileSpec(extra=("priority",)),
}

TRUTH_FILES = ("customers_truth.parquet", "planted_issues.parquet", "params.json", "campaigns_truth.parquet")


@dataclass
class GenerateSummary:
    out_dir: Path
    truth_dir: Path
    drop_dates: list[date]
    rows: dict[str, int]  # rows written per entity, over all drops
    files: list[Path]
    persons: int
    customer_ids: int
    elapsed_seconds: float

    def lines(self) -> list[str]:
        return [
            f"{self.persons:,} persons under {self.customer_ids:,} customer ids in {self.elapsed_seconds:.1f} s",
            f"drops: {self.drop_dates[0]} (snapshot), " + ", ".join(str(d) for d in self.drop_dates[1:]),
            *(f"  {entity:<14}{count:>12,} rows" for entity, count in self.rows.items()),
            f"export: {self.out_dir} ({len(self.files)} files)",
            f"ground truth: {self.truth_dir}",
        ]


def generate(out_dir: Path, customers: int = 10_000, days: int = 1095, seed: int = 42,
             truth_dir: Path | None = None, end_date: date = date(2026, 10, 31),
             progress: Callable[[str], None] | None = None) -> GenerateSummary:
    """Write a messy CRM export of ``customers`` persons over ``days`` days ending at ``end_date``.

    ``customers`` counts persons; ~3% of them get a second customer_id. Existing drop folders and truth files of
    an earlier run in the same places are replaced.
    """
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    if customers < 1 or days < 30:
        raise ValueError("need at least 1 customer and 30 days of history")
    out_dir = Path(out_dir)
    truth_dir = Path(truth_dir) if truth_dir is not None else out_dir.parent / f"{out_dir.name}_truth"
    if truth_dir.resolve().is_relative_to(out_dir.resolve()):
        raise ValueError(f"truth_dir {truth_dir} must be outside the export folder {out_dir}")
    _clear_previous_output(out_dir, truth_dir)

    params = Params()
    cal = _Calendar.build(end_date, days, params.signup_growth)
    reference_seq, chunk_seq = np.random.SeedSequence(seed).spawn(2)
    say("reference data: products, sales reps, campaigns")
    ref = _Reference.build(np.random.default_rng(reference_seq), cal)
    writer = _DropWriter(out_dir, cal.drop_dates)
    truth = _TruthWriter(truth_dir, ref)
    for entity, columns, drop in ref.exports(cal):
        writer.append(entity, columns, drop)

    counters = _Counters()
    n_chunks = -(-customers // CHUNK_PERSONS)
    for k, chunk_seed in enumerate(chunk_seq.spawn(n_chunks)):
        first = k * CHUNK_PERSONS
        size = min(CHUNK_PERSONS, customers - first)
        say(f"customers {first + 1:,}-{first + size:,} of {customers:,}")
        _generate_chunk(np.random.default_rng(chunk_seed), first, size, cal, params, ref, counters, writer, truth)

    say("ground truth")
    files = writer.close()
    truth.close({
        "seed": seed, "persons": customers, "customer_ids": counters.customer, "days": days,
        "start_date": cal.start.isoformat(), "end_date": end_date.isoformat(),
        "drop_dates": [d.isoformat() for d in cal.drop_dates], "time_unit": "days", "currency": "CNY",
        "bg_nbd": {"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b},
        "gamma_gamma": {"p": params.p, "q": params.q, "v": params.v},
        "fx_rates_cny": FX_RATES, "model": asdict(params), "rows": writer.rows,
    })
    return GenerateSummary(out_dir, truth_dir, list(cal.drop_dates), dict(writer.rows), files, customers,
                           counters.customer, time.perf_counter() - started)


def _clear_previous_output(out_dir: Path, truth_dir: Path) -> None:
    """Remove what an earlier run wrote (date folders of CSVs, truth files) and nothing else."""
    if out_dir.is_dir():
        for folder in out_dir.iterdir():
            if (folder.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", folder.name)
                    and all(f.suffix == ".csv" for f in folder.iterdir())):
                shutil.rmtree(folder)
    for name in TRUTH_FILES:
        (truth_dir / name).unlink(missing_ok=True)


# --- calendar and seasonality ------------------------------------------------------------------------------


def _epoch_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


@dataclass(frozen=True)
class _Calendar:
    start: date
    drop_dates: tuple[date, ...]
    start_s: int
    end_s: int  # midnight after end_date: nothing happens at or after it
    bounds: np.ndarray  # exclusive end of each drop's period (epoch seconds)
    grid: np.ndarray  # hour boundaries of the window (epoch seconds)
    cum_season: np.ndarray  # integral of the seasonal multiplier (days) at each grid point
    cum_signup: np.ndarray  # integral of growth x seasonal multiplier, normalised to end at 1

    @classmethod
    def build(cls, end_date: date, days: int, growth: float) -> _Calendar:
        start = end_date - timedelta(days=days - 1)
        drop_dates = tuple(end_date - timedelta(days=k) for k in (3, 2, 1, 0))
        start_s = _epoch_day(start) * DAY
        hourly = np.repeat(_daily_multiplier(start, days), 24) * np.tile(_HOURLY / _HOURLY.mean(), days) / 24
        trend = np.exp(np.log(growth) * np.arange(days * 24) / (days * 24))
        cum_signup = np.concatenate([[0.0], np.cumsum(hourly * trend)])
        return cls(
            start=start, drop_dates=drop_dates, start_s=start_s, end_s=start_s + days * DAY,
            bounds=np.array([(_epoch_day(d) + 1) * DAY for d in drop_dates], dtype=np.int64),
            grid=start_s + np.arange(days * 24 + 1, dtype=np.float64) * HOUR,
            cum_season=np.concatenate([[0.0], np.cumsum(hourly)]),
            cum_signup=cum_signup / cum_signup[-1],
        )

    def season_cum(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self.grid, self.cum_season)

    def season_time(self, cum: np.ndarray) -> np.ndarray:
        return np.interp(cum, self.cum_season, self.grid).astype(np.int64)

    def signup_times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.interp(rng.random(n), self.cum_signup, self.grid).astype(np.int64)

    def drop_of(self, t: np.ndarray) -> np.ndarray:
        """Drop index a row exported at t lands in: 0 snapshot, 1-3 deltas, 4 after the last drop."""
        return np.searchsorted(self.bounds, t, side="right").astype(np.int8)

    def arrival(self, rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
        """Export time: a few rows arrive 1-5 days late (the last drop takes whatever is still pending)."""
        late = rng.random(t.size) < _LATE_RATE
        lag = np.where(late, rng.integers(1, 6, t.size) * DAY, 0)
        return np.minimum(t + lag, self.end_s - 1)


def _daily_multiplier(start: date, days: int) -> np.ndarray:
    """Seasonal purchase multiplier per day (weekday x yearly cycle x holidays), rescaled to mean 1."""
    day = np.arange(_epoch_day(start), _epoch_day(start) + days)
    d64 = day.astype("datetime64[D]")
    year = d64.astype("datetime64[Y]").astype(int) + 1970
    month = d64.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (d64 - d64.astype("datetime64[M]")).astype(int) + 1
    doy = (d64 - d64.astype("datetime64[Y]")).astype(int)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    m = _WEEKDAY[weekday] / _WEEKDAY.mean() * (1 + 0.1 * np.cos(2 * np.pi * (doy - 330) / 365.25))
    holiday = np.ones(days)
    holiday[(month == 11) & (dom < 11)] = 1.4  # Singles' Day pre-sales
    holiday[(month == 11) & (dom == 11)] = 3.5
    holiday[(month == 11) & (dom == 12)] = 1.3
    holiday[(month == 6) & (dom < 18)] = 1.25  # 618 build-up
    holiday[(month == 6) & (dom == 18)] = 2.5
    holiday[(month == 10) & (dom <= 7)] = 1.3  # National Day golden week
    festival = np.array([_epoch_day(date(y, *_SPRING_FESTIVAL.get(int(y), _SPRING_FESTIVAL_APPROX)))
                         for y in year])
    to_festival = day - festival
    holiday[(to_festival >= -14) & (to_festival <= -2)] = 1.3  # new-year shopping
    holiday[(to_festival >= -1) & (to_festival <= 6)] = 0.6  # couriers on holiday
    m *= holiday
    return m / m.mean()


# --- small vectorised helpers ------------------------------------------------------------------------------


def _group_starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _group_rank(counts: np.ndarray) -> np.ndarray:
    """0, 1, ... within each group of a flat array grouped by ``counts``."""
    return np.arange(counts.sum()) - np.repeat(_group_starts(counts), counts)


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    total = np.concatenate([[0.0], np.cumsum(values)])
    return total[1:] - np.repeat(total[_group_starts(counts)], counts)


def _uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + (rng.random(lo.size) * (hi - lo)).astype(np.int64)


_SMALL_INTS = pa.array([str(i) for i in range(1000)], pa.string())


def _s(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.int64)
    if values.size and 0 <= values.min() and values.max() < len(_SMALL_INTS):
        return _SMALL_INTS.take(values)  # a lookup is much cheaper than casting
    return pa.array(values).cast(pa.string())


def _id(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """prefix + zero-padded number, written digit by digit into one fixed-width byte matrix.

    Ids are the widest columns; this is several times faster than cast + pad + join.
    """
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    text = np.empty((len(numbers), head.size + width), dtype=np.uint8)
    text[:, : head.size] = head
    rest = np.asarray(numbers, dtype=np.int64)
    for column in range(head.size + width - 1, head.size - 1, -1):
        text[:, column] = rest % 10 + ord("0")
        rest = rest // 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int32) * text.shape[1]
    return pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(text))


def _cat(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _pick(values: list[str], index: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(index)


def _blank(text: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), text)


def _choose(rng: np.random.Generator, probs: list[float], n: int) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    return rng.choice(probs.size, size=n, p=probs / probs.sum()).astype(np.int8)


def _assemble(n: int, parts: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """Interleave per-subset strings back into row order (parts cover all n rows exactly once)."""
    position = np.empty(n, dtype=np.int64)
    offset = 0
    for index, _ in parts:
        position[index] = offset + np.arange(index.size)
        offset += index.size
    return pa.concat_arrays([pa.array([], pa.string()), *(text for _, text in parts)]).take(position)


# --- formatting --------------------------------------------------------------------------------------------

_TABLE_FIRST_DAY = _epoch_day(date(1900, 1, 1))
_TABLE_DAYS = _epoch_day(date(2100, 1, 1)) - _TABLE_FIRST_DAY


@lru_cache(maxsize=None)
def _day_strings(style: int) -> pa.Array:
    """Every day 1900-2099 rendered in one style; rows are then formatted with a take()."""
    d64 = np.arange(_TABLE_FIRST_DAY, _TABLE_FIRST_DAY + _TABLE_DAYS).astype("datetime64[D]")
    year = _s(d64.astype("datetime64[Y]").astype(int) + 1970)
    month = _s(d64.astype("datetime64[M]").astype(int) % 12 + 1)
    day = _s((d64 - d64.astype("datetime64[M]")).astype(int) + 1)
    if style in (0, 2):
        return _cat(year, "-", pc.utf8_lpad(month, 2, "0"), "-", pc.utf8_lpad(day, 2, "0"))
    if style in (1, 3):
        return _cat(year, "/", month, "/", day)
    return _cat(year, "年", month, "月", day, "日")


@lru_cache(maxsize=None)
def _clock_strings(with_seconds: bool) -> pa.Array:
    """"HH:MM:SS" for every second of a day, or "HH:MM" for every minute."""
    t = np.arange(0, DAY, 1 if with_seconds else 60)
    parts = [pc.utf8_lpad(_s(v), 2, "0") for v in (t // 3600, t // 60 % 60, t % 60)]
    return pc.binary_join_element_wise(*(parts if with_seconds else parts[:2]), ":")


def _fmt_times(secs: np.ndarray, styles: np.ndarray) -> pa.Array:
    """Epoch seconds to text in the given date style per row; NEVER (or beyond) becomes empty."""
    secs = np.asarray(secs, dtype=np.int64)
    valid = secs < NEVER
    day = np.where(valid, secs // DAY, 0)
    clock = secs - day * DAY
    parts = [(np.flatnonzero(~valid), pa.nulls(int((~valid).sum()), pa.string()))]
    for style in np.unique(styles[valid]):
        index = np.flatnonzero(valid & (styles == style))
        text = _day_strings(int(style)).take(day[index] - _TABLE_FIRST_DAY)
        if style == 0:
            text = pc.binary_join_element_wise(text, _clock_strings(True).take(clock[index]), " ")
        elif style == 1:
            text = pc.binary_join_element_wise(text, _clock_strings(False).take(clock[index] // 60), " ")
        parts.append((index, text))
    return _assemble(secs.size, parts)


def _plain_amount(cents: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(_s(cents // 100), pc.utf8_lpad(_s(cents % 100), 2, "0"), ".")


def _thousands(units: np.ndarray) -> pa.Array:
    text = _s(units % 1000)
    level = units // 1000
    text = pc.if_else(pa.array(level > 0), pc.utf8_lpad(text, 3, "0"), text)
    while (level > 0).any():
        higher = level // 1000
        group = pc.if_else(pa.array(higher > 0), pc.utf8_lpad(_s(level % 1000), 3, "0"), _s(level % 1000))
        text = pc.if_else(pa.array(level > 0), pc.binary_join_element_wise(group, text, ","), text)
        level = higher
    return text


def _fmt_amounts(cents: np.ndarray, styles: np.ndarray) -> pa.Array:
    """Non-negative cents to text: 0 "1234.50", 1 "1,234.50", 2 "¥1234.5", 3 "$1234.50"."""
    cents = np.asarray(cents, dtype=np.int64)
    parts = []
    for style in np.unique(styles):
        index = np.flatnonzero(styles == style)
        plain = _plain_amount(cents[index])
        if style == 1:
            frac = pc.utf8_lpad(_s(cents[index] % 100), 2, "0")
            text = pc.binary_join_element_wise(_thousands(cents[index] // 100), frac, ".")
        elif style == 2:
            text = _cat("¥", pc.utf8_rtrim(pc.utf8_rtrim(plain, characters="0"), characters="."))
        elif style == 3:
            text = _cat("$", plain)
        else:
            text = plain
        parts.append((index, text))
    return _assemble(cents.size, parts)


def _fmt_phones(digits: np.ndarray, styles: np.ndarray) -> pa.Array:
    """11-digit mobiles (0 = missing) as 0 "13800138000", 1 "+86 138 0013 8000", 2 "138-0013-8000", 3 "0086 ..."."""
    text = _s(digits)
    head, mid, tail = (pc.utf8_slice_codeunits(text, a, b) for a, b in ((0, 3), (3, 7), (7, 11)))
    variants = [text, _cat("+86 ", head, " ", mid, " ", tail), _cat(head, "-", mid, "-", tail), _cat("0086 ", text)]
    parts = [(np.flatnonzero(styles == s), variants[s].take(np.flatnonzero(styles == s))) for s in range(4)]
    return _blank(_assemble(digits.size, parts), digits == 0)


def _scramble(index: np.ndarray, multiplier: int, offset: int) -> np.ndarray:
    """A bijection of 0..1e8-1: unique, random-looking numbers for e-mails and phones."""
    return (index.astype(np.int64) * multiplier + offset) % 100_000_000


# --- CSV writing -------------------------------------------------------------------------------------------


def _quote(text: pa.Array) -> pa.Array:
    text = pc.fill_null(text, "")
    data = text.buffers()[2]
    # Scanning the raw bytes (memchr) is far cheaper than a per-cell match, and few columns need quoting.
    raw = data.to_pybytes() if data is not None else b""
    if not any(special in raw for special in (b'"', b",", b"\r", b"\n")):
        return text
    needs = pc.match_substring_regex(text, '[",\r\n]')
    quoted = _cat('"', pc.replace_substring(text, '"', '""'), '"')
    return pc.if_else(needs, quoted, text)


def _csv_bytes(columns: list[pa.Array], newline: str) -> memoryview:
    cells = [_quote(c) for c in columns]
    cells[-1] = _cat(cells[-1], newline)
    lines = pc.binary_join_element_wise(*cells, ",")
    data, offsets = lines.buffers()[2], lines.buffers()[1]
    bounds = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(data)[bounds[0]:bounds[-1]]


# Contract columns the sample does not write: a marketplace's person id, and the order attributes only line-level
# files carry on their lines (the sample's order lines come with an orders file).
NOT_WRITTEN = {"customers": ("person_id",),
               "order_items": ("line_amount", "customer_id", "order_date", "status", "currency", "channel", "rep_id")}


def written_columns(entity: str) -> tuple[str, ...]:
    """The columns of an entity's sample files, in contract order."""
    return tuple(c for c in ENTITIES_BY_NAME[entity].column_names if c not in NOT_WRITTEN.get(entity, ()))


class _DropWriter:
    """Appends rows to ``out_dir/<drop date>/<entity>.csv``, opening each file (and writing its header) lazily."""

    def __init__(self, out_dir: Path, drop_dates: tuple[date, ...]):
        self.out_dir = out_dir
        self.drop_dates = drop_dates
        self.rows = {e.name: 0 for e in ENTITIES}
        self._handles: dict[tuple[int, str], IO[bytes]] = {}

    def path(self, drop: int, entity: str) -> str:
        return f"{self.drop_dates[drop].isoformat()}/{entity}.csv"

    def append(self, entity: str, columns: dict[str, pa.Array], drop: np.ndarray) -> None:
        names = written_columns(entity)
        for k in range(N_DROPS):
            index = np.flatnonzero(drop == k)
            if index.size == 0:
                continue
            spec = _FILE_SPECS.get((k, entity), _FileSpec())
            data = _csv_bytes([columns[c].take(index) for c in names + spec.extra], spec.newline)
            if spec.encoding == "gb18030":
                data = bytes(data).decode("utf-8").encode("gb18030")
            self._handle(k, entity, spec).write(data)
            self.rows[entity] += index.size

    def _handle(self, drop: int, entity: str, spec: _FileSpec) -> IO[bytes]:
        if (drop, entity) not in self._handles:
            path = self.out_dir / self.path(drop, entity)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("wb", buffering=1 << 20)
            headers = spec.headers or written_columns(entity) + spec.extra
            handle.write((",".join(headers) + spec.newline).encode(spec.encoding))
            self._handles[drop, entity] = handle
        return self._handles[drop, entity]

    def close(self) -> list[Path]:
        for handle in self._handles.values():
            handle.close()
        return sorted(self.out_dir / self.path(k, e) for k, e in self._handles)


_TRUTH_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("person_id", pa.string()), ("is_primary", pa.bool_()),
    ("household_id", pa.string()), ("signup_at", pa.timestamp("s")), ("lambda_per_day", pa.float64()),
    ("p_dropout", pa.float64()), ("nu", pa.float64()), ("mean_spend", pa.float64()),
    ("n_purchases", pa.int64()), ("n_campaign_purchases", pa.int64()), ("last_purchase_at", pa.timestamp("s")),
    ("dropout_date", pa.date32()), ("is_alive_at_end", pa.bool_()),
])
_CAMPAIGN_TRUTH_COUNTS = ("persons_reached", "participants", "incremental_purchases", "incremental_revenue_cents")
_ISSUES_SCHEMA = pa.schema([("entity", pa.string()), ("file", pa.string()), ("key", pa.string()),
                            ("kind", pa.string())])


class _TruthWriter:
    def __init__(self, truth_dir: Path, ref: _Reference):
        truth_dir.mkdir(parents=True, exist_ok=True)
        self.truth_dir = truth_dir
        self._customers = pq.ParquetWriter(truth_dir / "customers_truth.parquet", _TRUTH_SCHEMA)
        self._issues: list[pa.Table] = []
        self._ref = ref
        self._campaign_counts = np.zeros((len(_CAMPAIGN_TRUTH_COUNTS), ref.campaign_start.size), np.int64)

    def customers(self, table: pa.Table) -> None:
        self._customers.write_table(table)

    def campaign_effects(self, counts: np.ndarray) -> None:
        """Add one chunk's per-campaign counts (rows: ``_CAMPAIGN_TRUTH_COUNTS``)."""
        self._campaign_counts += counts

    def _write_campaigns(self) -> None:
        """campaigns_truth.parquet: per campaign, the persons e-mailed and responding, and the paid purchases the
        responses caused. Campaign purchases come on top of the BG/NBD purchases, so they are exactly the
        campaign's incremental effect among its participants; other channels cause no purchases (only leads)."""
        ref, counts = self._ref, dict(zip(_CAMPAIGN_TRUTH_COUNTS, self._campaign_counts))
        participants = counts["participants"]
        revenue = counts["incremental_revenue_cents"] / 100
        with np.errstate(invalid="ignore", divide="ignore"):
            per_participant = np.where(participants > 0, revenue / participants, np.nan)
        pq.write_table(pa.table({
            "campaign_id": _id("CMP", np.arange(1, ref.campaign_start.size + 1), 3),
            "channel": _pick(_CAMPAIGN_CHANNELS, ref.campaign_channel),
            "start_date": pa.array(ref.campaign_start.astype(np.int32), pa.date32()),
            "persons_reached": counts["persons_reached"],
            "participants": participants,
            "incremental_purchases": counts["incremental_purchases"],
            "incremental_revenue": revenue,
            "incremental_revenue_per_participant": pa.array(per_participant, mask=np.isnan(per_participant)),
        }), self.truth_dir / "campaigns_truth.parquet")

    def planted(self, entity: str, files: pa.Array, keys: pa.Array, kind: str) -> None:
        n = len(keys)
        self._issues.append(pa.table([pa.array([entity] * n), files, keys, pa.array([kind] * n)],
                                     schema=_ISSUES_SCHEMA))

    def close(self, params: dict) -> None:
        self._customers.close()
        self._write_campaigns()
        pq.write_table(pa.concat_tables([_ISSUES_SCHEMA.empty_table(), *self._issues]),
                       self.truth_dir / "planted_issues.parquet")
        (self.truth_dir / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")


# --- reference data: products, reps, campaigns -------------------------------------------------------------


def _chinese_names(rng: np.random.Generator, female: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(name, pinyin) per person: a frequency-weighted surname and one or two given-name characters."""
    n = female.size
    weights = 1 / np.arange(1, len(_SURNAMES) + 1) ** 0.8
    surname = rng.choice(len(_SURNAMES), n, p=weights / weights.sum())
    size = len(_GIVEN[0])
    first = rng.integers(0, size, n) + female * size
    second = np.where(rng.random(n) < 0.6, rng.integers(0, size, n) + female * size, 2 * size)  # 2 * size: none
    chars = [c for c, _ in _GIVEN[0] + _GIVEN[1]] + [""]
    sounds = [s for _, s in _GIVEN[0] + _GIVEN[1]] + [""]
    name = _cat(_pick([c for c, _ in _SURNAMES], surname), _pick(chars, first), _pick(chars, second))
    pinyin = _cat(_pick([s for _, s in _SURNAMES], surname), _pick(sounds, first), _pick(sounds, second))
    return name, pinyin


@dataclass
class _Reference:
    product_price: np.ndarray  # CNY cents, products sorted by price
    product_category: np.ndarray
    product_name: pa.Array
    rep_team: np.ndarray  # index into _REP_TEAMS
    rep_name: pa.Array
    campaign_channel: np.ndarray  # index into _CAMPAIGN_CHANNELS
    campaign_start: np.ndarray  # epoch day
    campaign_end: np.ndarray  # epoch day (inclusive)
    campaign_cost: np.ndarray  # CNY cents
    campaign_send: np.ndarray  # e-mail send time (epoch seconds)

    @property
    def sales_reps(self) -> np.ndarray:
        return np.flatnonzero(self.rep_team != len(_REP_TEAMS) - 1)

    @property
    def service_reps(self) -> np.ndarray:
        return np.flatnonzero(self.rep_team == len(_REP_TEAMS) - 1)

    @classmethod
    def build(cls, rng: np.random.Generator, cal: _Calendar) -> _Reference:
        categories = list(_CATEGORIES)
        category = np.repeat(np.arange(len(categories)), _PRODUCTS_PER_CATEGORY)
        low, high = (np.array([_CATEGORIES[c][0][i] for c in categories])[category] for i in (0, 1))
        raw = np.exp(rng.uniform(np.log(low), np.log(high)))
        # Shop prices: 39.90 below 100 yuan, 1299.00 above.
        price = np.where(raw < 100, np.round(raw) * 100 - 10, (np.round(raw / 10) * 10 - 1) * 100).astype(np.int64)
        word = rng.integers(0, 5, category.size)
        series = _cat(_pick(list("ASXMP"), rng.integers(0, 5, category.size)), _s(rng.integers(1, 10, category.size)))
        name = pc.binary_join_element_wise(
            _pick([w for c in categories for w in _CATEGORIES[c][1]], category * 5 + word), series, " ")
        by_price = np.argsort(price, kind="stable")

        team = np.repeat(np.arange(len(_REP_TEAMS)), [n for _, _, n in _REP_TEAMS])
        rep_name, _ = _chinese_names(rng, rng.random(team.size) < 0.5)

        n_campaigns = max(4, round(30 * (cal.end_s - cal.start_s) / DAY / 1095))
        start_day = cal.start_s // DAY
        last_day = cal.end_s // DAY - 1
        start = np.sort(rng.integers(start_day, last_day + 1, n_campaigns))
        channel = _choose(rng, _CAMPAIGN_CHANNEL_P, n_campaigns)
        channel[0] = 0  # at least one e-mail campaign, so e-mail behaviour is always present
        cost_range = np.array([_CAMPAIGN_COST[c] for c in _CAMPAIGN_CHANNELS])[channel]
        return cls(
            product_price=price[by_price], product_category=category[by_price], product_name=name.take(by_price),
            rep_team=team, rep_name=rep_name,
            campaign_channel=channel, campaign_start=start, campaign_end=start + rng.integers(6, 28, n_campaigns),
            campaign_cost=(rng.uniform(cost_range[:, 0], cost_range[:, 1]) * 100).astype(np.int64),
            campaign_send=start * DAY + 10 * HOUR + rng.integers(0, 2 * HOUR, n_campaigns),
        )

    def exports(self, cal: _Calendar):
        """(entity, columns, drop) for the reference tables."""
        n = self.product_price.size
        snapshot_time = np.full(n, cal.start_s - 30 * DAY)
        yield "products", {
            "product_id": _id("SKU", np.arange(1, n + 1), 5), "product_name": self.product_name,
            "category": _pick(list(_CATEGORIES), self.product_category),
            "list_price": _plain_amount(self.product_price), "currency": pa.array(["CNY"] * n),
            "updated_at": _fmt_times(snapshot_time, np.zeros(n, np.int8)),
        }, np.zeros(n, np.int8)
        m = self.rep_team.size
        yield "sales_reps", {
            "rep_id": _id("R", np.arange(1, m + 1), 3), "rep_name": self.rep_name,
            "team": _pick([t for t, _, _ in _REP_TEAMS], self.rep_team),
            "region": _pick([r for _, r, _ in _REP_TEAMS], self.rep_team),
        }, np.zeros(m, np.int8)
        c = self.campaign_start.size
        year = (self.campaign_start.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
        month = self.campaign_start.astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12
        theme = _cat(_s(year), _pick(_MONTH_THEME, month),
                     _pick([_CAMPAIGN_LABEL[ch] for ch in _CAMPAIGN_CHANNELS], self.campaign_channel))
        start_s = self.campaign_start * DAY
        yield "campaigns", {
            "campaign_id": _id("CMP", np.arange(1, c + 1), 3), "campaign_name": theme,
            "channel": _pick(_CAMPAIGN_CHANNELS, self.campaign_channel),
            "start_date": _fmt_times(start_s, np.full(c, 2, np.int8)),
            "end_date": _fmt_times(self.campaign_end * DAY, np.full(c, 2, np.int8)),
            "cost": _fmt_amounts(self.campaign_cost, np.where(self.campaign_cost >= 100_000, 1, 0)),
            "currency": pa.array(["CNY"] * c),
        }, cal.drop_of(start_s)


# --- one chunk of persons ----------------------------------------------------------------------------------


@dataclass
class _Counters:
    """Running id counters, so ids stay unique across chunks."""

    customer: int = 0
    order: int = 0
    interaction: int = 0
    ticket: int = 0
    survey: int = 0
    lead: int = 0
    orphan_order: int = 0
    orphan_customer: int = 0

    def take(self, name: str, n: int) -> np.ndarray:
        first = getattr(self, name) + 1
        setattr(self, name, first - 1 + n)
        return np.arange(first, first + n)


@dataclass
class _Persons:
    first: int  # global index of the chunk's first person
    t0: np.ndarray  # signup = first purchase (epoch seconds)
    lam: np.ndarray
    p_drop: np.ndarray
    nu: np.ndarray
    channel: np.ndarray
    female: np.ndarray
    name: pa.Array
    email: pa.Array  # lower case; null when missing
    phone: np.ndarray  # 11 digits; 0 when missing
    household: np.ndarray  # global index of the phone's owner, -1 if the phone is not shared
    birth_day: np.ndarray  # epoch day; NEVER when missing
    location: np.ndarray
    # Set by _simulate_purchases.
    n_purchases: np.ndarray | None = None
    last_t: np.ndarray | None = None
    drop_t: np.ndarray | None = None  # dropout moment (= last purchase) or NEVER
    warn_t: np.ndarray | None = None  # start of the churn warning window or NEVER

    @property
    def size(self) -> int:
        return self.t0.size

    def state(self, person: np.ndarray, t: np.ndarray) -> np.ndarray:
        """0 healthy, 1 in the churn warning window, 2 dropped out."""
        return (t >= self.warn_t[person]).astype(np.int8) + (t >= self.drop_t[person])


@dataclass
class _Records:
    """Customer ids: one primary record per person plus second records of duplicated persons."""

    person: np.ndarray
    primary: np.ndarray
    t0: np.ndarray
    number: np.ndarray  # numeric part of customer_id
    dup_of_person: np.ndarray  # per person: index of its second record, -1 if none
    consent: np.ndarray
    channel: np.ndarray
    name: pa.Array
    email: pa.Array
    phone: pa.Array
    has_email: np.ndarray
    ids: pa.Array  # customer_id text

    def for_events(self, rng: np.random.Generator, person: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Record each event of a person lands on: a duplicated person uses both ids after the second exists."""
        dup = self.dup_of_person[person]
        dup_t0 = np.where(dup >= 0, self.t0[np.maximum(dup, 0)], NEVER)
        use_dup = (t >= dup_t0) & (rng.random(person.size) < 0.5)
        return np.where(use_dup, dup, person)


def _generate_chunk(rng, first: int, n: int, cal: _Calendar, params: Params, ref: _Reference,
                    counters: _Counters, writer: _DropWriter, truth: _TruthWriter) -> None:
    persons = _make_persons(rng, first, n, cal, params)
    leads = _make_leads(rng, persons, cal, ref, params)  # moves the signup of customers won by sales
    repeats = _simulate_purchases(rng, persons, cal, params)
    records = _make_records(rng, persons, cal, counters, params)
    emails, responses = _email_touches(rng, persons, records, cal, ref)
    campaign_buys = _campaign_purchases(rng, persons, responses, cal, params)
    orders = _make_orders(rng, persons, records, repeats, campaign_buys, cal, ref, params, counters)
    # Each export yields blocks of rows (main rows, re-deliveries, orphans) that are appended as they come.
    for entity, columns, drop in chain(
        _export_customers(rng, persons, records, cal),
        _export_orders(rng, orders, records, cal, counters, writer, truth),
        _export_interactions(rng, persons, records, emails, cal, ref, counters, writer, truth),
        _export_tickets(rng, persons, records, cal, ref, counters),
        _export_surveys(rng, persons, records, cal, counters),
        _export_leads(rng, leads, records, cal, counters),
    ):
        writer.append(entity, columns, drop)
    truth.customers(_truth_table(persons, records, campaign_buys, params))
    truth.campaign_effects(_campaign_effects(records, emails, responses, orders, ref.campaign_start.size))


def _make_persons(rng, first: int, n: int, cal: _Calendar, params: Params) -> _Persons:
    index = first + np.arange(n)
    female = rng.random(n) < 0.55
    name, pinyin = _chinese_names(rng, female)
    numeric = rng.random(n) < 0.25  # QQ-number style addresses
    domain = np.where(numeric, 0, _choose(rng, _EMAIL_DOMAIN_P, n))
    local = pc.if_else(pa.array(numeric), _s(_scramble(index, 2_654_435_761, 10_000_000) + 10_000_000),
                       _cat(pinyin, _s(_scramble(index, 2_654_435_761, 10_000_000))))
    email = _blank(_cat(local, "@", _pick(_EMAIL_DOMAINS, domain)), rng.random(n) < params.email_missing_rate)
    prefix = np.array(_MOBILE_PREFIXES, dtype=np.int64)[rng.integers(0, len(_MOBILE_PREFIXES), n)]
    phone = prefix * 100_000_000 + _scramble(index, 1_103_515_245, 12_345)
    phone[rng.random(n) < params.phone_missing_rate] = 0
    household = _share_phones(rng, phone, name, first, params.household_rate)
    age_days = (np.clip(rng.normal(35, 10, n), 18, 75) * 365.25).astype(np.int64) + rng.integers(0, 365, n)
    birth_day = np.where(rng.random(n) < 0.1, NEVER, cal.end_s // DAY - age_days)
    weights = np.array([w for *_, w in _LOCATIONS])
    return _Persons(
        first=first, t0=cal.signup_times(rng, n),
        lam=rng.gamma(params.r, 1 / params.alpha, n),
        p_drop=np.clip(rng.beta(params.a, params.b, n), 1e-9, 1.0),
        nu=rng.gamma(params.q, 1 / params.v, n),
        channel=_choose(rng, _ACQUISITION_P, n), female=female, name=name, email=email, phone=phone,
        household=household, birth_day=birth_day,
        location=rng.choice(len(_LOCATIONS), n, p=weights / weights.sum()),
    )


def _share_phones(rng, phone: np.ndarray, name: pa.Array, first: int, rate: float) -> np.ndarray:
    """Households: pairs of persons sharing one phone, with different names and e-mails (NOT one person).

    Returns per person the global index of the phone's owner (its household), -1 if the phone is not shared.
    """
    household = np.full(phone.size, -1, dtype=np.int64)
    with_phone = np.flatnonzero(phone > 0)
    pairs = min(int(rng.binomial(with_phone.size, rate / 2)), with_phone.size // 2)
    owner, joiner = rng.permutation(with_phone)[: 2 * pairs].reshape(2, -1) if pairs else (with_phone[:0],) * 2
    names = name.to_numpy(zero_copy_only=False)
    differ = names[owner] != names[joiner]
    owner, joiner = owner[differ], joiner[differ]
    phone[joiner] = phone[owner]
    household[owner] = household[joiner] = first + owner
    return household


def _simulate_purchases(rng, persons: _Persons, cal: _Calendar, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD repeat purchases: returns their (person, time) and sets the persons' dropout fields.

    Without dropout, repeat purchases after signup are a Poisson process in seasonal time: N ~ Poisson(lambda x
    span) events, uniform in seasonal time. The person drops out right after repeat purchase J ~ Geometric(p),
    so only the first min(N, J) events happen: the first order statistics of N uniforms, drawn as exponential
    spacings (the spacings not needed are summed as one Gamma draw).
    """
    n = persons.size
    j = rng.geometric(persons.p_drop)
    c0 = cal.season_cum(persons.t0)
    span = cal.cum_season[-1] - c0
    n_candidates = rng.poisson(persons.lam * span)
    n_repeat = np.minimum(n_candidates, j)
    owner = np.repeat(np.arange(n), n_repeat)
    partial = _group_cumsum(rng.exponential(size=owner.size), n_repeat)
    used = np.where(n_repeat > 0, np.concatenate([[0.0], partial])[np.cumsum(n_repeat)], 0.0)
    total = used + rng.gamma(n_candidates - n_repeat + 1.0)  # + the spacings of the purchases that never happen
    t = np.maximum(cal.season_time(c0[owner] + partial / total[owner] * span[owner]), persons.t0[owner] + 1)

    alive = n_candidates < j
    last_t = np.concatenate([[0], t])[np.cumsum(n_repeat)]
    persons.n_purchases = 1 + n_repeat
    persons.last_t = np.where(n_repeat > 0, last_t, persons.t0)
    persons.drop_t = np.where(alive, NEVER, persons.last_t)
    warning = rng.integers(params.warning_days_min, params.warning_days_max + 1, n) * DAY
    persons.warn_t = np.where(alive, NEVER, persons.drop_t - warning)
    return owner, t


def _make_records(rng, persons: _Persons, cal: _Calendar, counters: _Counters, params: Params) -> _Records:
    """Primary customer records plus a second record for ~3% of persons (matchable by e-mail or phone)."""
    n = persons.size
    email_ok = pc.is_valid(persons.email).to_numpy(zero_copy_only=False)
    dup = np.flatnonzero((rng.random(n) < params.duplicate_rate) & (email_ok | (persons.phone > 0)))
    m = dup.size
    person = np.concatenate([np.arange(n), dup])
    primary = np.arange(n + m) < n
    # The second id is created some time during the person's active life, so later orders split over both.
    dup_end = np.minimum(np.maximum(persons.last_t[dup], persons.t0[dup] + 30 * DAY),
                         np.minimum(persons.drop_t[dup], cal.end_s - 1))
    t0 = np.concatenate([persons.t0, _uniform_between(rng, persons.t0[dup], dup_end)])
    number = np.empty(n + m, dtype=np.int64)
    number[np.argsort(t0, kind="stable")] = counters.take("customer", n + m)  # ids follow creation time
    dup_of_person = np.full(n, -1, dtype=np.int64)
    dup_of_person[dup] = n + np.arange(m)

    # The second record: e-mail in another case or padded, phone in another format, sometimes one key missing.
    email_style = np.concatenate([np.where(rng.random(n) < 0.05, 2, 0), _choose(rng, [0.2, 0.3, 0.2, 0.3], m)])
    email = persons.email.take(person)
    email = _assemble(n + m, [
        (np.flatnonzero(email_style == 0), email.filter(pa.array(email_style == 0))),
        (np.flatnonzero(email_style == 1), pc.utf8_upper(email.filter(pa.array(email_style == 1)))),
        (np.flatnonzero(email_style == 2), pc.utf8_capitalize(email.filter(pa.array(email_style == 2)))),
        (np.flatnonzero(email_style == 3), _cat("  ", email.filter(pa.array(email_style == 3)), " ")),
    ])
    phone = persons.phone[person].copy()
    drop_key = np.concatenate([np.zeros(n, bool), rng.random(m) < 0.3])
    email_ok_rec = email_ok[person]
    drop_email = drop_key & (phone > 0) & (rng.random(n + m) < 0.5)
    drop_phone = drop_key & ~drop_email & email_ok_rec
    email = _blank(email, drop_email)
    phone[drop_phone] = 0
    phone_style = _choose(rng, [0.6, 0.15, 0.15, 0.1], n + m)
    phone_style[n:] = (phone_style[dup] + rng.integers(1, 4, m)) % 4
    name = persons.name.take(person)
    spaced = ~primary & (rng.random(n + m) < 0.2)
    name = pc.if_else(pa.array(spaced), _cat(pc.utf8_slice_codeunits(name, 0, 1), " ",
                                             pc.utf8_slice_codeunits(name, 1)), name)
    return _Records(
        person=person, primary=primary, t0=t0, number=number, dup_of_person=dup_of_person,
        consent=rng.random(n + m) < params.marketing_consent_rate,
        channel=np.concatenate([persons.channel, _choose(rng, _ACQUISITION_P, m)]),
        name=name, email=email, phone=_fmt_phones(phone, phone_style),
        has_email=pc.is_valid(email).to_numpy(zero_copy_only=False), ids=_id("C", number, 8),
    )


def _make_leads(rng, persons: _Persons, cal: _Calendar, ref: _Reference, params: Params) -> _Leads:
    """Leads moving through the pipeline; each won lead becomes a customer who signs up right after the win."""
    n = int(rng.binomial(persons.size, params.leads_per_person))
    created = np.sort(cal.signup_times(rng, n))
    gaps = rng.gamma(2.0, _STAGE_GAP_DAYS / 2, (n, _STAGE_GAP_DAYS.size)) * DAY
    step_t = created[:, None] + np.concatenate([np.zeros((n, 1)), np.cumsum(gaps, axis=1)], axis=1).astype(np.int64)
    advance = rng.random((n, _ADVANCE_P.size)) < _ADVANCE_P
    won = advance.all(axis=1)
    last_step = np.where(won, _ADVANCE_P.size, np.argmin(advance, axis=1) + 1)

    source = _choose(rng, _LEAD_SOURCE_P, n)
    day = created // DAY
    active = (ref.campaign_start[None, :] <= day[:, None]) & (day[:, None] <= ref.campaign_end[None, :])
    is_event = ref.campaign_channel == _CAMPAIGN_CHANNELS.index("event")
    wants_event = source == _LEAD_SOURCES.index("event")
    wants_campaign = wants_event | (source == _LEAD_SOURCES.index("campaign"))
    eligible = active & (wants_event[:, None] == is_event[None, :]) & wants_campaign[:, None]
    campaign = np.where(eligible.any(axis=1), (rng.random(eligible.shape) * eligible).argmax(axis=1), -1)

    person = np.full(n, -1, dtype=np.int64)
    won_index = np.flatnonzero(won & (step_t[:, -1] < cal.end_s))[: persons.size]
    buyer = rng.choice(persons.size, won_index.size, replace=False)
    person[won_index] = buyer
    persons.t0[buyer] = np.minimum(step_t[won_index, -1] + rng.integers(60, HOUR, buyer.size), cal.end_s - 1)
    persons.channel[buyer] = _SALES
    return _Leads(created=created, step_t=step_t, last_step=last_step, won=won, source=source, campaign=campaign,
                  value=(rng.lognormal(np.log(8000), 0.8, n) * 100).astype(np.int64),
                  rep=rng.choice(ref.sales_reps, n), person=person)


@dataclass
class _Leads:
    created: np.ndarray
    step_t: np.ndarray  # (leads, 6): time of each pipeline step
    last_step: np.ndarray  # step of the final row (won or lost)
    won: np.ndarray
    source: np.ndarray
    campaign: np.ndarray  # -1 if none
    value: np.ndarray  # expected deal value, CNY cents
    rep: np.ndarray
    person: np.ndarray  # person created by a won lead, -1 otherwise


@dataclass
class _Events:
    """Interactions before ids are assigned."""

    kind: np.ndarray
    record: np.ndarray
    t: np.ndarray
    campaign: np.ndarray
    rep: np.ndarray

    @classmethod
    def of(cls, kind: str, record, t, campaign=None, rep=None) -> _Events:
        n = t.size
        return cls(np.full(n, _TYPE[kind], np.int8), record, t,
                   np.full(n, -1) if campaign is None else campaign, np.full(n, -1) if rep is None else rep)

    @classmethod
    def concat(cls, parts: list[_Events]) -> _Events:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("kind", "record", "t", "campaign",
                                                                               "rep")))


def _email_touches(rng, persons: _Persons, records: _Records, cal: _Calendar, ref: _Reference):
    """E-mail sends to consenting records, opens and clicks depending on churn state.

    Returns the interactions and the responses (person, record, open or click time, state, clicked, campaign).
    """
    email_campaign = np.flatnonzero(ref.campaign_channel == 0)
    send = ref.campaign_send[email_campaign]
    eligible = ((records.consent & records.has_email)[:, None] & (records.t0[:, None] < send[None, :])
                & (send < cal.end_s)[None, :])
    record, c = np.nonzero(eligible & (rng.random(eligible.shape) < 0.85))  # 15% random hold-out
    campaign = email_campaign[c]
    person = records.person[record]
    sent = send[c] + rng.integers(0, HOUR, record.size)
    state = persons.state(person, sent)
    opened = rng.random(record.size) < _OPEN_P[state]
    open_t = sent + 60 + rng.exponential(6 * HOUR, record.size).astype(np.int64)
    clicked = opened & (rng.random(record.size) < _CLICK_P[state])
    click_t = open_t + 5 + rng.exponential(300, record.size).astype(np.int64)
    events = _Events.concat([
        _Events.of("email_sent", record, sent, campaign),
        _Events.of("email_open", record[opened], open_t[opened], campaign[opened]),
        _Events.of("email_click", record[clicked], click_t[clicked], campaign[clicked]),
        _Events.of("web_visit", record[clicked], click_t[clicked] + 10, campaign[clicked]),  # the landing page
    ])
    events = _Events(*(getattr(events, f)[events.t < cal.end_s] for f in ("kind", "record", "t", "campaign", "rep")))
    respond_t = np.where(clicked, click_t, open_t)
    responded = opened & (respond_t < cal.end_s)
    return events, tuple(x[responded] for x in (person, record, respond_t, state, clicked, campaign))


def _campaign_purchases(rng, persons: _Persons, responses, cal: _Calendar, params: Params):
    """Extra purchases caused by opened / clicked e-mails (the campaign lift), before the person's last purchase."""
    person, record, respond_t, state, clicked, campaign = responses
    buy_t = respond_t + rng.exponential(1.5 * DAY, person.size).astype(np.int64)
    buy_p = np.where(clicked, params.click_purchase_prob, params.open_purchase_prob)
    keep = ((state < 2) & (rng.random(person.size) < buy_p)
            & (buy_t < np.minimum(persons.drop_t[person], cal.end_s)))
    return person[keep], record[keep], buy_t[keep], campaign[keep]


def _campaign_effects(records: _Records, emails: _Events, responses, orders: _Orders, n_campaigns: int) -> np.ndarray:
    """One chunk's per-campaign counts (rows: ``_CAMPAIGN_TRUTH_COUNTS``): distinct persons e-mailed and responding
    (open or click by the end), and the paid purchases those responses caused with their revenue in CNY cents."""

    def distinct_persons(campaign: np.ndarray, person: np.ndarray) -> np.ndarray:
        pairs = np.unique(campaign.astype(np.int64) * (person.max(initial=0) + 1) + person)
        return np.bincount(pairs // (person.max(initial=0) + 1), minlength=n_campaigns)

    sent = emails.kind == _TYPE["email_sent"]
    responder, _, _, _, _, response_campaign = responses
    caused = (orders.campaign >= 0) & (orders.status == 0)
    cny_cents = orders.amount[caused] * np.array(list(FX_RATES.values()))[orders.currency[caused]]
    return np.stack([
        distinct_persons(emails.campaign[sent], records.person[emails.record[sent]]),
        distinct_persons(response_campaign, responder),
        np.bincount(orders.campaign[caused], minlength=n_campaigns),
        np.bincount(orders.campaign[caused], weights=cny_cents, minlength=n_campaigns).round().astype(np.int64),
    ])


@dataclass
class _Orders:
    person: np.ndarray
    record: np.ndarray
    t: np.ndarray
    status: np.ndarray  # 0 paid, 1 cancelled, 2 refunded
    currency: np.ndarray  # index into FX_RATES
    amount: np.ndarray  # cents in the order's currency
    updated: np.ndarray
    channel: np.ndarray
    rep: np.ndarray  # -1 if none
    number: np.ndarray
    campaign: np.ndarray  # e-mail campaign whose open / click caused the purchase, -1 for BG/NBD purchases
    line_order: np.ndarray  # per order line: index of its order
    line_number: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray  # cents in the order's currency
    discount: np.ndarray


def _make_orders(rng, persons: _Persons, records: _Records, repeats, campaign_buys, cal: _Calendar,
                 ref: _Reference, params: Params, counters: _Counters) -> _Orders:
    repeat_person, repeat_t = repeats
    buy_person, buy_record, buy_t, buy_campaign = campaign_buys
    person = np.concatenate([np.arange(persons.size), repeat_person, buy_person])
    caused_by = np.concatenate([np.full(persons.size + repeat_person.size, -1), buy_campaign])
    t = np.concatenate([persons.t0, repeat_t, buy_t])
    record = np.concatenate([np.arange(persons.size), records.for_events(rng, repeat_person, repeat_t), buy_record])

    # Cancelled and refunded orders are extra orders later the same day, so the purchase process stays BG/NBD.
    u = rng.random(t.size)
    extra = np.flatnonzero(u < params.cancelled_rate + params.refunded_rate)
    extra_t = np.minimum(t[extra] + rng.integers(60, 3 * HOUR, extra.size), (t[extra] // DAY + 1) * DAY - 1)
    status = np.concatenate([np.zeros(t.size, np.int8), np.where(u[extra] < params.cancelled_rate, 1, 2)])
    person, record = np.concatenate([person, person[extra]]), np.concatenate([record, record[extra]])
    t = np.concatenate([t, extra_t])
    caused_by = np.concatenate([caused_by, np.full(extra.size, -1)])  # a cancelled / refunded copy earns nothing
    order = np.argsort(t, kind="stable")
    person, record, t, status = person[order], record[order], t[order], status[order].astype(np.int8)
    n = t.size

    value = np.maximum(np.round(rng.gamma(params.p, 1 / persons.nu[person]) * 100), 100)
    currency = _choose(rng, [0.993, 0.004, 0.003], n)
    fx = np.array(list(FX_RATES.values()))[currency]
    amount = np.maximum(np.round(value / fx), 1).astype(np.int64)
    delay = np.select([status == 1, status == 2], [rng.integers(300, 2 * HOUR, n), rng.integers(HOUR, 48 * HOUR, n)],
                      rng.integers(0, 1800, n))
    channel = _choose(rng, _ORDER_CHANNEL_P, n)
    assisted = (channel >= 2) & (rng.random(n) < 0.7)  # store and phone orders credit a rep
    return _Orders(person=person, record=record, t=t, status=status, currency=currency, amount=amount,
                   updated=np.minimum(t + delay, cal.end_s - 1), channel=channel,
                   rep=np.where(assisted, rng.choice(ref.sales_reps, n), -1),
                   number=counters.take("order", n), campaign=caused_by[order],
                   **_order_lines(rng, amount, fx, ref))


def _order_lines(rng, amount: np.ndarray, fx: np.ndarray, ref: _Reference) -> dict[str, np.ndarray]:
    """1-5 lines per order whose qty x unit_price - discount add up to the order amount exactly.

    The amount is split at random over the lines; each line takes a product listed at or just above its share
    per unit (prices converted to the order's currency) and the difference is the line's discount.
    """
    n_lines = rng.choice(len(_LINE_COUNT_P), amount.size, p=_LINE_COUNT_P) + 1
    order = np.repeat(np.arange(amount.size), n_lines)
    weight = rng.gamma(2.0, size=order.size)
    share = np.floor(amount[order] * weight / np.bincount(order, weight)[order]).astype(np.int64)
    share[_group_starts(n_lines)] += amount - np.bincount(order, share, minlength=amount.size).astype(np.int64)
    quantity = rng.choice([1, 2, 3], order.size, p=[0.8, 0.15, 0.05])
    target_cny = share / quantity * fx[order]
    position = np.searchsorted(ref.product_price, target_cny) + rng.integers(0, 4, order.size)
    product = np.minimum(position, ref.product_price.size - 1)
    unit = np.maximum(np.round(ref.product_price[product] / fx[order]), 1).astype(np.int64)
    quantity = np.maximum(quantity, -(-share // unit))
    return {"line_order": order, "line_number": _group_rank(n_lines) + 1, "product": product,
            "quantity": quantity, "unit_price": unit, "discount": quantity * unit - share}


# --- exports: typed chunk data -> text columns and drop per row ---------------------------------------------


def _rows(columns: dict[str, pa.Array], index: np.ndarray) -> dict[str, pa.Array]:
    return {c: v.take(index) for c, v in columns.items()}


def _redelivery(rng, drop: np.ndarray, export_t: np.ndarray, cal: _Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Rows exported in the week before the snapshot or in a delta that a later delta sends again unchanged."""
    recent = (drop < N_DROPS - 1) & (export_t >= cal.bounds[0] - 7 * DAY)
    pick = np.flatnonzero(recent & (rng.random(drop.size) < _REDELIVERY_RATE))
    return pick, np.maximum(drop[pick] + 1, rng.integers(1, N_DROPS, pick.size)).astype(np.int8)


def _replace_rows(text: pa.Array, index: np.ndarray, values: pa.Array) -> pa.Array:
    mask = np.zeros(len(text), dtype=bool)
    mask[index] = True
    return pc.replace_with_mask(text, pa.array(mask), values)


def _files(writer: _DropWriter, entity: str, drop: np.ndarray) -> pa.Array:
    return _pick([writer.path(k, entity) for k in range(N_DROPS)], drop)


def _export_customers(rng, persons: _Persons, records: _Records, cal: _Calendar):
    """Snapshot versions of all records, new records and new versions in the deltas, a few re-deliveries."""
    n = records.person.size
    base_drop = cal.drop_of(records.t0)
    base_updated = records.t0.copy()
    edited = np.flatnonzero((base_drop == 0) & (rng.random(n) < 0.3))  # edited since signup, before the snapshot
    base_updated[edited] = _uniform_between(rng, records.t0[edited], np.full(edited.size, cal.bounds[0]))
    change_drop = rng.integers(1, N_DROPS, n).astype(np.int8)
    changed = np.flatnonzero((rng.random(n) < _CUSTOMER_CHANGE_RATE) & (records.t0 < cal.bounds[change_drop - 1]))
    change_t = cal.bounds[change_drop[changed] - 1] + rng.integers(8 * HOUR, 22 * HOUR, changed.size)
    record = np.concatenate([np.arange(n), changed])
    drop = np.concatenate([base_drop, change_drop[changed]])
    updated = np.concatenate([base_updated, change_t])
    change = np.concatenate([np.zeros(n, np.int8), np.where(rng.random(changed.size) < 0.6, 1, 2)])  # 1 moved
    order = np.argsort(records.number[record], kind="stable")  # rows by customer_id, like a CRM export
    record, drop, updated, change = record[order], drop[order], updated[order], change[order]
    columns = _customer_columns(rng, persons, records, record, drop, updated, change)
    yield "customers", columns, drop
    pick = np.flatnonzero((drop == 0) & (rng.random(drop.size) < _CUSTOMER_REDELIVERY_RATE))
    new_drop = np.where(rng.random(pick.size) < 0.5, 1, 3)  # not the GB18030 file, which renders differently
    yield "customers", _rows(columns, pick), new_drop


def _region_names(full: bool) -> list[str]:
    if not full:
        return [region for _, region, _, _ in _LOCATIONS]
    official = {"广西": "广西壮族自治区"}
    return [official.get(region, region + ("市" if region in _MUNICIPALITIES else "省")) if country == "CN"
            else region for _, region, country, _ in _LOCATIONS]


def _customer_columns(rng, persons: _Persons, records: _Records, record: np.ndarray, drop: np.ndarray,
                      updated: np.ndarray, change: np.ndarray) -> dict[str, pa.Array]:
    rows = record.size
    person = records.person[record]
    gb = drop == _GB_DROP  # Chinese Windows export: Chinese values and date formats
    gender_missing, city_missing, channel_missing = (
        rng.random((3, records.person.size)) < np.array([[0.06], [0.04], [0.03]]))[:, record]
    location = persons.location[person].copy()
    moved = np.flatnonzero(change == 1)
    weights = np.array([w for *_, w in _LOCATIONS])
    location[moved] = rng.choice(len(_LOCATIONS), moved.size, p=weights / weights.sum())
    country = np.array([["CN", "HK", "SG", "US"].index(c) for _, _, c, _ in _LOCATIONS])[location]
    cn_style = np.where(gb, 2, _choose(rng, [0.92, 0.04, 0.04], rows))
    consent = records.consent[record] ^ (change == 2)
    consent_style = np.where(gb, 3, _choose(rng, [0.85, 0.07, 0.08], rows))
    chinese_gender = gb | (rng.random(rows) < 0.05)
    birth = persons.birth_day[person]
    full_region = rng.random(rows) < 0.1
    return {
        "customer_id": records.ids.take(record),
        "name": records.name.take(record),
        "email": records.email.take(record),
        "phone": records.phone.take(record),
        "gender": _blank(_pick(["M", "F", "男", "女"], persons.female[person] + 2 * chinese_gender), gender_missing),
        "birth_date": _fmt_times(np.where(birth < NEVER, birth * DAY, NEVER),
                                 np.where(gb, 4, _choose(rng, _DATE_STYLE_P, rows))),
        "city": _blank(_pick([c for c, *_ in _LOCATIONS], location), city_missing),
        "region": _blank(_pick(_region_names(False) + _region_names(True), location + full_region * len(_LOCATIONS)),
                         city_missing),
        "country": _blank(_pick(["CN", "China", "中国", "HK", "SG", "US"], np.where(country == 0, cn_style, country + 2)),
                          rng.random(rows) < 0.01),
        "signup_date": _fmt_times(records.t0[record], np.where(gb, 4, _choose(rng, _DATETIME_STYLE_P, rows))),
        "acquisition_channel": _blank(_pick(_ACQUISITION_CHANNELS, records.channel[record]), channel_missing),
        "marketing_consent": _pick(["true", "false", "yes", "no", "1", "0", "是", "否"],
                                   consent_style * 2 + ~consent),
        "updated_at": _fmt_times(updated, np.where(gb, 1, _choose(rng, _DATETIME_STYLE_P, rows))),
    }


def _export_orders(rng, orders: _Orders, records: _Records, cal: _Calendar, counters: _Counters,
                   writer: _DropWriter, truth: _TruthWriter):
    """Order headers and lines (lines travel with their order), with late arrivals, re-deliveries, bad rows."""
    n = orders.t.size
    export_t = cal.arrival(rng, orders.updated)
    drop = cal.drop_of(export_t)
    synonym = rng.random(n) < np.array([0.04, 0.3, 0.3])[orders.status]
    cny, usd = orders.currency == 0, orders.currency == 1
    u = rng.random(n)
    order_id = _id("O", orders.number, 9)
    columns = {
        "order_id": order_id,
        "customer_id": records.ids.take(orders.record),
        "order_date": _fmt_times(orders.t, _choose(rng, _DATETIME_STYLE_P, n)),
        "status": _pick(["paid", "completed", "cancelled", "canceled", "refunded", "returned"],
                        orders.status * 2 + synonym),
        "amount": _fmt_amounts(orders.amount, np.where(cny, _choose(rng, _CNY_AMOUNT_STYLE_P, n), np.where(usd, 3, 0))),
        # An empty currency means the default (CNY) or whatever the amount's symbol says.
        "currency": _blank(_pick(list(FX_RATES), orders.currency), (cny & (u < 0.25)) | (usd & (u < 0.1))),
        "channel": _blank(_pick(_ORDER_CHANNELS, orders.channel), rng.random(n) < 0.02),
        "rep_id": _blank(_id("R", orders.rep + 1, 3), orders.rep < 0),
        "updated_at": _fmt_times(orders.updated, _choose(rng, _DATETIME_STYLE_P, n)),
    }
    pick, new_drop = _redelivery(rng, drop, export_t, cal)
    redelivered = np.zeros(n, dtype=bool)
    redelivered[pick] = True
    bad = np.flatnonzero((rng.random(n) < _BAD_DATE_RATE) & ~redelivered)
    columns["order_date"] = _replace_rows(columns["order_date"], bad,
                                          _pick(_BAD_DATES, rng.integers(0, len(_BAD_DATES), bad.size)))
    truth.planted("orders", _files(writer, "orders", drop[bad]), order_id.take(bad), "unparseable_date")
    yield "orders", columns, drop
    yield "orders", _rows(columns, pick), new_drop

    redelivered_to = np.full(n, -1, dtype=np.int8)
    redelivered_to[pick] = new_drop
    yield from _export_lines(rng, orders, order_id, drop, redelivered_to, counters, writer, truth)


def _export_lines(rng, orders: _Orders, order_id: pa.Array, order_drop: np.ndarray, redelivered_to: np.ndarray,
                  counters: _Counters, writer: _DropWriter, truth: _TruthWriter):
    of = orders.line_order
    m = of.size
    drop = order_drop[of]
    line_number = _s(orders.line_number)
    columns = {
        "order_id": order_id.take(of),
        "line_number": line_number,
        "product_id": _id("SKU", orders.product + 1, 5),
        "quantity": _s(orders.quantity),
        "unit_price": _fmt_amounts(orders.unit_price, np.where(rng.random(m) < 0.05, 1, 0)),
        "discount": _fmt_amounts(orders.discount, np.zeros(m, np.int8)),
        "updated_at": _fmt_times(orders.updated[of], _choose(rng, _DATETIME_STYLE_P, m)),
    }
    keys = _cat(columns["order_id"], "|", line_number)
    new_drop = redelivered_to[of]
    u = np.where(new_drop < 0, rng.random(m), 1.0)  # re-delivered lines stay clean: one file per planted row
    negative = np.flatnonzero(u < _NEGATIVE_QTY_RATE)
    text = np.flatnonzero((u >= _NEGATIVE_QTY_RATE) & (u < _NEGATIVE_QTY_RATE + _TEXT_QTY_RATE))
    columns["quantity"] = _replace_rows(columns["quantity"], negative, _cat("-", columns["quantity"].take(negative)))
    columns["quantity"] = _replace_rows(columns["quantity"], text,
                                        _pick(_BAD_QUANTITIES, rng.integers(0, len(_BAD_QUANTITIES), text.size)))
    truth.planted("order_items", _files(writer, "order_items", drop[negative]), keys.take(negative),
                  "negative_quantity")
    truth.planted("order_items", _files(writer, "order_items", drop[text]), keys.take(text), "non_numeric_quantity")

    source = rng.integers(0, m, rng.binomial(m, _ORPHAN_RATE))
    orphans = {c: v.take(source) for c, v in columns.items()}
    orphans["order_id"] = _id("O", 900_000_000 + counters.take("orphan_order", source.size), 9)
    orphans["line_number"] = pa.array(["1"] * source.size, pa.string())
    truth.planted("order_items", _files(writer, "order_items", drop[source]), _cat(orphans["order_id"], "|1"),
                  "orphan_order")
    pick = np.flatnonzero(new_drop >= 0)
    yield "order_items", columns, drop
    yield "order_items", _rows(columns, pick), new_drop[pick]
    yield "order_items", orphans, drop[source]


def _seasonal_events(rng, cal: _Calendar, lo: np.ndarray, hi: np.ndarray, rate: np.ndarray):
    """Poisson events at ``rate`` per day x seasonal multiplier in [lo, hi) per person: (person, time)."""
    c_lo = cal.season_cum(np.minimum(lo, cal.end_s))
    span = np.maximum(cal.season_cum(np.minimum(hi, cal.end_s)) - c_lo, 0.0)
    owner = np.repeat(np.arange(lo.size), rng.poisson(rate * span))
    t = cal.season_time(c_lo[owner] + rng.random(owner.size) * span[owner])
    return owner, np.maximum(t, lo[owner])


def _activity_events(rng, persons: _Persons, records: _Records, cal: _Calendar, ref: _Reference) -> _Events:
    """Web visits, calls, meetings and chats, at rates that change in the churn warning window and after."""
    segments = [  # healthy, warning, dropped out
        (persons.t0, np.minimum(persons.warn_t, cal.end_s)),
        (np.maximum(persons.t0, persons.warn_t), np.minimum(persons.drop_t, cal.end_s)),
        (np.maximum(persons.t0, persons.drop_t), np.full(persons.size, cal.end_s)),
    ]
    web_rate = 1.2 * persons.lam + 0.006  # frequent buyers browse more
    parts = []
    for state, (lo, hi) in enumerate(segments):
        person, t = _seasonal_events(rng, cal, lo, hi, web_rate * _WEB_STATE_FACTOR[state])
        parts.append(_Events.of("web_visit", records.for_events(rng, person, t), t))
        for kind, rates in _ACTIVITY_RATES.items():
            person, t = _seasonal_events(rng, cal, lo, hi, np.full(persons.size, rates[state]))
            if kind == "chat":
                rep = np.where(rng.random(t.size) < 0.7, rng.choice(ref.service_reps, t.size), -1)
            else:
                rep = rng.choice(ref.sales_reps, t.size)
            parts.append(_Events.of(kind, records.for_events(rng, person, t), t, rep=rep))
    return _Events.concat(parts)


def _export_interactions(rng, persons: _Persons, records: _Records, emails: _Events, cal: _Calendar,
                         ref: _Reference, counters: _Counters, writer: _DropWriter, truth: _TruthWriter):
    events = _Events.concat([emails, _activity_events(rng, persons, records, cal, ref)])
    order = np.argsort(events.t, kind="stable")
    kind, record, t, campaign, rep = (getattr(events, f)[order] for f in ("kind", "record", "t", "campaign", "rep"))
    n = t.size
    export_t = cal.arrival(rng, t)
    drop = cal.drop_of(export_t)
    columns = {
        "interaction_id": _id("I", counters.take("interaction", n), 10),
        "customer_id": records.ids.take(record),
        "interaction_type": _pick(_INTERACTION_TYPES, kind),
        "occurred_at": _fmt_times(t, _choose(rng, _DATETIME_STYLE_P, n)),
        "campaign_id": _blank(_id("CMP", campaign + 1, 3), campaign < 0),
        "rep_id": _blank(_id("R", rep + 1, 3), rep < 0),
    }
    pick, new_drop = _redelivery(rng, drop, export_t, cal)
    source = rng.integers(0, n, rng.binomial(n, _ORPHAN_RATE))
    orphans = {c: v.take(source) for c, v in columns.items()}
    orphans["interaction_id"] = _id("I", counters.take("interaction", source.size), 10)
    orphans["customer_id"] = _id("C", 90_000_000 + counters.take("orphan_customer", source.size), 8)
    truth.planted("interactions", _files(writer, "interactions", drop[source]), orphans["interaction_id"],
                  "orphan_customer")
    yield "interactions", columns, drop
    yield "interactions", _rows(columns, pick), new_drop
    yield "interactions", orphans, drop[source]


def _export_tickets(rng, persons: _Persons, records: _Records, cal: _Calendar, ref: _Reference,
                    counters: _Counters):
    """Routine tickets over the active life plus unresolved, low-CSAT ones in the churn warning window.

    A ticket is in the snapshot if opened by then, and in a delta when it was opened, answered or resolved that
    day; each row shows the ticket as of the end of its drop day.
    """
    n = persons.size
    routine_person, routine_t = _seasonal_events(rng, cal, persons.t0, np.minimum(persons.drop_t, cal.end_s),
                                                 np.full(n, 0.0006))
    unhappy = np.flatnonzero((persons.drop_t < NEVER) & (rng.random(n) < 0.35))
    lo, hi = np.maximum(persons.t0[unhappy], persons.warn_t[unhappy]), persons.drop_t[unhappy]
    unhappy, lo, hi = unhappy[hi > lo], lo[hi > lo], hi[hi > lo]
    person = np.concatenate([routine_person, unhappy])
    opened = np.concatenate([routine_t, _uniform_between(rng, lo, hi)])
    warning = np.concatenate([np.zeros(routine_t.size, bool), np.ones(unhappy.size, bool)])
    order = np.argsort(opened, kind="stable")
    person, opened, warning = person[order], opened[order], warning[order]
    m = opened.size

    responded = opened + (rng.gamma(2.0, 1.0, m) * np.where(warning, 15, 3) * HOUR).astype(np.int64)
    responded = np.where(rng.random(m) < np.where(warning, 0.2, 0.02), NEVER, responded)
    resolved = responded + (rng.gamma(2.0, 1.0, m) * np.where(warning, 48, 12) * HOUR).astype(np.int64)
    resolved = np.where((responded < NEVER) & (rng.random(m) < np.where(warning, 0.35, 0.95)), resolved, NEVER)
    csat = np.where(warning, _choose(rng, _CSAT_P["warning"], m), _choose(rng, _CSAT_P["routine"], m)) + 1
    csat[rng.random(m) < 0.2] = 0  # not rated
    ticket = {
        "id": _id("T", counters.take("ticket", m), 8), "customer": records.ids.take(
            records.for_events(rng, person, opened)),
        "category": _pick(_TICKET_CATEGORIES, _choose(rng, [0.3, 0.2, 0.15, 0.1, 0.1, 0.15], m)),
        "rep": _id("R", rng.choice(ref.service_reps, m) + 1, 3),
        "priority": _pick(_PRIORITIES, np.where(warning, _choose(rng, [0.1, 0.4, 0.5], m),
                                                _choose(rng, [0.3, 0.6, 0.1], m))),
    }
    index, drop, cutoff = [], [], []
    for k, end in enumerate(cal.bounds):
        start = cal.bounds[k - 1] if k else np.iinfo(np.int64).min
        touched = np.zeros(m, dtype=bool)
        for event in (opened, responded, resolved):
            touched |= (event >= start) & (event < end)
        index.append(np.flatnonzero(touched))
        drop.append(np.full(index[-1].size, k, np.int8))
        cutoff.append(np.full(index[-1].size, end))
    index, drop, cutoff = np.concatenate(index), np.concatenate(drop), np.concatenate(cutoff)
    answered, done = responded[index] < cutoff, resolved[index] < cutoff
    closed = done & (resolved[index] < cutoff - 3 * DAY)
    styles = _choose(rng, _DATETIME_STYLE_P, index.size)
    columns = {
        "ticket_id": ticket["id"].take(index),
        "customer_id": ticket["customer"].take(index),
        "opened_at": _fmt_times(opened[index], styles),
        "first_response_at": _fmt_times(np.where(answered, responded[index], NEVER), styles),
        "resolved_at": _fmt_times(np.where(done, resolved[index], NEVER), styles),
        "status": _pick(["open", "pending", "resolved", "closed"], answered.astype(int) + done + closed),
        "category": ticket["category"].take(index),
        "satisfaction": _blank(_s(csat[index]), ~answered | (csat[index] == 0)),
        "rep_id": ticket["rep"].take(index),
        "updated_at": _fmt_times(np.where(done, resolved[index], np.where(answered, responded[index], opened[index])),
                                 styles),
        "priority": ticket["priority"].take(index),
    }
    yield "tickets", columns, drop


def _export_surveys(rng, persons: _Persons, records: _Records, cal: _Calendar, counters: _Counters):
    """NPS answers from a quarter of the persons, lower in the churn warning window and after dropout."""
    n = persons.size
    first = persons.t0 + 3 * DAY
    count = np.where((rng.random(n) < 0.25) & (first < cal.end_s), 1 + rng.poisson(0.6, n), 0)
    person = np.repeat(np.arange(n), count)
    t = _uniform_between(rng, first[person], np.full(person.size, cal.end_s))
    order = np.argsort(t, kind="stable")
    person, t = person[order], t[order]
    cumulative = np.cumsum(_NPS_P, axis=1)
    nps = np.minimum((rng.random(t.size)[:, None] > cumulative[persons.state(person, t)]).sum(axis=1), 10)
    columns = {
        "survey_id": _id("S", counters.take("survey", t.size), 8),
        "customer_id": records.ids.take(records.for_events(rng, person, t)),
        "answered_at": _fmt_times(t, _choose(rng, _DATETIME_STYLE_P, t.size)),
        "nps": _s(nps),
    }
    yield "surveys", columns, cal.drop_of(t)


def _export_leads(rng, leads: _Leads, records: _Records, cal: _Calendar, counters: _Counters):
    """One row per stage change up to end_date; amount from 'qualified' on, customer_id on the won row."""
    steps = np.arange(leads.step_t.shape[1])
    lead, step = np.nonzero((steps[None, :] <= leads.last_step[:, None]) & (leads.step_t < cal.end_s))
    final = step == leads.last_step[lead]
    t = leads.step_t[lead, step]
    rows = t.size
    number = counters.take("lead", leads.created.size)
    customer = final & leads.won[lead] & (leads.person[lead] >= 0)
    qualified = step >= 2
    campaign = leads.campaign[lead]
    columns = {
        "opportunity_id": _id("OPP", number[lead], 7),
        "customer_id": _blank(records.ids.take(np.maximum(leads.person[lead], 0)), ~customer),
        "created_at": _fmt_times(leads.created[lead], _choose(rng, _DATETIME_STYLE_P, rows)),
        "source": _pick(_LEAD_SOURCES, leads.source[lead]),
        "campaign_id": _blank(_id("CMP", campaign + 1, 3), campaign < 0),
        "stage": _pick(_STAGES, np.where(final, np.where(leads.won[lead], 5, 6), step)),
        "stage_changed_at": _fmt_times(t, _choose(rng, _DATETIME_STYLE_P, rows)),
        "amount": _blank(_fmt_amounts(leads.value[lead], np.zeros(rows, np.int8)), ~qualified),
        "currency": _blank(pa.array(["CNY"] * rows, pa.string()), ~qualified),
        "owner_rep_id": _blank(_id("R", leads.rep[lead] + 1, 3), step < 1),
    }
    yield "opportunities", columns, cal.drop_of(t)


def _truth_table(persons: _Persons, records: _Records, campaign_buys, params: Params) -> pa.Table:
    person = records.person
    buyer, _, buy_t, _ = campaign_buys
    last_t = persons.last_t.copy()
    np.maximum.at(last_t, buyer, buy_t)
    dropped = persons.drop_t[person] < NEVER
    household = persons.household[person]
    table = pa.table({
        "customer_id": records.ids,
        "person_id": _id("P", persons.first + person + 1, 8),
        "is_primary": records.primary,
        "household_id": _blank(_id("P", household + 1, 8), household < 0),
        "signup_at": pa.array(records.t0, pa.timestamp("s")),
        "lambda_per_day": persons.lam[person],
        "p_dropout": persons.p_drop[person],
        "nu": persons.nu[person],
        "mean_spend": params.p / persons.nu[person],
        "n_purchases": persons.n_purchases[person],
        "n_campaign_purchases": np.bincount(buyer, minlength=persons.size)[person],
        "last_purchase_at": pa.array(last_t[person], pa.timestamp("s")),
        "dropout_date": pa.array((persons.drop_t[person] // DAY + 1).astype(np.int32), pa.date32(), mask=~dropped),
        "is_alive_at_end": ~dropped,
    }, schema=_TRUTH_SCHEMA)
    return table.take(np.argsort(records.number))
