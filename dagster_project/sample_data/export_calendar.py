"""The sample's calendar: the history window, the four drop dates, seasonality (weekday, yearly cycle, Chinese
shopping festivals, hour of day) as a cumulative intensity for simulating by time change, and when rows arrive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from dagster_project.sample_data.params import DAY, HOUR, LATE_RATE

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


def epoch_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


@dataclass(frozen=True)
class Calendar:
    """The window and its drops, with the seasonal clock the simulation runs on."""

    start: date
    drop_dates: tuple[date, ...]
    start_s: int
    end_s: int  # midnight after end_date: nothing happens at or after it
    bounds: np.ndarray  # exclusive end of each drop's period (epoch seconds)
    grid: np.ndarray  # hour boundaries of the window (epoch seconds)
    cum_season: np.ndarray  # integral of the seasonal multiplier (days) at each grid point
    cum_signup: np.ndarray  # integral of growth x seasonal multiplier, normalised to end at 1

    @classmethod
    def build(cls, end_date: date, days: int, growth: float) -> Calendar:
        start = end_date - timedelta(days=days - 1)
        drop_dates = tuple(end_date - timedelta(days=k) for k in (3, 2, 1, 0))
        start_s = epoch_day(start) * DAY
        hourly = np.repeat(_daily_multiplier(start, days), 24) * np.tile(_HOURLY / _HOURLY.mean(), days) / 24
        trend = np.exp(np.log(growth) * np.arange(days * 24) / (days * 24))
        cum_signup = np.concatenate([[0.0], np.cumsum(hourly * trend)])
        return cls(
            start=start, drop_dates=drop_dates, start_s=start_s, end_s=start_s + days * DAY,
            bounds=np.array([(epoch_day(d) + 1) * DAY for d in drop_dates], dtype=np.int64),
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
        late = rng.random(t.size) < LATE_RATE
        lag = np.where(late, rng.integers(1, 6, t.size) * DAY, 0)
        return np.minimum(t + lag, self.end_s - 1)


def _daily_multiplier(start: date, days: int) -> np.ndarray:
    """Seasonal purchase multiplier per day (weekday x yearly cycle x holidays), rescaled to mean 1."""
    day = np.arange(epoch_day(start), epoch_day(start) + days)
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
    festival = np.array([epoch_day(date(y, *_SPRING_FESTIVAL.get(int(y), _SPRING_FESTIVAL_APPROX)))
                         for y in year])
    to_festival = day - festival
    holiday[(to_festival >= -14) & (to_festival <= -2)] = 1.3  # new-year shopping
    holiday[(to_festival >= -1) & (to_festival <= 6)] = 0.6  # couriers on holiday
    m *= holiday
    return m / m.mean()


def seasonal_events(rng, cal: Calendar, lo: np.ndarray, hi: np.ndarray, rate: np.ndarray):
    """Poisson events at ``rate`` per day x seasonal multiplier in [lo, hi) per person: (person, time)."""
    c_lo = cal.season_cum(np.minimum(lo, cal.end_s))
    span = np.maximum(cal.season_cum(np.minimum(hi, cal.end_s)) - c_lo, 0.0)
    owner = np.repeat(np.arange(lo.size), rng.poisson(rate * span))
    t = cal.season_time(c_lo[owner] + rng.random(owner.size) * span[owner])
    return owner, np.maximum(t, lo[owner])
