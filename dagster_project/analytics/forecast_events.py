"""The calendar a forecast models: the configured country's public holidays (the `holidays` package) and its
shopping events, as one Prophet ``holidays`` frame (holiday, ds, lower_window, upper_window).

Shopping events are not public holidays but move sales as much: they belong to a market, so they come from a small
table per country (SHOPPING_EVENTS) and never from another country's calendar. A pre-sale period is modelled as one
effect shared by all its days ("618 pre-sale"), not one effect per day: two or three years of history cannot
estimate seventeen separate day effects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import holidays
import pandas as pd

HOLIDAY_COLUMNS = ["holiday", "ds", "lower_window", "upper_window"]


@dataclass(frozen=True)
class ShoppingEvent:
    """A yearly shopping day: a fixed date (``month``/``day``) or the ``nth`` ``weekday`` (0 = Monday) of ``month``,
    plus ``offset_days``. ``presale_days``: days of pre-sales right before it, one shared effect; ``after_days``:
    days after it with an effect of their own (Prophet's upper_window)."""

    name: str
    month: int
    day: int | None = None
    weekday: int | None = None
    nth: int = 1
    offset_days: int = 0
    presale_days: int = 0
    after_days: int = 0

    def date(self, year: int) -> pd.Timestamp:
        if self.day is not None:
            return pd.Timestamp(year, self.month, self.day) + pd.Timedelta(days=self.offset_days)
        first = pd.Timestamp(year, self.month, 1)
        first_weekday = first + pd.Timedelta(days=(self.weekday - first.weekday()) % 7)
        return first_weekday + pd.Timedelta(days=7 * (self.nth - 1) + self.offset_days)


THURSDAY = 3
_BLACK_FRIDAY = (ShoppingEvent("Black Friday", month=11, weekday=THURSDAY, nth=4, offset_days=1),  # after Thanksgiving
                 ShoppingEvent("Cyber Monday", month=11, weekday=THURSDAY, nth=4, offset_days=4))
# Per ISO country code. CN: JD's 618 (pre-sales from June 1) and Tmall's Singles' Day (pre-sales from November 1,
# late orders the day after).
SHOPPING_EVENTS: dict[str, tuple[ShoppingEvent, ...]] = {
    "CN": (ShoppingEvent("618", month=6, day=18, presale_days=17),
           ShoppingEvent("Singles' Day", month=11, day=11, presale_days=10, after_days=1)),
    "US": _BLACK_FRIDAY,
    "CA": _BLACK_FRIDAY,
    "GB": _BLACK_FRIDAY,
    "DE": _BLACK_FRIDAY,
}


def public_holidays(country: str, years: Iterable[int]) -> pd.DataFrame:
    """(holiday, ds) of the country's public holidays.

    The package names observed days and bridge days ("Day off (substituted from 01/28/2023)") individually, which
    would give Prophet a one-off column per year that never recurs in the forecast. Observed days keep their
    holiday's name and each bridge day takes the name of the nearest proper holiday (the Spring Festival week is
    all "Chinese New Year (Spring Festival)").
    """
    calendar = holidays.country_holidays(country, years=list(years), language="en_US")
    dates = pd.to_datetime(sorted(calendar))
    names = [calendar.get_list(d.date())[0].replace(" (observed)", "") for d in dates]
    frame = pd.DataFrame({"ds": dates, "holiday": names})
    proper = frame[~frame["holiday"].str.startswith("Day off")]
    if not proper.empty:
        frame = pd.merge_asof(frame[["ds"]], proper, on="ds", direction="nearest")
    return frame[["holiday", "ds"]]


def shopping_event_rows(events: Iterable[ShoppingEvent], years: Iterable[int]) -> pd.DataFrame:
    rows = []
    for year in years:
        for event in events:
            day = event.date(year)
            rows.append((event.name, day, 0, event.after_days))
            rows += [(f"{event.name} pre-sale", day - pd.Timedelta(days=k), 0, 0)
                     for k in range(1, event.presale_days + 1)]
    return pd.DataFrame(rows, columns=HOLIDAY_COLUMNS)


def holiday_frame(country: str | None, years: Iterable[int]) -> pd.DataFrame:
    """Prophet's ``holidays`` frame for ``country`` (None: empty): its public holidays and shopping events."""
    years = list(years)
    if country is None:
        return pd.DataFrame({"holiday": pd.Series(dtype="str"), "ds": pd.Series(dtype="datetime64[ns]"),
                             "lower_window": pd.Series(dtype="int64"), "upper_window": pd.Series(dtype="int64")})
    public = public_holidays(country, years).assign(lower_window=0, upper_window=0)
    events = shopping_event_rows(SHOPPING_EVENTS.get(country.upper(), ()), years)
    frame = pd.concat([public, events], ignore_index=True)
    return frame.astype({"lower_window": "int64", "upper_window": "int64"}).sort_values("ds", ignore_index=True)
