"""How a file writes its dates and decimals, decided once per column by evidence over the whole column.

A value such as ``03/01/19`` means nothing alone: 3 January or 1 March, 2019 or 1919, or even 19 January 2003
(Korean and Japanese exports write the year first). The file's other values decide: a first field above 12 rules out
month-first, a second field above 12 day-first; a year-first reading (two-digit first and last fields only) is ruled
out by a field that cannot be its month or day, or by a date it would put after the drop. A column where more than
one reading fits every value takes the mapping file's ``date_format``; without one its undecidable rows are
quarantined as "ambiguous date order" (never guessed). The decision, with the values that decided it, is logged per
file.

Dates that dbt reads as they are (ISO ``2025-08-27``, ``2025/8/27``, ``2025年8月27日``, with or without a time) stay
as delivered; the others are rewritten to ISO text in the raw table, inside the file's load transaction:

| written as | read as |
|---|---|
| ``D/M/YYYY``, ``M/D/YYYY`` (also ``-`` or ``.``), with ``H:MM[:SS]`` and AM/PM | by the column's evidence |
| two-digit years ``D/M/YY``, ``M/D/YY``, ``YY/M/D`` | by the column's evidence; the year in the 100 years ending 20 years after the drop's year |
| ISO dates with a 12-hour time (``2024-03-05 2:05 PM``, ``2024/3/5 下午 02:05:10``) | the 24-hour time |
| ``YYYYMMDD`` | year, month, day |
| ``YYYY.MM.DD`` | year, month, day |
| a number 20000–80000 (Excel's serial day, with a fraction for the time) | days since 1899-12-30 |
| an English month name and a four-digit year (``Mar 1, 2024 9:12:45 AM``, ``1 March 2024``, ``01-Mar-2024``) | as named |
| a time with a zone (``Z``, ``-0800``, ``+01:00``, ``America/New_York``), when the mapping names a ``timezone`` | the time there |

Amount and number columns of a file that writes decimal commas (``1.234,50``, ``12,5``) are rewritten with a decimal
point, so ``12,5`` is never read as 125; a file whose values cannot tell its decimal mark stops (``decimal_mark``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import duckdb

from dagster_project.ingest.mapping import EntityMapping
from dagster_project.sql import identifier, literal

# A year written with two digits is read in the 100 years that end this many years after the drop's year.
TWO_DIGIT_YEAR_LOOKAHEAD = 20
EXCEL_SERIAL_RANGE = (20000, 80000)  # 1954-10-03 .. 2119-01-08

_TIME = r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*([AaPp][Mm])?)?"
_DAY_MONTH = r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})"
# The same patterns as Python sees them (to classify distinct date parts) and as DuckDB applies them (to rewrite).
DAY_MONTH_VALUE = "^" + _DAY_MONTH + _TIME + "$"
COMPACT_VALUE = r"^(\d{4})(\d{2})(\d{2})" + _TIME + "$"
DOTTED_YMD_VALUE = r"^(\d{4})\.(\d{1,2})\.(\d{1,2})" + _TIME + "$"
SERIAL_VALUE = r"^\d{5}(\.\d+)?$"
# A Chinese 12-hour time, 上午 (a.m.) or 下午 (p.m.) before the clock time, as Excel writes dates in zh-CN.
NATIVE_CN_MERIDIEM_VALUE = r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*(上午|下午)\s*(\d{1,2}):(\d{2})(?::(\d{2}))?$"
# An ISO-like date with a 12-hour time: DuckDB's cast would read the time and drop the AM/PM.
NATIVE_MERIDIEM_VALUE = (r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*"
                         r"([AaPp][Mm])$")
NATIVE_PART = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}$|^\d{4}年\d{1,2}月\d{1,2}日?$")
# Dates naming their month in English (Magento's and many US reports' "Mar 1, 2024 9:12:45 AM", "1 March 2024",
# Oracle's and Excel's "01-Mar-2024"): the name says which field is the month, so no evidence is needed. Four-digit
# years only: a two-digit one would take DuckDB's century, not the drop's window (such values stay unparseable).
MONTH_NAME_FORMATS = tuple(
    f"{day} {time}".strip()
    for day in ("%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d-%B-%Y")
    for time in ("%I:%M:%S %p", "%I:%M %p", "%H:%M:%S", "%H:%M", ""))
# Three letters in a row (no other family writes them), then a four-digit year.
MONTH_NAME_VALUE = r"^.*[A-Za-z]{3}.*\d{4}.*$"
# A time followed by its time zone: Z, a UTC offset (+01:00, -0800, +05), UTC, GMT or an IANA name (America/New_York).
# Abbreviations such as CST are not read as zones: CST is China's and the central United States'.
ZONE_VALUE = r"^.*\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(Z|[+-]\d\d(?::?\d\d)?|UTC|GMT|[A-Za-z]+/[A-Za-z_]+(?:/[A-Za-z_]+)?)$"


@dataclass(frozen=True)
class DateReading:
    """How one date column of one file is read."""

    column: str
    format: str  # e.g. "DD/MM/YY", "ISO", "mapping %d/%m/%Y", "ambiguous"
    evidence: str | None  # the value that decided it, when one had to (None for personal columns)
    expression: str | None  # SQL giving ISO text from the column, None when dbt reads the values as they are
    ambiguous: str | None = None  # SQL condition of the rows to quarantine as "ambiguous date order"
    undecided: str = "day/month order"  # what an ambiguous column's values do not decide, for its rows' detail
    unfit: str | None = None  # SQL condition of the rows whose value the mapping's date_format does not fit
    # The UTC offsets (minutes) of the values written with a time zone, by zone as written (None: a zone DuckDB does
    # not know); empty when no value names one.
    zones: dict[str, tuple[int | None, ...]] = field(default_factory=dict)

    def describe(self) -> str:
        because = f" (decided by {self.evidence!r})" if self.evidence else ""
        return f"{self.column} read as {self.format}{because}"


@dataclass
class Interpretation:
    dates: list[DateReading] = field(default_factory=list)
    decimal: str = "."

    def log_json(self) -> str:
        return json.dumps({r.column: {"format": r.format, "evidence": r.evidence} for r in self.dates},
                          ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------- dates


def classify(part: str) -> str:
    """The family of a date part: native, day_month, compact, dotted_ymd, serial or unknown."""
    if NATIVE_PART.match(part):
        return "native"
    if re.match(r"^" + _DAY_MONTH + "$", part):
        return "day_month"
    if re.fullmatch(r"\d{8}", part):
        y, m, d = int(part[:4]), int(part[4:6]), int(part[6:])
        return "compact" if 1800 <= y <= 2200 and 1 <= m <= 12 and 1 <= d <= 31 else "unknown"
    if re.fullmatch(r"\d{4}\.\d{1,2}\.\d{1,2}", part):
        return "dotted_ymd"
    if re.fullmatch(SERIAL_VALUE.strip("^$"), part):
        return "serial" if EXCEL_SERIAL_RANGE[0] <= float(part) <= EXCEL_SERIAL_RANGE[1] else "unknown"
    return "unknown"


def decide_day_month(parts: Counter, drop_date: date | None = None) -> tuple[str | None, str | None]:
    """Which field of the column's day_month parts comes first: 'day' (D/M/Y), 'month' (M/D/Y) or 'year' (YY/M/D),
    and the values that decided it; (None, None) when no value decides, ('mixed', examples) when values decide both
    day-first and month-first.

    The year-first reading is weighed only when every part's first and last fields have two digits and it fits every
    part (a month field up to 12, a day field up to 31). Then it is the reading when some first field is above 31 (no
    day or month); otherwise the day- or month-first reading the values decided stands only if the year-first one
    would put a date after the drop (`drop_date`) and it would not. Anything else is undecided: exports that write the
    year first are the rarer ones, and reading them day-first is a silent misread."""
    day_first = month_first = beyond_day = year_first_out = None
    year_first_possible = True
    for part in sorted(parts):
        if classify(part) != "day_month":
            continue
        first, middle, last = re.split(r"[-/.]", part)
        a, b, c = int(first), int(middle), int(last)
        if a > 12 and b <= 12:
            day_first = day_first or part
        elif b > 12 and a <= 12:
            month_first = month_first or part
        beyond_day = beyond_day or (part if a > 31 else None)
        if len(first) != 2 or len(last) != 2:
            year_first_possible = False
        elif b > 12 or not 1 <= c <= 31:
            year_first_out = year_first_out or part
    if day_first and month_first:
        return "mixed", f"{day_first}, {month_first}"
    order, evidence = ("day", day_first) if day_first else ("month", month_first) if month_first else (None, None)
    if not year_first_possible or year_first_out:  # the year comes last
        return order, evidence
    if beyond_day:
        return "year", beyond_day
    if order is not None and drop_date is not None:
        late = [p for p in sorted(parts)
                if classify(p) == "day_month" and _named_date(p, "year", drop_date) > drop_date]
        if late and all(_named_date(p, order, drop_date) <= drop_date for p in parts if classify(p) == "day_month"):
            return order, f"{evidence}, {late[0]}"
    return None, None


def _named_date(part: str, order: str, drop_date: date) -> date:
    """The date a day_month part names when its `order` field comes first (a day past the month's end counts as the
    month's last day, an impossible month as its nearest)."""
    a, b, c = (int(field) for field in re.split(r"[-/.]", part))
    year, month, day = {"day": (c, b, a), "month": (c, a, b), "year": (a, b, c)}[order]
    year = _full_year(year, drop_date) if year < 100 else year
    month = min(max(month, 1), 12)
    last = (date(year + (month == 12), month % 12 + 1, 1) - date(year, month, 1)).days
    return date(year, month, min(max(day, 1), last))


def _full_year(two_digits: int, drop_date: date) -> int:
    """A two-digit year in the 100 years ending TWO_DIGIT_YEAR_LOOKAHEAD years after the drop's year (as _iso)."""
    window_end = drop_date.year + TWO_DIGIT_YEAR_LOOKAHEAD
    return window_end - ((window_end - two_digits) % 100)


def read_date_column(column: str, parts: Counter, mapping: EntityMapping, drop_date: date,
                     personal: bool, meridiem: bool = False, month_names: bool = False,
                     zones: dict[str, tuple[int | None, ...]] | None = None) -> DateReading:
    """Decide how a date column is read from the distinct date parts of its values (with their counts); `meridiem`:
    some ISO value may have a 12-hour time (AM/PM, 上午/下午): those that do are rewritten to the 24-hour time;
    `month_names`: some value names its month in English (MONTH_NAME_FORMATS); `zones`: the time zones values name
    (zone_offsets), converted to the mapping's timezone when it has one (whether they may be kept as written when it
    has none is the file's decision: file_load)."""
    value = f"trim({identifier(column)})"
    fmt = mapping.date_format_of(column)
    if fmt:
        parsed = f"strftime(try_strptime({value}, {literal(fmt)}), '%Y-%m-%d %H:%M:%S')"
        # A value the user's format does not fit is quarantined, never read some other way nor dropped.
        return DateReading(column, f"mapping {fmt}", None, parsed, unfit=f"({parsed}) is null")
    families = Counter()
    for part, count in parts.items():
        families[classify(part)] += count
    expressions: list[tuple[str, str]] = []  # (pattern, ISO expression)
    evidence: str | None = None
    formats: list[str] = []
    zones = zones or {}
    if zones and mapping.timezone:  # first: such a value is converted whatever else its date part is
        expressions.append((ZONE_VALUE, f"strftime(timezone({literal(mapping.timezone)}, {_instant(value)}), "
                                         "'%Y-%m-%d %H:%M:%S')"))
    ambiguous = None
    undecided = "day/month order"
    if families["day_month"]:
        order, evidence = decide_day_month(parts, drop_date)
        two_digit = any(len(re.split(r"[-/.]", p)[2]) == 2 for p in parts if classify(p) == "day_month")
        year_text = "YY" if two_digit else "YYYY"
        if order in ("day", "month", "year"):
            year, month, day = {"day": (3, 2, 1), "month": (3, 1, 2), "year": (1, 2, 3)}[order]
            expressions.append((DAY_MONTH_VALUE, _iso(value, DAY_MONTH_VALUE, year=year, month=month, day=day,
                                                      time_from=4, drop_date=drop_date)))
            formats.append({"day": "DD/MM/", "month": "MM/DD/", "year": "YY/MM/DD"}[order]
                           + (year_text if order != "year" else ""))
        else:
            ambiguous = f"regexp_full_match({value}, {literal(DAY_MONTH_VALUE)})"
            formats.append("ambiguous date order" + (" (day-first and month-first values)" if order else ""))
            if two_digit:
                undecided = "the order of day, month and two-digit year"
    if families["compact"]:
        expressions.append((COMPACT_VALUE, _iso(value, COMPACT_VALUE, 1, 2, 3, 4, drop_date)))
        formats.append("YYYYMMDD")
    if families["dotted_ymd"]:
        expressions.append((DOTTED_YMD_VALUE, _iso(value, DOTTED_YMD_VALUE, 1, 2, 3, 4, drop_date)))
        formats.append("YYYY.MM.DD")
    if families["serial"]:
        # Rounded to the second: Excel stores 14:00 as 0.5833333..., a hair below.
        expressions.append((SERIAL_VALUE, "strftime(timestamp '1899-12-30' + to_seconds(cast(round(cast("
                            f"{value} as double) * 86400) as bigint)), '%Y-%m-%d %H:%M:%S')"))
        formats.append("Excel serial days")
    if month_names:
        expressions.append((MONTH_NAME_VALUE, f"strftime(try_strptime({value}, {month_name_formats()}), "
                                              "'%Y-%m-%d %H:%M:%S')"))
        formats.append("English month names")
    if meridiem:
        expressions.append((NATIVE_MERIDIEM_VALUE, _iso(value, NATIVE_MERIDIEM_VALUE, 1, 2, 3, 4, drop_date)))
        expressions.append((NATIVE_CN_MERIDIEM_VALUE, _iso(value, NATIVE_CN_MERIDIEM_VALUE, 1, 2, 3, 5, drop_date,
                                                           meridiem_group=4)))
        formats.append("ISO with AM/PM")
    if (families["native"] and not meridiem) or not formats:
        formats.insert(0, "ISO")
    if zones and mapping.timezone:
        formats.append(f"time zones converted to {mapping.timezone}")
    expression = None
    if expressions:
        cases = " ".join(f"when regexp_full_match({value}, {literal(p)}) then {e}" for p, e in expressions)
        expression = f"case {cases} end"
    return DateReading(column, " + ".join(formats), None if personal else evidence, expression, ambiguous,
                       undecided=undecided, zones=zones)


def month_name_formats() -> str:
    """SQL: MONTH_NAME_FORMATS as a list DuckDB's strptime tries in turn."""
    return "[" + ", ".join(literal(f) for f in MONTH_NAME_FORMATS) + "]"


def _iso(value: str, pattern: str, year: int, month: int, day: int, time_from: int, drop_date: date,
         meridiem_group: int | None = None) -> str:
    """SQL: the ISO timestamp text of a value matching `pattern`, from its numbered groups: hour, minute and second
    from `time_from` on, then AM/PM (or at `meridiem_group`, AM/PM or 上午/下午)."""
    def group(i: int) -> str:
        return f"regexp_extract({value}, {literal(pattern)}, {i})"

    def number(i: int, default: str = "0") -> str:
        return f"coalesce(try_cast(nullif({group(i)}, '') as integer), {default})"

    window_end = drop_date.year + TWO_DIGIT_YEAR_LOOKAHEAD  # as _full_year
    y = f"(case when length({group(year)}) = 2 then {window_end} - (({window_end} - {number(year)}) % 100) " \
        f"else {number(year)} end)"
    hour = number(time_from)
    ampm = f"lower({group(meridiem_group or time_from + 3)})"
    hour = (f"(case when {ampm} in ('pm', '下午') then {hour} % 12 + 12 when {ampm} in ('am', '上午') then {hour} % 12 "
            f"else {hour} end)")
    return (f"printf('%04d-%02d-%02d %02d:%02d:%02d', {y}, {number(month)}, {number(day)}, {hour}, "
            f"{number(time_from + 1)}, {number(time_from + 2)})")


def read_dates(con: duckdb.DuckDBPyConnection, table: str, source_file: str, columns: list[tuple[str, bool]],
               mapping: EntityMapping, drop_date: date) -> list[DateReading]:
    """How each (date column, is personal) of the file's rows in `table` is read."""
    readings = []
    for column, personal in columns:
        rows = con.execute(
            f"select regexp_extract(trim({identifier(column)}), '^[^\\sT]+') as part, count(*), "
            # Whether a value may carry a 12-hour time: a cheap test on every row; the rewrite matches exactly.
            f"bool_or(trim({identifier(column)}) ilike '%m' or contains({identifier(column)}, '午')), "
            # A value of each part, to try month names on (one query over a few values, not a scan of the file).
            f"any_value(trim({identifier(column)})), "
            # Whether a value may name a time zone: a cheaper test than ZONE_VALUE's on every row.
            f"bool_or({_may_name_zone(f'trim({identifier(column)})')}) from {table} "
            f"where _source_file = $f and {identifier(column)} is not null group by 1",
            {"f": source_file},
        ).fetchall()
        parts = Counter({part: count for part, count, *_ in rows})
        family = {part: classify(part) for part in parts}
        unknown = [value for part, _, _, value, _ in rows if family[part] == "unknown"]
        zoned = any(may_name_zone for *_, may_name_zone in rows)
        readings.append(read_date_column(column, parts, mapping, drop_date, personal,
                                         meridiem=any(twelve_hour for part, _, twelve_hour, _, _ in rows
                                                      if family[part] == "native"),
                                         month_names=bool(unknown) and _name_months(con, unknown),
                                         zones=zone_offsets(con, table, source_file, column) if zoned else None))
    return readings


def _may_name_zone(value: str) -> str:
    """SQL: false when the value cannot match ZONE_VALUE (no '+', no '-' after an ISO date's first 11 characters, no
    letter at the end)."""
    return f"(contains({value}, '+') or contains(substr({value}, 12), '-') or right({value}, 1) >= 'A')"


def zone_offsets(con: duckdb.DuckDBPyConnection, table: str, source_file: str,
                 column: str) -> dict[str, tuple[int | None, ...]]:
    """The time zones the column's values name, as written (Z, -0800, America/New_York), each with the UTC offsets
    (minutes) its values have: an IANA zone has two where it keeps summer time; None for a zone DuckDB does not know
    or a value it cannot read."""
    value = f"trim({identifier(column)})"
    rows = con.execute(
        f"select regexp_extract({value}, {literal(ZONE_VALUE)}, 1) as zone, "
        f"list(distinct date_diff('minute', timezone('UTC', {_instant(value)}), try_cast({value} as timestamp))) "
        f"from {table} where _source_file = $f and {identifier(column)} is not null "
        f"and {_may_name_zone(value)} and regexp_full_match({value}, {literal(ZONE_VALUE)}) group by 1",
        {"f": source_file}).fetchall()
    return {zone: tuple(sorted(offsets, key=lambda o: (o is None, o))) for zone, offsets in sorted(rows)}


def _instant(value: str) -> str:
    """SQL: the instant a value with a time zone names. DuckDB reads the zone when casting to TIMESTAMPTZ, but not
    after a space before a numeric offset; its cast to TIMESTAMP, as dbt reads dates, drops the zone."""
    return f"try_cast(regexp_replace({value}, '\\s+([+-]\\d\\d(:?\\d\\d)?)$', '\\1') as timestamptz)"


def _name_months(con: duckdb.DuckDBPyConnection, values: list[str]) -> bool:
    """Whether one of the values reads with an English month name (MONTH_NAME_FORMATS)."""
    return con.execute(
        f"select coalesce(bool_or(regexp_full_match(v, {literal(MONTH_NAME_VALUE)}) "
        f"and try_strptime(v, {month_name_formats()}) is not null), false) from unnest($values) as t(v)",
        {"values": values}).fetchone()[0]


# ---------------------------------------------------------------------------------------------------- decimals

# The last separator of a number followed by 1-2 or 4+ digits is its decimal mark; followed by exactly 3 digits it may
# as well group thousands (12.800 is 12.8 in one country and 12,800 in another).
# A leading 0 groups nothing: 0.125 is a decimal whatever follows.
_COMMA_DECIMAL = r",(\d{1,2}|\d{4,})\D*$|^\D*0,\d+\D*$"
_POINT_DECIMAL = r"\.(\d{1,2}|\d{4,})\D*$|^\D*0\.\d+\D*$"
_POINT_GROUPS = r"^\D*[1-9]\d{0,2}(\.\d{3})+\D*$"
_COMMA_GROUPS = r"^\D*[1-9]\d{0,2}(,\d{3})+\D*$"


class AmbiguousDecimal(ValueError):
    """The file's numbers do not tell whether their decimal mark is a point or a comma."""


def decimal_mark(con: duckdb.DuckDBPyConnection, table: str, source_file: str, columns: list[str],
                 delimiter: str | None, mapping: EntityMapping) -> str:
    """The file's decimal mark, from every value of its amount and number columns.

    A value with 1-2 (or 4 and more) digits after its last point or comma decides; values that only group digits by
    three decide by the delimiter (1,299 in a comma-separated file is 1299 as in the US; 12.800 in a
    semicolon-separated one is 12800 as in Germany) and are ambiguous elsewhere. Raises AmbiguousDecimal when the
    values contradict each other or cannot decide: the mapping file's `decimal` then says."""
    if mapping.decimal:
        return mapping.decimal
    if not columns:
        return "."
    patterns = (_COMMA_DECIMAL, _POINT_DECIMAL, _POINT_GROUPS, _COMMA_GROUPS)
    # A cheap test of the separator first: most values hold none, and a regular expression costs ten times more.
    separator = {_COMMA_DECIMAL: ",", _POINT_DECIMAL: ".", _POINT_GROUPS: ".", _COMMA_GROUPS: ","}

    def matching(c: str, pattern: str) -> str:
        return f"contains({identifier(c)}, '{separator[pattern]}') and regexp_matches({identifier(c)}, '{pattern}')"

    def any_value(pattern: str) -> bool:
        """Whether some value matches: the scan stops at the first one found."""
        return con.execute(f"select exists (select 1 from {table} where _source_file = $f and "
                           f"({' or '.join(matching(c, pattern) for c in columns)}))", {"f": source_file}).fetchone()[0]

    # The common case, no decimal comma and a decimal point, without a regular expression on every value: the comma
    # test rejects most values before their regular expression, and the first decimal point ends its scan (a decimal
    # comma, found first, ends the comma scan). Whatever else the file holds is decided from the counts below, as it
    # always was.
    if not any_value(_COMMA_DECIMAL) and any_value(_POINT_DECIMAL):
        return "."
    counts = ", ".join(
        f"count(*) filter (where {matching(c, pattern)}), min({identifier(c)}) filter (where {matching(c, pattern)})"
        for pattern in patterns for c in columns
    )
    row = con.execute(f"select {counts} from {table} where _source_file = $f", {"f": source_file}).fetchone()
    found: dict[str, tuple[int, str | None]] = {}
    for k, pattern in enumerate(patterns):
        cells = row[2 * k * len(columns): 2 * (k + 1) * len(columns)]
        found[pattern] = (sum(cells[0::2]), next((v for v in cells[1::2] if v is not None), None))
    (comma, comma_example), (point, point_example) = found[_COMMA_DECIMAL], found[_POINT_DECIMAL]
    (point_groups, point_groups_example), (comma_groups, comma_groups_example) = (
        found[_POINT_GROUPS], found[_COMMA_GROUPS])
    if comma and point:
        raise AmbiguousDecimal(f"its numbers mix decimal commas ({comma_example!r}) and decimal points "
                               f"({point_example!r})")
    if comma:
        return ","
    if point:
        return "."
    if point_groups and comma_groups:
        raise AmbiguousDecimal(f"its numbers group digits with points ({point_groups_example!r}) and commas "
                               f"({comma_groups_example!r})")
    if point_groups:
        if delimiter == ";":
            return ","
        raise AmbiguousDecimal(f"{point_groups_example!r} may be a decimal or thousands; no value of the file decides")
    if comma_groups:
        if delimiter in (",", None):
            return "."
        raise AmbiguousDecimal(f"{comma_groups_example!r} may be a decimal or thousands; no value of the file decides")
    return "."


def comma_decimal_expression(column: str) -> str:
    """SQL: a decimal-comma number rewritten with a decimal point ('1.234,50' -> '1234.50')."""
    return f"replace(replace({identifier(column)}, '.', ''), ',', '.')"
