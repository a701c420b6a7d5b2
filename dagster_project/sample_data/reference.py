"""Reference data shared by all chunks: products (priced and named per category), sales and service reps, and
campaigns (channel, dates, cost, e-mail send time), with their export rows; plus Chinese names for reps and
customers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.sample_data.catalogue import (
    CAMPAIGN_CHANNEL_P, CAMPAIGN_CHANNELS, CAMPAIGN_COST, CAMPAIGN_LABEL, CATEGORIES, GIVEN_NAMES, MONTH_THEME,
    PRODUCTS_PER_CATEGORY, REP_TEAMS, SURNAMES,
)
from dagster_project.sample_data.export_calendar import Calendar
from dagster_project.sample_data.formatting import format_amounts, format_times, plain_amount
from dagster_project.sample_data.ids import id_text
from dagster_project.sample_data.params import DAY, HOUR
from dagster_project.sample_data.vectorised import choose, int_text, join_text, pick_labels


def chinese_names(rng: np.random.Generator, female: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(name, pinyin) per person: a frequency-weighted surname and one or two given-name characters."""
    n = female.size
    weights = 1 / np.arange(1, len(SURNAMES) + 1) ** 0.8
    surname = rng.choice(len(SURNAMES), n, p=weights / weights.sum())
    size = len(GIVEN_NAMES[0])
    first = rng.integers(0, size, n) + female * size
    second = np.where(rng.random(n) < 0.6, rng.integers(0, size, n) + female * size, 2 * size)  # 2 * size: none
    chars = [c for c, _ in GIVEN_NAMES[0] + GIVEN_NAMES[1]] + [""]
    sounds = [s for _, s in GIVEN_NAMES[0] + GIVEN_NAMES[1]] + [""]
    name = join_text(pick_labels([c for c, _ in SURNAMES], surname), pick_labels(chars, first),
                     pick_labels(chars, second))
    pinyin = join_text(pick_labels([s for _, s in SURNAMES], surname), pick_labels(sounds, first),
                       pick_labels(sounds, second))
    return name, pinyin


@dataclass
class Reference:
    """Products, reps and campaigns, drawn once from their own seed."""

    product_price: np.ndarray  # CNY cents, products sorted by price
    product_category: np.ndarray
    product_name: pa.Array
    rep_team: np.ndarray  # index into REP_TEAMS
    rep_name: pa.Array
    campaign_channel: np.ndarray  # index into CAMPAIGN_CHANNELS
    campaign_start: np.ndarray  # epoch day
    campaign_end: np.ndarray  # epoch day (inclusive)
    campaign_cost: np.ndarray  # CNY cents
    campaign_send: np.ndarray  # e-mail send time (epoch seconds)

    @property
    def sales_reps(self) -> np.ndarray:
        return np.flatnonzero(self.rep_team != len(REP_TEAMS) - 1)

    @property
    def service_reps(self) -> np.ndarray:
        return np.flatnonzero(self.rep_team == len(REP_TEAMS) - 1)

    @classmethod
    def build(cls, rng: np.random.Generator, cal: Calendar) -> Reference:
        categories = list(CATEGORIES)
        category = np.repeat(np.arange(len(categories)), PRODUCTS_PER_CATEGORY)
        low, high = (np.array([CATEGORIES[c][0][i] for c in categories])[category] for i in (0, 1))
        raw = np.exp(rng.uniform(np.log(low), np.log(high)))
        # Shop prices: 39.90 below 100 yuan, 1299.00 above.
        price = np.where(raw < 100, np.round(raw) * 100 - 10, (np.round(raw / 10) * 10 - 1) * 100).astype(np.int64)
        word = rng.integers(0, 5, category.size)
        series = join_text(pick_labels(list("ASXMP"), rng.integers(0, 5, category.size)),
                           int_text(rng.integers(1, 10, category.size)))
        name = pc.binary_join_element_wise(
            pick_labels([w for c in categories for w in CATEGORIES[c][1]], category * 5 + word), series, " ")
        by_price = np.argsort(price, kind="stable")

        team = np.repeat(np.arange(len(REP_TEAMS)), [n for _, _, n in REP_TEAMS])
        rep_name, _ = chinese_names(rng, rng.random(team.size) < 0.5)

        n_campaigns = max(4, round(30 * (cal.end_s - cal.start_s) / DAY / 1095))
        start_day = cal.start_s // DAY
        last_day = cal.end_s // DAY - 1
        start = np.sort(rng.integers(start_day, last_day + 1, n_campaigns))
        channel = choose(rng, CAMPAIGN_CHANNEL_P, n_campaigns)
        channel[0] = 0  # at least one e-mail campaign, so e-mail behaviour is always present
        cost_range = np.array([CAMPAIGN_COST[c] for c in CAMPAIGN_CHANNELS])[channel]
        return cls(
            product_price=price[by_price], product_category=category[by_price], product_name=name.take(by_price),
            rep_team=team, rep_name=rep_name,
            campaign_channel=channel, campaign_start=start, campaign_end=start + rng.integers(6, 28, n_campaigns),
            campaign_cost=(rng.uniform(cost_range[:, 0], cost_range[:, 1]) * 100).astype(np.int64),
            campaign_send=start * DAY + 10 * HOUR + rng.integers(0, 2 * HOUR, n_campaigns),
        )

    def exports(self, cal: Calendar):
        """(entity, columns, drop) for the reference tables."""
        n = self.product_price.size
        snapshot_time = np.full(n, cal.start_s - 30 * DAY)
        yield "products", {
            "product_id": id_text("SKU", np.arange(1, n + 1), 5), "product_name": self.product_name,
            "category": pick_labels(list(CATEGORIES), self.product_category),
            "list_price": plain_amount(self.product_price), "currency": pa.array(["CNY"] * n),
            "updated_at": format_times(snapshot_time, np.zeros(n, np.int8)),
        }, np.zeros(n, np.int8)
        m = self.rep_team.size
        yield "sales_reps", {
            "rep_id": id_text("R", np.arange(1, m + 1), 3), "rep_name": self.rep_name,
            "team": pick_labels([t for t, _, _ in REP_TEAMS], self.rep_team),
            "region": pick_labels([r for _, r, _ in REP_TEAMS], self.rep_team),
        }, np.zeros(m, np.int8)
        c = self.campaign_start.size
        year = (self.campaign_start.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
        month = self.campaign_start.astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12
        theme = join_text(int_text(year), pick_labels(MONTH_THEME, month),
                          pick_labels([CAMPAIGN_LABEL[ch] for ch in CAMPAIGN_CHANNELS], self.campaign_channel))
        start_s = self.campaign_start * DAY
        yield "campaigns", {
            "campaign_id": id_text("CMP", np.arange(1, c + 1), 3), "campaign_name": theme,
            "channel": pick_labels(CAMPAIGN_CHANNELS, self.campaign_channel),
            "start_date": format_times(start_s, np.full(c, 2, np.int8)),
            "end_date": format_times(self.campaign_end * DAY, np.full(c, 2, np.int8)),
            "cost": format_amounts(self.campaign_cost, np.where(self.campaign_cost >= 100_000, 1, 0)),
            "currency": pa.array(["CNY"] * c),
        }, cal.drop_of(start_s)
