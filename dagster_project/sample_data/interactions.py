"""Interactions: web visits, calls, meetings and chats at rates that change in the churn warning window and after
dropout, merged with the e-mail touches into the interactions export (late arrivals, re-deliveries, orphans)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dagster_project.sample_data.customers import CustomerRecords
from dagster_project.sample_data.drops import DropWriter, drop_files, redelivery, take_rows
from dagster_project.sample_data.export_calendar import Calendar, seasonal_events
from dagster_project.sample_data.formatting import DATETIME_STYLE_P, format_times
from dagster_project.sample_data.ids import IdCounters, id_text
from dagster_project.sample_data.params import ORPHAN_RATE
from dagster_project.sample_data.persons import Persons
from dagster_project.sample_data.reference import Reference
from dagster_project.sample_data.truth import TruthWriter
from dagster_project.sample_data.vectorised import blank, choose, pick_labels

# Interaction types and their per-day base rates for (healthy, warning, dropped-out) persons.
_INTERACTION_TYPES = ["email_sent", "email_open", "email_click", "call", "meeting", "web_visit", "chat"]
INTERACTION_CODE = {name: i for i, name in enumerate(_INTERACTION_TYPES)}
_ACTIVITY_RATES = {
    "call": 0.0012 * np.array([1.0, 1.0, 0.3]),
    "meeting": 0.00015 * np.array([1.0, 1.0, 0.0]),
    "chat": 0.002 * np.array([1.0, 2.5, 0.3]),
}
_WEB_STATE_FACTOR = np.array([1.0, 0.35, 0.05])  # web visit rate = (1.2 lambda + 0.006) x factor


@dataclass
class Events:
    """Interactions before ids are assigned."""

    kind: np.ndarray
    record: np.ndarray
    t: np.ndarray
    campaign: np.ndarray
    rep: np.ndarray

    @classmethod
    def of(cls, kind: str, record, t, campaign=None, rep=None) -> Events:
        n = t.size
        return cls(np.full(n, INTERACTION_CODE[kind], np.int8), record, t,
                   np.full(n, -1) if campaign is None else campaign, np.full(n, -1) if rep is None else rep)

    @classmethod
    def concat(cls, parts: list[Events]) -> Events:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("kind", "record", "t", "campaign",
                                                                              "rep")))


def _activity_events(rng, persons: Persons, records: CustomerRecords, cal: Calendar, ref: Reference) -> Events:
    """Web visits, calls, meetings and chats, at rates that change in the churn warning window and after."""
    segments = [  # healthy, warning, dropped out
        (persons.t0, np.minimum(persons.warn_t, cal.end_s)),
        (np.maximum(persons.t0, persons.warn_t), np.minimum(persons.drop_t, cal.end_s)),
        (np.maximum(persons.t0, persons.drop_t), np.full(persons.size, cal.end_s)),
    ]
    web_rate = 1.2 * persons.lam + 0.006  # frequent buyers browse more
    parts = []
    for state, (lo, hi) in enumerate(segments):
        person, t = seasonal_events(rng, cal, lo, hi, web_rate * _WEB_STATE_FACTOR[state])
        parts.append(Events.of("web_visit", records.for_events(rng, person, t), t))
        for kind, rates in _ACTIVITY_RATES.items():
            person, t = seasonal_events(rng, cal, lo, hi, np.full(persons.size, rates[state]))
            if kind == "chat":
                rep = np.where(rng.random(t.size) < 0.7, rng.choice(ref.service_reps, t.size), -1)
            else:
                rep = rng.choice(ref.sales_reps, t.size)
            parts.append(Events.of(kind, records.for_events(rng, person, t), t, rep=rep))
    return Events.concat(parts)


def export_interactions(rng, persons: Persons, records: CustomerRecords, emails: Events, cal: Calendar,
                        ref: Reference, counters: IdCounters, writer: DropWriter, truth: TruthWriter):
    """The interactions rows: e-mail touches plus activity, by time, with planted orphan-customer rows."""
    events = Events.concat([emails, _activity_events(rng, persons, records, cal, ref)])
    order = np.argsort(events.t, kind="stable")
    kind, record, t, campaign, rep = (getattr(events, f)[order] for f in ("kind", "record", "t", "campaign", "rep"))
    n = t.size
    export_t = cal.arrival(rng, t)
    drop = cal.drop_of(export_t)
    columns = {
        "interaction_id": id_text("I", counters.take("interaction", n), 10),
        "customer_id": records.ids.take(record),
        "interaction_type": pick_labels(_INTERACTION_TYPES, kind),
        "occurred_at": format_times(t, choose(rng, DATETIME_STYLE_P, n)),
        "campaign_id": blank(id_text("CMP", campaign + 1, 3), campaign < 0),
        "rep_id": blank(id_text("R", rep + 1, 3), rep < 0),
    }
    pick, new_drop = redelivery(rng, drop, export_t, cal)
    source = rng.integers(0, n, rng.binomial(n, ORPHAN_RATE))
    orphans = {c: v.take(source) for c, v in columns.items()}
    orphans["interaction_id"] = id_text("I", counters.take("interaction", source.size), 10)
    orphans["customer_id"] = id_text("C", 90_000_000 + counters.take("orphan_customer", source.size), 8)
    truth.planted("interactions", drop_files(writer, "interactions", drop[source]), orphans["interaction_id"],
                  "orphan_customer")
    yield "interactions", columns, drop
    yield "interactions", take_rows(columns, pick), new_drop
    yield "interactions", orphans, drop[source]
