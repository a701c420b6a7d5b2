"""Customer records and the customers export: one primary record per person plus a second record for a few
duplicated persons (another e-mail case, phone format, sometimes a key missing), and their rows per drop with
edits, re-deliveries and the Chinese-language values of the GB18030 file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.sample_data.catalogue import ACQUISITION_CHANNELS, ACQUISITION_P, LOCATIONS, MUNICIPALITIES
from dagster_project.sample_data.drops import GB_DROP, take_rows
from dagster_project.sample_data.export_calendar import Calendar
from dagster_project.sample_data.formatting import DATE_STYLE_P, DATETIME_STYLE_P, format_phones, format_times
from dagster_project.sample_data.ids import IdCounters, id_text
from dagster_project.sample_data.params import (
    CUSTOMER_CHANGE_RATE, CUSTOMER_REDELIVERY_RATE, DAY, HOUR, N_DROPS, NEVER, Params,
)
from dagster_project.sample_data.persons import Persons
from dagster_project.sample_data.vectorised import assemble, blank, choose, join_text, pick_labels, uniform_between


@dataclass
class CustomerRecords:
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


def make_records(rng, persons: Persons, cal: Calendar, counters: IdCounters, params: Params) -> CustomerRecords:
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
    t0 = np.concatenate([persons.t0, uniform_between(rng, persons.t0[dup], dup_end)])
    number = np.empty(n + m, dtype=np.int64)
    number[np.argsort(t0, kind="stable")] = counters.take("customer", n + m)  # ids follow creation time
    dup_of_person = np.full(n, -1, dtype=np.int64)
    dup_of_person[dup] = n + np.arange(m)

    # The second record: e-mail in another case or padded, phone in another format, sometimes one key missing.
    email_style = np.concatenate([np.where(rng.random(n) < 0.05, 2, 0), choose(rng, [0.2, 0.3, 0.2, 0.3], m)])
    email = persons.email.take(person)
    email = assemble(n + m, [
        (np.flatnonzero(email_style == 0), email.filter(pa.array(email_style == 0))),
        (np.flatnonzero(email_style == 1), pc.utf8_upper(email.filter(pa.array(email_style == 1)))),
        (np.flatnonzero(email_style == 2), pc.utf8_capitalize(email.filter(pa.array(email_style == 2)))),
        (np.flatnonzero(email_style == 3), join_text("  ", email.filter(pa.array(email_style == 3)), " ")),
    ])
    phone = persons.phone[person].copy()
    drop_key = np.concatenate([np.zeros(n, bool), rng.random(m) < 0.3])
    email_ok_rec = email_ok[person]
    drop_email = drop_key & (phone > 0) & (rng.random(n + m) < 0.5)
    drop_phone = drop_key & ~drop_email & email_ok_rec
    email = blank(email, drop_email)
    phone[drop_phone] = 0
    phone_style = choose(rng, [0.6, 0.15, 0.15, 0.1], n + m)
    phone_style[n:] = (phone_style[dup] + rng.integers(1, 4, m)) % 4
    name = persons.name.take(person)
    spaced = ~primary & (rng.random(n + m) < 0.2)
    name = pc.if_else(pa.array(spaced), join_text(pc.utf8_slice_codeunits(name, 0, 1), " ",
                                                  pc.utf8_slice_codeunits(name, 1)), name)
    return CustomerRecords(
        person=person, primary=primary, t0=t0, number=number, dup_of_person=dup_of_person,
        consent=rng.random(n + m) < params.marketing_consent_rate,
        channel=np.concatenate([persons.channel, choose(rng, ACQUISITION_P, m)]),
        name=name, email=email, phone=format_phones(phone, phone_style),
        has_email=pc.is_valid(email).to_numpy(zero_copy_only=False), ids=id_text("C", number, 8),
    )


def export_customers(rng, persons: Persons, records: CustomerRecords, cal: Calendar):
    """Snapshot versions of all records, new records and new versions in the deltas, a few re-deliveries."""
    n = records.person.size
    base_drop = cal.drop_of(records.t0)
    base_updated = records.t0.copy()
    edited = np.flatnonzero((base_drop == 0) & (rng.random(n) < 0.3))  # edited since signup, before the snapshot
    base_updated[edited] = uniform_between(rng, records.t0[edited], np.full(edited.size, cal.bounds[0]))
    change_drop = rng.integers(1, N_DROPS, n).astype(np.int8)
    changed = np.flatnonzero((rng.random(n) < CUSTOMER_CHANGE_RATE) & (records.t0 < cal.bounds[change_drop - 1]))
    change_t = cal.bounds[change_drop[changed] - 1] + rng.integers(8 * HOUR, 22 * HOUR, changed.size)
    record = np.concatenate([np.arange(n), changed])
    drop = np.concatenate([base_drop, change_drop[changed]])
    updated = np.concatenate([base_updated, change_t])
    change = np.concatenate([np.zeros(n, np.int8), np.where(rng.random(changed.size) < 0.6, 1, 2)])  # 1 moved
    order = np.argsort(records.number[record], kind="stable")  # rows by customer_id, like a CRM export
    record, drop, updated, change = record[order], drop[order], updated[order], change[order]
    columns = _customer_columns(rng, persons, records, record, drop, updated, change)
    yield "customers", columns, drop
    pick = np.flatnonzero((drop == 0) & (rng.random(drop.size) < CUSTOMER_REDELIVERY_RATE))
    new_drop = np.where(rng.random(pick.size) < 0.5, 1, 3)  # not the GB18030 file, which renders differently
    yield "customers", take_rows(columns, pick), new_drop


def _region_names(full: bool) -> list[str]:
    """Province names per location, as written ("广东") or in full ("广东省", "上海市")."""
    if not full:
        return [region for _, region, _, _ in LOCATIONS]
    official = {"广西": "广西壮族自治区"}
    return [official.get(region, region + ("市" if region in MUNICIPALITIES else "省")) if country == "CN"
            else region for _, region, country, _ in LOCATIONS]


def _customer_columns(rng, persons: Persons, records: CustomerRecords, record: np.ndarray, drop: np.ndarray,
                      updated: np.ndarray, change: np.ndarray) -> dict[str, pa.Array]:
    """The text columns of customer rows (``record`` per row; ``change`` 1 moved, 2 flipped marketing consent)."""
    rows = record.size
    person = records.person[record]
    gb = drop == GB_DROP  # Chinese Windows export: Chinese values and date formats
    gender_missing, city_missing, channel_missing = (
        rng.random((3, records.person.size)) < np.array([[0.06], [0.04], [0.03]]))[:, record]
    location = persons.location[person].copy()
    moved = np.flatnonzero(change == 1)
    weights = np.array([w for *_, w in LOCATIONS])
    location[moved] = rng.choice(len(LOCATIONS), moved.size, p=weights / weights.sum())
    country = np.array([["CN", "HK", "SG", "US"].index(c) for _, _, c, _ in LOCATIONS])[location]
    cn_style = np.where(gb, 2, choose(rng, [0.92, 0.04, 0.04], rows))
    consent = records.consent[record] ^ (change == 2)
    consent_style = np.where(gb, 3, choose(rng, [0.85, 0.07, 0.08], rows))
    chinese_gender = gb | (rng.random(rows) < 0.05)
    birth = persons.birth_day[person]
    full_region = rng.random(rows) < 0.1
    return {
        "customer_id": records.ids.take(record),
        "name": records.name.take(record),
        "email": records.email.take(record),
        "phone": records.phone.take(record),
        "gender": blank(pick_labels(["M", "F", "男", "女"], persons.female[person] + 2 * chinese_gender),
                        gender_missing),
        "birth_date": format_times(np.where(birth < NEVER, birth * DAY, NEVER),
                                   np.where(gb, 4, choose(rng, DATE_STYLE_P, rows))),
        "city": blank(pick_labels([c for c, *_ in LOCATIONS], location), city_missing),
        "region": blank(pick_labels(_region_names(False) + _region_names(True),
                                    location + full_region * len(LOCATIONS)), city_missing),
        "country": blank(pick_labels(["CN", "China", "中国", "HK", "SG", "US"],
                                     np.where(country == 0, cn_style, country + 2)), rng.random(rows) < 0.01),
        "signup_date": format_times(records.t0[record], np.where(gb, 4, choose(rng, DATETIME_STYLE_P, rows))),
        "acquisition_channel": blank(pick_labels(ACQUISITION_CHANNELS, records.channel[record]), channel_missing),
        "marketing_consent": pick_labels(["true", "false", "yes", "no", "1", "0", "是", "否"],
                                         consent_style * 2 + ~consent),
        "updated_at": format_times(updated, np.where(gb, 1, choose(rng, DATETIME_STYLE_P, rows))),
    }
