"""Persons, the hidden truth behind the customer records: who they are (name, e-mail, phone, household, birthday,
location), their BG/NBD and Gamma-Gamma parameters, and their purchases, dropout and churn warning window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.sample_data.catalogue import (
    ACQUISITION_P, EMAIL_DOMAIN_P, EMAIL_DOMAINS, LOCATIONS, MOBILE_PREFIXES,
)
from dagster_project.sample_data.export_calendar import Calendar
from dagster_project.sample_data.params import DAY, NEVER, Params
from dagster_project.sample_data.reference import chinese_names
from dagster_project.sample_data.vectorised import blank, choose, group_cumsum, int_text, join_text, pick_labels


@dataclass
class Persons:
    """One chunk of persons; arrays are indexed by the person's position in the chunk."""

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
    # Set by simulate_purchases.
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


def make_persons(rng, first: int, n: int, cal: Calendar, params: Params) -> Persons:
    """Persons ``first`` .. ``first + n - 1``: identity, signup time and behaviour parameters."""
    index = first + np.arange(n)
    female = rng.random(n) < 0.55
    name, pinyin = chinese_names(rng, female)
    numeric = rng.random(n) < 0.25  # QQ-number style addresses
    domain = np.where(numeric, 0, choose(rng, EMAIL_DOMAIN_P, n))
    local = pc.if_else(pa.array(numeric), int_text(_scramble(index, 2_654_435_761, 10_000_000) + 10_000_000),
                       join_text(pinyin, int_text(_scramble(index, 2_654_435_761, 10_000_000))))
    email = blank(join_text(local, "@", pick_labels(EMAIL_DOMAINS, domain)), rng.random(n) < params.email_missing_rate)
    prefix = np.array(MOBILE_PREFIXES, dtype=np.int64)[rng.integers(0, len(MOBILE_PREFIXES), n)]
    phone = prefix * 100_000_000 + _scramble(index, 1_103_515_245, 12_345)
    phone[rng.random(n) < params.phone_missing_rate] = 0
    household = _share_phones(rng, phone, name, first, params.household_rate)
    age_days = (np.clip(rng.normal(35, 10, n), 18, 75) * 365.25).astype(np.int64) + rng.integers(0, 365, n)
    birth_day = np.where(rng.random(n) < 0.1, NEVER, cal.end_s // DAY - age_days)
    weights = np.array([w for *_, w in LOCATIONS])
    return Persons(
        first=first, t0=cal.signup_times(rng, n),
        lam=rng.gamma(params.r, 1 / params.alpha, n),
        p_drop=np.clip(rng.beta(params.a, params.b, n), 1e-9, 1.0),
        nu=rng.gamma(params.q, 1 / params.v, n),
        channel=choose(rng, ACQUISITION_P, n), female=female, name=name, email=email, phone=phone,
        household=household, birth_day=birth_day,
        location=rng.choice(len(LOCATIONS), n, p=weights / weights.sum()),
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


def simulate_purchases(rng, persons: Persons, cal: Calendar, params: Params) -> tuple[np.ndarray, np.ndarray]:
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
    partial = group_cumsum(rng.exponential(size=owner.size), n_repeat)
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


def _scramble(index: np.ndarray, multiplier: int, offset: int) -> np.ndarray:
    """A bijection of 0..1e8-1: unique, random-looking numbers for e-mails and phones."""
    return (index.astype(np.int64) * multiplier + offset) % 100_000_000
