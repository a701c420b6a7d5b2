"""Churn drivers in plain words ("no purchase for 240 days (raises risk)") and the action each suggests.

Whatever produced the score, a driver is a feature with a per-customer contribution to the risk (TreeSHAP for
LightGBM, the change in probability when the feature takes the typical value for a baseline); the features pushing
the risk up the most come first.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from dagster_project.analytics.churn_features import CATEGORICAL_FEATURES

# Suggested action per driver feature (the first driver of a medium/high-risk customer picks the action):
#   purchase lapse (recency, falling orders/spend, BG/NBD outputs)      -> win-back offer
#   unresolved/frequent tickets, low satisfaction, cancellations        -> service call
#   low NPS                                                             -> account review
#   falling e-mail opens/clicks, fewer visits or contacts               -> re-engagement campaign
#   anything else (demographics, tenure)                                -> standard retention programme
_ACTION_GROUPS = {
    "win-back offer": (
        "recency_days", "orders_count", "purchase_days", "revenue", "avg_order_value", "avg_days_between_orders",
        "orders_30d", "orders_90d", "orders_365d", "revenue_30d", "revenue_90d", "revenue_365d",
        "orders_trend_90d", "revenue_trend_90d", "p_alive", "expected_purchases_90d", "bgnbd_p_no_purchase",
    ),
    "service call": (
        "open_tickets", "tickets_90d", "tickets_365d", "avg_satisfaction_365d", "cancelled_orders", "refunded_orders",
    ),
    "account review": ("last_nps",),
    "re-engagement campaign": (
        "email_opens_30d", "email_opens_90d", "email_opens_365d", "email_opens_trend_90d", "email_clicks_30d",
        "email_clicks_90d", "email_open_rate_90d", "email_open_rate_365d", "emails_sent_90d", "emails_sent_365d",
        "web_visits_30d", "web_visits_90d", "web_visits_365d", "days_since_last_web_visit", "calls_30d", "calls_90d",
        "chats_30d", "chats_90d", "days_since_last_interaction",
    ),
}
SUGGESTED_ACTIONS = {feature: action for action, features in _ACTION_GROUPS.items() for feature in features}
DEFAULT_ACTION = "standard retention programme"
NO_ACTION = "no action"

_WINDOW_NOUNS = {  # feature prefix -> (singular, plural)
    "orders": ("paid order", "paid orders"), "email_opens": ("email open", "email opens"),
    "email_clicks": ("email click", "email clicks"), "emails_sent": ("email sent", "emails sent"),
    "web_visits": ("web visit", "web visits"), "calls": ("call", "calls"), "chats": ("chat", "chats"),
    "tickets": ("support ticket", "support tickets"),
}
_WINDOW_FEATURE = re.compile(r"^(?P<kind>[a-z_]+)_(?P<days>\d+)d$")


def _count(value: float, singular: str, plural: str) -> str:
    """'no calls', '1 call', '3 calls'."""
    return f"1 {singular}" if value == 1 else f"{'no' if value == 0 else f'{value:.0f}'} {plural}"


def _change(noun: str, value: float) -> str:
    if value == 0:
        return f"{noun} unchanged vs the previous 90 days"
    return f"{noun} {'fell' if value < 0 else 'rose'} by {abs(value):,.0f} vs the previous 90 days"


_PHRASES: dict[str, Callable[[float], str]] = {
    "recency_days": lambda v: f"no purchase for {v:.0f} days",
    "orders_count": lambda v: _count(v, "paid order", "paid orders") + " in total",
    "purchase_days": lambda v: "bought on 1 day only" if v == 1 else f"bought on {v:.0f} different days",
    "revenue": lambda v: f"lifetime spend {v:,.0f}",
    "avg_order_value": lambda v: f"average order {v:,.0f}",
    "tenure_days": lambda v: f"customer for {v:.0f} days",
    "avg_days_between_orders": lambda v: f"buys every {v:.0f} days on average",
    "orders_trend_90d": lambda v: _change("orders", v),
    "revenue_trend_90d": lambda v: _change("spend", v),
    "email_opens_trend_90d": lambda v: _change("email opens", v),
    "cancelled_orders": lambda v: _count(v, "cancelled order", "cancelled orders"),
    "refunded_orders": lambda v: _count(v, "refunded order", "refunded orders"),
    "open_tickets": lambda v: _count(v, "unresolved support ticket", "unresolved support tickets"),
    "email_open_rate_90d": lambda v: f"opened {v:.0%} of emails in the last 90 days",
    "email_open_rate_365d": lambda v: f"opened {v:.0%} of emails in the last year",
    "avg_satisfaction_365d": lambda v: f"average ticket satisfaction {v:.1f}/5",
    "last_nps": lambda v: f"last NPS score {v:.0f}",
    "days_since_last_interaction": lambda v: f"no engagement for {v:.0f} days",
    "days_since_last_web_visit": lambda v: f"no web visit for {v:.0f} days",
    "p_alive": lambda v: f"BG/NBD probability still active {v:.0%}",
    "expected_purchases_90d": lambda v: f"BG/NBD expects {v:.1f} purchases in the next 90 days",
    "bgnbd_p_no_purchase": lambda v: f"BG/NBD chance of no purchase in the churn window {v:.0%}",
}
_MISSING_PHRASES = {
    "avg_days_between_orders": "only one purchase day so far",
    "email_open_rate_90d": "no emails sent in the last 90 days",
    "email_open_rate_365d": "no emails sent in the last year",
    "avg_satisfaction_365d": "no rated support tickets",
    "last_nps": "no NPS answer",
    "days_since_last_interaction": "no engagement in the last year",
    "days_since_last_web_visit": "no web visit in the last year",
    "p_alive": "no BG/NBD estimate",
    "expected_purchases_90d": "no BG/NBD estimate",
    "bgnbd_p_no_purchase": "no BG/NBD estimate",
}


def _phrase(feature: str, value) -> str:
    if pd.isna(value):  # for a category: one not seen in training
        return _MISSING_PHRASES.get(feature, f"{feature.replace('_', ' ')} unknown")
    if feature in CATEGORICAL_FEATURES:
        return f"{feature.replace('_', ' ')} {value}"
    if feature in _PHRASES:
        return _PHRASES[feature](value)
    window = _WINDOW_FEATURE.match(feature)
    kind, days = window["kind"], window["days"]
    if kind == "revenue":
        return f"spent {value:,.0f} in the last {days} days"
    return f"{_count(value, *_WINDOW_NOUNS[kind])} in the last {days} days"


def describe_driver(feature: str, value, raises: bool) -> str:
    """Plain-words driver, e.g. 'no purchase for 240 days (raises risk)'."""
    return f"{_phrase(feature, value)} ({'raises' if raises else 'lowers'} risk)"


def _describe_many(feature: str, values: pd.Series, raises: np.ndarray) -> np.ndarray:
    """``describe_driver`` for many rows, formatting each distinct (value, direction) once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    distinct, inverse = np.unique(codes * 2 + raises, return_inverse=True)
    uniques = list(uniques)  # indexing a pandas Index value by value costs more than the phrasing
    texts = np.array([describe_driver(feature, uniques[d // 2], bool(d % 2)) for d in distinct], dtype=object)
    return texts[inverse]


def _largest_first(values: np.ndarray, n: int) -> np.ndarray:
    """Per row, the columns of the ``n`` largest values, largest first, ties in column order: the first ``n`` columns
    of a stable descending sort, found by ``n`` passes of argmax (which takes the first of equal values) instead of
    sorting every row whole."""
    if not np.isfinite(values).all():  # argmax would pick a NaN; the sort puts it last
        return np.argsort(-values, axis=1, kind="stable")[:, :n]
    remaining = values.astype(float, copy=True)
    top = np.empty((len(values), min(n, values.shape[1])), dtype=np.intp)
    rows = np.arange(len(values))
    for rank in range(top.shape[1]):
        top[:, rank] = remaining.argmax(axis=1)
        remaining[rows, top[:, rank]] = -np.inf
    return top


def top_drivers(contributions: np.ndarray, x: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The ``n`` features pushing each customer's churn risk up the most: ``contributions`` has one column per
    column of ``x`` (extra columns, such as TreeSHAP's bias, are ignored). With fewer than ``n`` features the
    remaining drivers are missing."""
    names = list(x.columns)
    per_feature = contributions[:, : len(names)]
    top = _largest_first(per_feature, n)
    out = {"main_driver_feature": np.array(names, dtype=object)[top[:, 0]]}
    for rank in range(n):
        texts = np.full(len(x), None, dtype=object)
        if rank < top.shape[1]:
            for j in np.unique(top[:, rank]):
                rows = np.flatnonzero(top[:, rank] == j)
                texts[rows] = _describe_many(names[j], x.iloc[rows, j], per_feature[rows, j] > 0)
        out[f"driver_{rank + 1}"] = texts
    return pd.DataFrame(out, index=x.index)


def suggested_action(main_driver_feature: pd.Series, risk_band: pd.Series) -> np.ndarray:
    """The action for the main driver of a medium or high-risk customer; 'no action' at low risk."""
    return np.where(risk_band == "low", NO_ACTION, main_driver_feature.map(SUGGESTED_ACTIONS).fillna(DEFAULT_ACTION))
