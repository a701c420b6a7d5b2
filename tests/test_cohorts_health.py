"""Properties of monthly cohorts and the customer health score on small simulations."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from dagster_project.analytics import health
from dagster_project.analytics.cohorts import COHORT_COLUMNS, last_complete_month_end, monthly_cohorts

AS_OF = date(2024, 6, 15)  # mid-month: June 2024 is incomplete and must not appear


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n_customers, n_orders = 3000, 15_000
    first = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 900, n_customers), unit="D")
    owner = rng.integers(0, n_customers, n_orders)
    return pd.DataFrame({
        "customer_key": [f"C{i:05d}" for i in owner],
        "order_date": first[owner] + pd.to_timedelta(rng.exponential(120, n_orders).astype(int), unit="D"),
        "net_amount": rng.gamma(2, 40, n_orders).round(2),
        "is_paid": rng.random(n_orders) < 0.95,
    })


# ------------------------------------------------------------------------------------------------------------ cohorts

def test_last_complete_month_end():
    assert last_complete_month_end(date(2024, 6, 15)) == date(2024, 5, 31)
    assert last_complete_month_end(date(2024, 5, 31)) == date(2024, 5, 31)
    assert last_complete_month_end(date(2024, 3, 1)) == date(2024, 2, 29)


def test_cohorts_month_zero_is_full_retention_and_grid_is_complete(orders):
    table = monthly_cohorts(orders, AS_OF)
    month0 = table[table["months_since"] == 0]
    assert (month0["retention_pct"] == 100.0).all()
    assert (month0["active_customers"] == month0["cohort_size"]).all()
    assert table["retention_pct"].between(0, 100).all()
    assert table["cohort_month"].max() == pd.Timestamp("2024-05-01")
    observed_month = table["cohort_month"].dt.year * 12 + table["cohort_month"].dt.month + table["months_since"]
    assert observed_month.max() == 2024 * 12 + 5  # May 2024, the last complete month
    cells = table.groupby("cohort_month")["months_since"].agg(["size", "max"])
    assert (cells["size"] == cells["max"] + 1).all()  # no month skipped, even with no activity
    assert (table.groupby("cohort_month")["cumulative_revenue_per_customer"].diff().dropna() >= 0).all()


def test_cohorts_reconcile_with_orders(orders):
    table = monthly_cohorts(orders, AS_OF)
    paid = orders[orders["is_paid"] & (orders["order_date"] < pd.Timestamp("2024-06-01"))]
    assert table["revenue"].sum() == pytest.approx(paid["net_amount"].sum(), rel=1e-12)
    assert table.loc[table["months_since"] == 0, "cohort_size"].sum() == paid["customer_key"].nunique()
    last = table.sort_values("months_since").groupby("cohort_month").last()
    assert (last["cumulative_revenue_per_customer"] * last["cohort_size"]).sum() == pytest.approx(
        paid["net_amount"].sum(), rel=1e-12)


def test_cohorts_empty():
    table = monthly_cohorts(pd.DataFrame(), AS_OF)
    assert table.empty and list(table.columns) == list(COHORT_COLUMNS)


# ------------------------------------------------------------------------------------------------------------- health

def _customer_360(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """customer_360-like snapshot driven by a latent engagement z; later churn is likelier for low z."""
    z = rng.normal(size=n)
    frame = pd.DataFrame({
        "customer_key": [f"C{i:05d}" for i in range(n)],
        "recency_days": np.where(rng.random(n) < 0.05, np.nan, rng.exponential(90 * np.exp(-z))),
        "orders_365d": rng.poisson(2 * np.exp(0.6 * z)),
        "revenue_365d": rng.gamma(2, 50 * np.exp(0.3 * z)),
        "revenue": rng.gamma(3, 80, n),
        "open_tickets": rng.poisson(0.2, n),
        "avg_satisfaction_365d": np.where(rng.random(n) < 0.7, np.nan, rng.integers(1, 6, n)),
        "last_nps": np.where(rng.random(n) < 0.8, np.nan, rng.integers(0, 11, n)),
        "email_opens_90d": rng.poisson(3 * np.exp(0.7 * z)),
        "email_clicks_90d": rng.poisson(0.5 * np.exp(0.7 * z)),
        "web_visits_90d": rng.poisson(2 * np.exp(0.5 * z)),
    })
    churned_later = rng.random(n) < 1 / (1 + np.exp(1.0 + 1.5 * z))
    return frame, churned_later


def test_tie_aware_percentile():
    assert health.tie_aware_percentile(np.array([0.0, 0.0, 0.0, 1.0])).tolist() == [0.0, 0.0, 0.0, 1.0]
    assert health.tie_aware_percentile(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    assert health.tie_aware_percentile(np.array([2.0, 2.0])).tolist() == [0.5, 0.5]
    assert np.isnan(health.tie_aware_percentile(np.array([np.nan, 1.0, 2.0]))[0])


def test_health_weights_fitted_from_later_churn():
    rng = np.random.default_rng(3)
    past, churned_later = _customer_360(rng, 4000)
    fit = health.fit_health_weights(health.health_components(past), churned_later)
    assert not fit.fallback
    assert all(w >= 0 for w in fit.weights.values())
    assert sum(fit.weights.values()) == pytest.approx(1.0)
    assert fit.auc > 0.6
    assert fit.weights["activity"] + fit.weights["engagement"] > 0.5  # the drivers of churn in the simulation
    assert (fit.n_customers, fit.n_churned) == (4000, int(churned_later.sum()))

    current, _ = _customer_360(rng, 4000)
    scores = health.health_scores(current, fit)
    assert list(scores.columns) == list(health.HEALTH_COLUMNS)
    assert scores["health_score"].between(0, 100).all()
    assert scores[list(health.COMPONENTS)].stack().between(0, 1).all()
    assert scores["health_band"].isin(["healthy", "watch", "at risk"]).all()
    assert (scores.loc[scores["health_score"] >= 70, "health_band"] == "healthy").all()
    assert (scores.loc[scores["health_score"] < 40, "health_band"] == "at risk").all()


def test_health_never_ordered_is_least_active():
    rng = np.random.default_rng(5)
    frame, _ = _customer_360(rng, 500)
    components = health.health_components(frame)
    never = frame["recency_days"].isna().to_numpy()
    assert components.loc[never, "activity"].max() <= components.loc[~never, "activity"].median()


def test_health_weights_fall_back_without_enough_history():
    rng = np.random.default_rng(9)
    past, churned_later = _customer_360(rng, 100)
    small = health.fit_health_weights(health.health_components(past), churned_later)
    assert small.fallback and small.weights == health.EQUAL_WEIGHTS and "customers" in small.reason
    past, _ = _customer_360(rng, 1000)
    one_class = health.fit_health_weights(health.health_components(past), np.zeros(1000, dtype=bool))
    assert one_class.fallback and math.isnan(one_class.auc)


def test_health_empty():
    assert list(health.health_scores(pd.DataFrame()).columns) == list(health.HEALTH_COLUMNS)
    fit = health.fit_health_weights(health.health_components(pd.DataFrame()), np.array([], dtype=bool))
    assert fit.fallback and fit.weights == health.EQUAL_WEIGHTS
