"""Customer service: support tickets (routine ones, plus unresolved low-CSAT ones in the churn warning window) as
they stand at each drop, and NPS survey answers that fall as a person nears dropout."""

from __future__ import annotations

import numpy as np

from dagster_project.sample_data.customers import CustomerRecords
from dagster_project.sample_data.export_calendar import Calendar, seasonal_events
from dagster_project.sample_data.formatting import DATETIME_STYLE_P, format_times
from dagster_project.sample_data.ids import IdCounters, id_text
from dagster_project.sample_data.params import DAY, HOUR, NEVER
from dagster_project.sample_data.persons import Persons
from dagster_project.sample_data.reference import Reference
from dagster_project.sample_data.vectorised import blank, choose, int_text, pick_labels, uniform_between

_TICKET_CATEGORIES = ["delivery", "product_quality", "refund", "billing", "account", "other"]
_PRIORITIES = ["low", "normal", "high"]
_NPS_P = np.array([  # P(score 0..10) by state
    [0.01, 0.01, 0.01, 0.02, 0.02, 0.03, 0.05, 0.15, 0.25, 0.22, 0.23],
    [0.08, 0.07, 0.10, 0.12, 0.13, 0.15, 0.12, 0.10, 0.07, 0.03, 0.03],
    [0.15, 0.12, 0.13, 0.13, 0.12, 0.11, 0.08, 0.07, 0.05, 0.02, 0.02],
])
_CSAT_P = {"routine": [0.03, 0.05, 0.15, 0.37, 0.40], "warning": [0.45, 0.35, 0.12, 0.05, 0.03]}


def export_tickets(rng, persons: Persons, records: CustomerRecords, cal: Calendar, ref: Reference,
                   counters: IdCounters):
    """Routine tickets over the active life plus unresolved, low-CSAT ones in the churn warning window.

    A ticket is in the snapshot if opened by then, and in a delta when it was opened, answered or resolved that
    day; each row shows the ticket as of the end of its drop day.
    """
    n = persons.size
    routine_person, routine_t = seasonal_events(rng, cal, persons.t0, np.minimum(persons.drop_t, cal.end_s),
                                                np.full(n, 0.0006))
    unhappy = np.flatnonzero((persons.drop_t < NEVER) & (rng.random(n) < 0.35))
    lo, hi = np.maximum(persons.t0[unhappy], persons.warn_t[unhappy]), persons.drop_t[unhappy]
    unhappy, lo, hi = unhappy[hi > lo], lo[hi > lo], hi[hi > lo]
    person = np.concatenate([routine_person, unhappy])
    opened = np.concatenate([routine_t, uniform_between(rng, lo, hi)])
    warning = np.concatenate([np.zeros(routine_t.size, bool), np.ones(unhappy.size, bool)])
    order = np.argsort(opened, kind="stable")
    person, opened, warning = person[order], opened[order], warning[order]
    m = opened.size

    responded = opened + (rng.gamma(2.0, 1.0, m) * np.where(warning, 15, 3) * HOUR).astype(np.int64)
    responded = np.where(rng.random(m) < np.where(warning, 0.2, 0.02), NEVER, responded)
    resolved = responded + (rng.gamma(2.0, 1.0, m) * np.where(warning, 48, 12) * HOUR).astype(np.int64)
    resolved = np.where((responded < NEVER) & (rng.random(m) < np.where(warning, 0.35, 0.95)), resolved, NEVER)
    csat = np.where(warning, choose(rng, _CSAT_P["warning"], m), choose(rng, _CSAT_P["routine"], m)) + 1
    csat[rng.random(m) < 0.2] = 0  # not rated
    ticket = {
        "id": id_text("T", counters.take("ticket", m), 8), "customer": records.ids.take(
            records.for_events(rng, person, opened)),
        "category": pick_labels(_TICKET_CATEGORIES, choose(rng, [0.3, 0.2, 0.15, 0.1, 0.1, 0.15], m)),
        "rep": id_text("R", rng.choice(ref.service_reps, m) + 1, 3),
        "priority": pick_labels(_PRIORITIES, np.where(warning, choose(rng, [0.1, 0.4, 0.5], m),
                                                      choose(rng, [0.3, 0.6, 0.1], m))),
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
    styles = choose(rng, DATETIME_STYLE_P, index.size)
    columns = {
        "ticket_id": ticket["id"].take(index),
        "customer_id": ticket["customer"].take(index),
        "opened_at": format_times(opened[index], styles),
        "first_response_at": format_times(np.where(answered, responded[index], NEVER), styles),
        "resolved_at": format_times(np.where(done, resolved[index], NEVER), styles),
        "status": pick_labels(["open", "pending", "resolved", "closed"], answered.astype(int) + done + closed),
        "category": ticket["category"].take(index),
        "satisfaction": blank(int_text(csat[index]), ~answered | (csat[index] == 0)),
        "rep_id": ticket["rep"].take(index),
        "updated_at": format_times(np.where(done, resolved[index], np.where(answered, responded[index], opened[index])),
                                   styles),
        "priority": ticket["priority"].take(index),
    }
    yield "tickets", columns, drop


def export_surveys(rng, persons: Persons, records: CustomerRecords, cal: Calendar, counters: IdCounters):
    """NPS answers from a quarter of the persons, lower in the churn warning window and after dropout."""
    n = persons.size
    first = persons.t0 + 3 * DAY
    count = np.where((rng.random(n) < 0.25) & (first < cal.end_s), 1 + rng.poisson(0.6, n), 0)
    person = np.repeat(np.arange(n), count)
    t = uniform_between(rng, first[person], np.full(person.size, cal.end_s))
    order = np.argsort(t, kind="stable")
    person, t = person[order], t[order]
    cumulative = np.cumsum(_NPS_P, axis=1)
    nps = np.minimum((rng.random(t.size)[:, None] > cumulative[persons.state(person, t)]).sum(axis=1), 10)
    columns = {
        "survey_id": id_text("S", counters.take("survey", t.size), 8),
        "customer_id": records.ids.take(records.for_events(rng, person, t)),
        "answered_at": format_times(t, choose(rng, DATETIME_STYLE_P, t.size)),
        "nps": int_text(nps),
    }
    yield "surveys", columns, cal.drop_of(t)
