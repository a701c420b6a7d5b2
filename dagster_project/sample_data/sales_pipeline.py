"""The sales pipeline: leads (opportunities) moving through the stages, attributed to campaigns and reps; each won
lead becomes a customer who signs up right after the win. Exported as one row per stage change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dagster_project.sample_data.catalogue import CAMPAIGN_CHANNELS, SALES_CHANNEL
from dagster_project.sample_data.customers import CustomerRecords
from dagster_project.sample_data.export_calendar import Calendar
from dagster_project.sample_data.formatting import DATETIME_STYLE_P, format_amounts, format_times
from dagster_project.sample_data.ids import IdCounters, id_text
from dagster_project.sample_data.params import DAY, HOUR, Params
from dagster_project.sample_data.persons import Persons
from dagster_project.sample_data.reference import Reference
from dagster_project.sample_data.vectorised import blank, choose, pick_labels

_LEAD_SOURCES = ["web_form", "campaign", "referral", "event", "cold_call", "partner"]
_LEAD_SOURCE_P = [0.3, 0.25, 0.15, 0.1, 0.1, 0.1]
_STAGES = ["new", "contacted", "qualified", "proposal", "negotiation", "won", "lost"]
_ADVANCE_P = np.array([0.85, 0.6, 0.65, 0.7, 0.55])  # new->contacted, ..., negotiation->won
_STAGE_GAP_DAYS = np.array([2.0, 7.0, 10.0, 14.0, 14.0])  # mean days spent before each next step


@dataclass
class Leads:
    """One chunk's leads; arrays are indexed by lead."""

    created: np.ndarray
    step_t: np.ndarray  # (leads, 6): time of each pipeline step
    last_step: np.ndarray  # step of the final row (won or lost)
    won: np.ndarray
    source: np.ndarray
    campaign: np.ndarray  # -1 if none
    value: np.ndarray  # expected deal value, CNY cents
    rep: np.ndarray
    person: np.ndarray  # person created by a won lead, -1 otherwise


def make_leads(rng, persons: Persons, cal: Calendar, ref: Reference, params: Params) -> Leads:
    """Leads moving through the pipeline; each won lead becomes a customer who signs up right after the win."""
    n = int(rng.binomial(persons.size, params.leads_per_person))
    created = np.sort(cal.signup_times(rng, n))
    gaps = rng.gamma(2.0, _STAGE_GAP_DAYS / 2, (n, _STAGE_GAP_DAYS.size)) * DAY
    step_t = created[:, None] + np.concatenate([np.zeros((n, 1)), np.cumsum(gaps, axis=1)], axis=1).astype(np.int64)
    advance = rng.random((n, _ADVANCE_P.size)) < _ADVANCE_P
    won = advance.all(axis=1)
    last_step = np.where(won, _ADVANCE_P.size, np.argmin(advance, axis=1) + 1)

    source = choose(rng, _LEAD_SOURCE_P, n)
    day = created // DAY
    active = (ref.campaign_start[None, :] <= day[:, None]) & (day[:, None] <= ref.campaign_end[None, :])
    is_event = ref.campaign_channel == CAMPAIGN_CHANNELS.index("event")
    wants_event = source == _LEAD_SOURCES.index("event")
    wants_campaign = wants_event | (source == _LEAD_SOURCES.index("campaign"))
    eligible = active & (wants_event[:, None] == is_event[None, :]) & wants_campaign[:, None]
    campaign = np.where(eligible.any(axis=1), (rng.random(eligible.shape) * eligible).argmax(axis=1), -1)

    person = np.full(n, -1, dtype=np.int64)
    won_index = np.flatnonzero(won & (step_t[:, -1] < cal.end_s))[: persons.size]
    buyer = rng.choice(persons.size, won_index.size, replace=False)
    person[won_index] = buyer
    persons.t0[buyer] = np.minimum(step_t[won_index, -1] + rng.integers(60, HOUR, buyer.size), cal.end_s - 1)
    persons.channel[buyer] = SALES_CHANNEL
    return Leads(created=created, step_t=step_t, last_step=last_step, won=won, source=source, campaign=campaign,
                 value=(rng.lognormal(np.log(8000), 0.8, n) * 100).astype(np.int64),
                 rep=rng.choice(ref.sales_reps, n), person=person)


def export_leads(rng, leads: Leads, records: CustomerRecords, cal: Calendar, counters: IdCounters):
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
        "opportunity_id": id_text("OPP", number[lead], 7),
        "customer_id": blank(records.ids.take(np.maximum(leads.person[lead], 0)), ~customer),
        "created_at": format_times(leads.created[lead], choose(rng, DATETIME_STYLE_P, rows)),
        "source": pick_labels(_LEAD_SOURCES, leads.source[lead]),
        "campaign_id": blank(id_text("CMP", campaign + 1, 3), campaign < 0),
        "stage": pick_labels(_STAGES, np.where(final, np.where(leads.won[lead], 5, 6), step)),
        "stage_changed_at": format_times(t, choose(rng, DATETIME_STYLE_P, rows)),
        "amount": blank(format_amounts(leads.value[lead], np.zeros(rows, np.int8)), ~qualified),
        "currency": blank(pa.array(["CNY"] * rows, pa.string()), ~qualified),
        "owner_rep_id": blank(id_text("R", leads.rep[lead] + 1, 3), step < 1),
    }
    yield "opportunities", columns, cal.drop_of(t)
