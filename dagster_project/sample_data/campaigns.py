"""E-mail campaigns and their true effect: sends to consenting records, opens and clicks that fall as a person nears
dropout, the extra purchases the responses cause (the campaign lift), and the per-campaign counts of the truth."""

from __future__ import annotations

import numpy as np

from dagster_project.sample_data.customers import CustomerRecords
from dagster_project.sample_data.export_calendar import Calendar
from dagster_project.sample_data.interactions import INTERACTION_CODE, Events
from dagster_project.sample_data.orders import Orders
from dagster_project.sample_data.params import DAY, FX_RATES, HOUR, Params
from dagster_project.sample_data.persons import Persons
from dagster_project.sample_data.reference import Reference

_OPEN_P = np.array([0.30, 0.12, 0.04])
_CLICK_P = np.array([0.25, 0.12, 0.05])  # given an open


def email_touches(rng, persons: Persons, records: CustomerRecords, cal: Calendar, ref: Reference):
    """E-mail sends to consenting records, opens and clicks depending on churn state.

    Returns the interactions and the responses (person, record, open or click time, state, clicked, campaign).
    """
    email_campaign = np.flatnonzero(ref.campaign_channel == 0)
    send = ref.campaign_send[email_campaign]
    eligible = ((records.consent & records.has_email)[:, None] & (records.t0[:, None] < send[None, :])
                & (send < cal.end_s)[None, :])
    record, c = np.nonzero(eligible & (rng.random(eligible.shape) < 0.85))  # 15% random hold-out
    campaign = email_campaign[c]
    person = records.person[record]
    sent = send[c] + rng.integers(0, HOUR, record.size)
    state = persons.state(person, sent)
    opened = rng.random(record.size) < _OPEN_P[state]
    open_t = sent + 60 + rng.exponential(6 * HOUR, record.size).astype(np.int64)
    clicked = opened & (rng.random(record.size) < _CLICK_P[state])
    click_t = open_t + 5 + rng.exponential(300, record.size).astype(np.int64)
    events = Events.concat([
        Events.of("email_sent", record, sent, campaign),
        Events.of("email_open", record[opened], open_t[opened], campaign[opened]),
        Events.of("email_click", record[clicked], click_t[clicked], campaign[clicked]),
        Events.of("web_visit", record[clicked], click_t[clicked] + 10, campaign[clicked]),  # the landing page
    ])
    events = Events(*(getattr(events, f)[events.t < cal.end_s] for f in ("kind", "record", "t", "campaign", "rep")))
    respond_t = np.where(clicked, click_t, open_t)
    responded = opened & (respond_t < cal.end_s)
    return events, tuple(x[responded] for x in (person, record, respond_t, state, clicked, campaign))


def campaign_purchases(rng, persons: Persons, responses, cal: Calendar, params: Params):
    """Extra purchases caused by opened / clicked e-mails (the campaign lift), before the person's last purchase."""
    person, record, respond_t, state, clicked, campaign = responses
    buy_t = respond_t + rng.exponential(1.5 * DAY, person.size).astype(np.int64)
    buy_p = np.where(clicked, params.click_purchase_prob, params.open_purchase_prob)
    keep = ((state < 2) & (rng.random(person.size) < buy_p)
            & (buy_t < np.minimum(persons.drop_t[person], cal.end_s)))
    return person[keep], record[keep], buy_t[keep], campaign[keep]


def campaign_effect_counts(records: CustomerRecords, emails: Events, responses, orders: Orders,
                           n_campaigns: int) -> np.ndarray:
    """One chunk's per-campaign counts (rows: ``truth.CAMPAIGN_TRUTH_COUNTS``): distinct persons e-mailed and responding
    (open or click by the end), and the paid purchases those responses caused with their revenue in CNY cents."""

    def distinct_persons(campaign: np.ndarray, person: np.ndarray) -> np.ndarray:
        pairs = np.unique(campaign.astype(np.int64) * (person.max(initial=0) + 1) + person)
        return np.bincount(pairs // (person.max(initial=0) + 1), minlength=n_campaigns)

    sent = emails.kind == INTERACTION_CODE["email_sent"]
    responder, _, _, _, _, response_campaign = responses
    caused = (orders.campaign >= 0) & (orders.status == 0)
    cny_cents = orders.amount[caused] * np.array(list(FX_RATES.values()))[orders.currency[caused]]
    return np.stack([
        distinct_persons(emails.campaign[sent], records.person[emails.record[sent]]),
        distinct_persons(response_campaign, responder),
        np.bincount(orders.campaign[caused], minlength=n_campaigns),
        np.bincount(orders.campaign[caused], weights=cny_cents, minlength=n_campaigns).round().astype(np.int64),
    ])
