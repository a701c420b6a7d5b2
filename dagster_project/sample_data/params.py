"""Parameters of the sample: the behaviour model (``Params``, written to params.json), time units, FX rates and the
fixed rates at which rows are delivered late, re-delivered, made invalid or orphaned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_PERSONS = 50_000  # persons simulated at a time: bounds memory
DAY = 86_400
HOUR = 3_600
NEVER = np.iinfo(np.int64).max // 4  # "no such event" time; far beyond any drop
N_DROPS = 4
FX_RATES = {"CNY": 1.0, "USD": 7.1, "EUR": 7.8}  # CNY per unit, used to price non-CNY orders


@dataclass(frozen=True)
class Params:
    """Parameters of the behaviour model, all written to params.json."""

    # BG/NBD (days): lambda ~ Gamma(r, rate alpha); dropout after each repeat purchase with p ~ Beta(a, b).
    r: float = 0.75
    alpha: float = 18.0
    a: float = 0.8
    b: float = 8.0
    # Gamma-Gamma (lifetimes / pymc-marketing names): value ~ Gamma(p, rate nu), nu ~ Gamma(q, rate v);
    # mean order value p * v / (q - 1) = 300 CNY.
    p: float = 6.0
    q: float = 4.0
    v: float = 150.0
    signup_growth: float = 3.0  # signup intensity on the last day relative to the first day
    duplicate_rate: float = 0.03
    household_rate: float = 0.02  # persons sharing their phone with another person (a household)
    email_missing_rate: float = 0.05
    phone_missing_rate: float = 0.05
    marketing_consent_rate: float = 0.8
    leads_per_person: float = 1 / 3
    warning_days_min: int = 60  # churn warning signs start this many days before dropout (uniform min..max)
    warning_days_max: int = 90
    open_purchase_prob: float = 0.1  # e-mail campaign lift: an opener buys within days with this probability,
    click_purchase_prob: float = 0.3  # a clicker with this one
    cancelled_rate: float = 0.03
    refunded_rate: float = 0.02


# Messiness rates.
LATE_RATE = 0.015  # orders / interactions exported 1-5 days after they happened
REDELIVERY_RATE = 0.03  # of rows exported in the week before the snapshot or in a delta
CUSTOMER_REDELIVERY_RATE = 0.001
CUSTOMER_CHANGE_RATE = 0.009  # customers getting a new version during the three delta days
BAD_DATE_RATE = 0.001
NEGATIVE_QTY_RATE = 0.001
TEXT_QTY_RATE = 0.0005
ORPHAN_RATE = 0.001
BAD_DATES = ["2025-13-45", "not a date", "2025-02-30"]
BAD_QUANTITIES = ["two", "N/A", "1件", "x2"]
