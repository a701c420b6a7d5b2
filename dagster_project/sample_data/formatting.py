"""Messy formatting: dates, amounts and phone numbers rendered as text in a per-row mix of styles, as real CRM exports
mix them, with the shares of each style. Day and clock strings are tabulated once so rows are formatted by lookup."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.sample_data.export_calendar import epoch_day
from dagster_project.sample_data.params import DAY, NEVER
from dagster_project.sample_data.vectorised import assemble, blank, int_text, join_text

# Date styles: 0 "2025-08-27 14:05:00", 1 "2025/8/27 14:05", 2 "2025-08-27", 3 "2025/8/27", 4 "2025年8月27日".
DATETIME_STYLE_P = [0.9, 0.04, 0.03, 0.015, 0.015]
DATE_STYLE_P = [0.0, 0.0, 0.88, 0.07, 0.05]
# Amount styles: 0 "1234.50", 1 "1,234.50", 2 "¥1234.5", 3 "$1234.50".
CNY_AMOUNT_STYLE_P = [0.85, 0.08, 0.07, 0.0]

_TABLE_FIRST_DAY = epoch_day(date(1900, 1, 1))
_TABLE_DAYS = epoch_day(date(2100, 1, 1)) - _TABLE_FIRST_DAY


@lru_cache(maxsize=None)
def _day_strings(style: int) -> pa.Array:
    """Every day 1900-2099 rendered in one style; rows are then formatted with a take()."""
    d64 = np.arange(_TABLE_FIRST_DAY, _TABLE_FIRST_DAY + _TABLE_DAYS).astype("datetime64[D]")
    year = int_text(d64.astype("datetime64[Y]").astype(int) + 1970)
    month = int_text(d64.astype("datetime64[M]").astype(int) % 12 + 1)
    day = int_text((d64 - d64.astype("datetime64[M]")).astype(int) + 1)
    if style in (0, 2):
        return join_text(year, "-", pc.utf8_lpad(month, 2, "0"), "-", pc.utf8_lpad(day, 2, "0"))
    if style in (1, 3):
        return join_text(year, "/", month, "/", day)
    return join_text(year, "年", month, "月", day, "日")


@lru_cache(maxsize=None)
def _clock_strings(with_seconds: bool) -> pa.Array:
    """"HH:MM:SS" for every second of a day, or "HH:MM" for every minute."""
    t = np.arange(0, DAY, 1 if with_seconds else 60)
    parts = [pc.utf8_lpad(int_text(v), 2, "0") for v in (t // 3600, t // 60 % 60, t % 60)]
    return pc.binary_join_element_wise(*(parts if with_seconds else parts[:2]), ":")


def format_times(secs: np.ndarray, styles: np.ndarray) -> pa.Array:
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
    return assemble(secs.size, parts)


def plain_amount(cents: np.ndarray) -> pa.Array:
    """Non-negative cents as "1234.50"."""
    return pc.binary_join_element_wise(int_text(cents // 100), pc.utf8_lpad(int_text(cents % 100), 2, "0"), ".")


def _thousands(units: np.ndarray) -> pa.Array:
    text = int_text(units % 1000)
    level = units // 1000
    text = pc.if_else(pa.array(level > 0), pc.utf8_lpad(text, 3, "0"), text)
    while (level > 0).any():
        higher = level // 1000
        group = pc.if_else(pa.array(higher > 0), pc.utf8_lpad(int_text(level % 1000), 3, "0"), int_text(level % 1000))
        text = pc.if_else(pa.array(level > 0), pc.binary_join_element_wise(group, text, ","), text)
        level = higher
    return text


def format_amounts(cents: np.ndarray, styles: np.ndarray) -> pa.Array:
    """Non-negative cents to text: 0 "1234.50", 1 "1,234.50", 2 "¥1234.5", 3 "$1234.50"."""
    cents = np.asarray(cents, dtype=np.int64)
    parts = []
    for style in np.unique(styles):
        index = np.flatnonzero(styles == style)
        plain = plain_amount(cents[index])
        if style == 1:
            frac = pc.utf8_lpad(int_text(cents[index] % 100), 2, "0")
            text = pc.binary_join_element_wise(_thousands(cents[index] // 100), frac, ".")
        elif style == 2:
            text = join_text("¥", pc.utf8_rtrim(pc.utf8_rtrim(plain, characters="0"), characters="."))
        elif style == 3:
            text = join_text("$", plain)
        else:
            text = plain
        parts.append((index, text))
    return assemble(cents.size, parts)


def format_phones(digits: np.ndarray, styles: np.ndarray) -> pa.Array:
    """11-digit mobiles (0 = missing) as 0 "13800138000", 1 "+86 138 0013 8000", 2 "138-0013-8000", 3 "0086 ..."."""
    text = int_text(digits)
    head, mid, tail = (pc.utf8_slice_codeunits(text, a, b) for a, b in ((0, 3), (3, 7), (7, 11)))
    variants = [text, join_text("+86 ", head, " ", mid, " ", tail), join_text(head, "-", mid, "-", tail),
                join_text("0086 ", text)]
    parts = [(np.flatnonzero(styles == s), variants[s].take(np.flatnonzero(styles == s))) for s in range(4)]
    return blank(assemble(digits.size, parts), digits == 0)
