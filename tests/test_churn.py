"""Churn model tests on a small simulated warehouse where dropout is preceded by warning signs."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from dagster_project.analytics.churn import (
    SUGGESTED_ACTIONS, ChurnConfig, churn_features, churn_labels, cutoff_plan, oracle_auc, run_churn,
)
from dagster_project.analytics.model_runs import model_runs_frame

START = date(2022, 1, 1)
AS_OF = date(2024, 12, 31)
HORIZON = 90
WARNING_DAYS = 60  # opens fall, a ticket stays unresolved and NPS drops this long before a customer drops out


# --------------------------------------------------------------------------------------------------- simulation

def _to_dates(days: np.ndarray) -> np.ndarray:
    return np.datetime64(START) + np.floor(days).astype("timedelta64[D]")


def _events(rng, starts, ends, rate) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events per customer on [start, end): (customer index, day)."""
    span = np.clip(ends - starts, 0, None)
    counts = rng.poisson(rate * span)
    who = np.repeat(np.arange(len(starts)), counts)
    return who, starts[who] + rng.random(len(who)) * span[who]


def simulate(n: int, seed: int = 0, as_of: date = AS_OF) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Marts tables (only the columns the churn module reads) and the truth per customer."""
    rng = np.random.default_rng(seed)
    end = (as_of - START).days + 1
    keys = np.array([f"C{i:07d}" for i in range(n)], dtype=object)
    signup = rng.uniform(0, end - 150, n)
    rate = rng.gamma(2.0, 1 / 50, n)  # paid orders per day while active, mean one every 25 days
    dropout = signup + rng.exponential(900, n)
    active_end = np.minimum(dropout, end)

    who, day = _events(rng, signup, active_end, rate)
    who, day = np.concatenate([np.arange(n), who]), np.concatenate([signup, day])  # everyone buys at signup
    status = rng.choice(["paid", "cancelled", "refunded"], len(who), p=[0.9, 0.05, 0.05])
    orders = pd.DataFrame({
        "order_id": np.arange(len(who)), "customer_key": keys[who], "order_date": _to_dates(day),
        "status": status, "is_paid": status == "paid", "amount": rng.lognormal(3.5, 0.6, len(who)),
    })

    warned = lambda w, d: d >= dropout[w] - WARNING_DAYS  # noqa: E731 - in (or past) the warning period
    who, day = _events(rng, signup, np.full(n, float(end)), 1 / 10)
    opened = rng.random(len(who)) < np.where(warned(who, day), 0.2, 0.45)
    clicked = opened & (rng.random(len(who)) < 0.3)
    visit_who, visit_day = _events(rng, signup, np.full(n, float(end)), 1 / 30)
    visited = rng.random(len(visit_who)) < np.where(warned(visit_who, visit_day), 0.5, 1.0)
    visit_who, visit_day = visit_who[visited], visit_day[visited]
    call_who, call_day = _events(rng, signup, np.full(n, float(end)), 1 / 150)
    chat_who, chat_day = _events(rng, signup, np.full(n, float(end)), 1 / 150)
    parts = [(who, day, "email_sent"), (who[opened], day[opened], "email_open"),
             (who[clicked], day[clicked], "email_click"), (visit_who, visit_day, "web_visit"),
             (call_who, call_day, "call"), (chat_who, chat_day, "chat")]
    interactions = pd.DataFrame({
        "customer_key": np.concatenate([keys[w] for w, _, _ in parts]),
        "interaction_type": np.concatenate([np.full(len(w), t) for w, _, t in parts]),
        "occurred_date": _to_dates(np.concatenate([d for _, d, _ in parts])),
    })

    who, day = _events(rng, signup, active_end, 1 / 250)
    resolved = day + rng.uniform(0.5, 5, len(who))
    satisfaction = rng.integers(3, 6, len(who)).astype(float)
    warn_who = np.flatnonzero((dropout < end) & (rng.random(n) < 0.7))
    warn_day = dropout[warn_who] - rng.uniform(10, WARNING_DAYS, len(warn_who))
    keep = warn_day > signup[warn_who]
    warn_who, warn_day = warn_who[keep], warn_day[keep]
    # Warning tickets stay open for good or are resolved long after the dropout, unhappily.
    warn_resolved = np.where(rng.random(len(warn_who)) < 0.6, np.nan, dropout[warn_who] + 60)
    opened_day = np.concatenate([day, warn_day])
    resolved_day = np.concatenate([resolved, warn_resolved])
    resolved_day[resolved_day >= end] = np.nan
    tickets = pd.DataFrame({
        "ticket_id": np.arange(len(opened_day)),
        "customer_key": keys[np.concatenate([who, warn_who])],
        "opened_at": _to_dates(opened_day).astype("datetime64[us]") + np.timedelta64(9, "h"),
        "resolved_at": pd.to_datetime(np.where(np.isnan(resolved_day), np.datetime64("NaT"),
                                               _to_dates(np.nan_to_num(resolved_day)))),
        "satisfaction": np.concatenate([satisfaction, rng.integers(1, 3, len(warn_who))]).astype(float),
    })
    tickets["is_resolved"] = tickets["resolved_at"].notna()
    tickets.loc[~tickets["is_resolved"], "satisfaction"] = np.nan

    who, day = _events(rng, signup, np.full(n, float(end)), 1 / 200)
    nps = np.where(warned(who, day), rng.integers(0, 7, len(who)), rng.integers(6, 11, len(who)))
    warn_who = np.flatnonzero((dropout < end) & (rng.random(n) < 0.6))
    warn_day = dropout[warn_who] - rng.uniform(5, WARNING_DAYS, len(warn_who))
    keep = warn_day > signup[warn_who]
    survey_day = np.concatenate([day, warn_day[keep]])
    surveys = pd.DataFrame({
        "customer_key": keys[np.concatenate([who, warn_who[keep]])],
        "answered_date": _to_dates(survey_day),
        "nps": np.concatenate([nps, rng.integers(0, 5, keep.sum())]),
    })
    surveys["answered_at"] = surveys["answered_date"].astype("datetime64[us]") + np.timedelta64(12, "h")

    customers = pd.DataFrame({
        "customer_key": keys,
        "gender": rng.choice(["female", "male", "unknown"], n),
        "age_band": rng.choice(["<25", "25-34", "35-44", "45-54", "55-64", "65+"], n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "acquisition_channel": rng.choice(["organic", "paid_search", "referral"], n),
        "marketing_consent": rng.random(n) < 0.8,
    })
    truth = pd.DataFrame({"customer_key": keys, "rate": rate, "dropout_day": dropout}).set_index("customer_key")
    tables = {"fct_orders": orders, "fct_interactions": interactions, "fct_tickets": tickets,
              "fct_surveys": surveys, "dim_customers": customers}
    return tables, truth


def load(con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame]) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    for name, frame in tables.items():
        dates = ", ".join(f"{c}::DATE AS {c}" for c in frame.columns if c.endswith("_date"))
        select = f"SELECT * REPLACE ({dates})" if dates else "SELECT *"
        con.register("_frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS {select} FROM _frame")
        con.unregister("_frame")


def recency_p_alive(con: duckdb.DuckDBPyConnection, cutoff: date) -> pd.DataFrame:
    """A p-alive-like baseline: chance of the observed purchase gap if still buying at the historical rate."""
    f = churn_features(con, cutoff, None)
    rate = f["frequency"] / f["tenure_days"].clip(lower=30)
    p_alive = np.exp(-rate * f["recency_days"])
    return pd.DataFrame({"customer_key": f.index, "p_alive": p_alive.to_numpy(),
                         "expected_purchases_90d": (p_alive * rate * 90).to_numpy()})


def oracle_scores(truth: pd.DataFrame, customers: pd.Index, cutoff: date, horizon: int) -> np.ndarray:
    """Probability of no purchase in the label window given the true rate and dropout day."""
    start = (cutoff - START).days + 1
    t = truth.reindex(customers)
    alive_days = np.clip(np.minimum(t["dropout_day"], start + horizon) - start, 0, None)
    return np.exp(-t["rate"] * alive_days).to_numpy()


# --------------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tables, truth = simulate(3000, seed=1)
    con = duckdb.connect(str(tmp_path_factory.mktemp("churn") / "warehouse.duckdb"))
    load(con, tables)
    yield con, tables, truth
    con.close()


@pytest.fixture(scope="module")
def result(warehouse):
    con, tables, _ = warehouse
    rng = np.random.default_rng(3)
    clv = pd.DataFrame({"customer_key": tables["dim_customers"]["customer_key"],
                        "clv_12m": rng.lognormal(5, 1, len(tables["dim_customers"]))})
    return run_churn(con, AS_OF, lambda c: recency_p_alive(con, c), clv, ChurnConfig(max_training_rows=20_000))


def _fresh(tmp_path, tables) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load(con, tables)
    return con


# --------------------------------------------------------------------------------------------------- features & labels

def test_events_after_the_cutoff_change_no_feature(tmp_path):
    tables, _ = simulate(300, seed=2)
    con = _fresh(tmp_path, tables)
    cutoff = date(2024, 6, 30)
    before = churn_features(con, cutoff, None)
    assert before["open_tickets"].sum() > 0  # some of them get resolved after the cutoff below
    key = before.index[0]
    later = cutoff + timedelta(days=1)
    con.execute("UPDATE marts.fct_tickets SET resolved_at = $d, is_resolved = true WHERE resolved_at IS NULL",
                {"d": later})
    con.execute("INSERT INTO marts.fct_orders (order_id, customer_key, order_date, status, is_paid, amount) "
                "VALUES (-1, $k, $d, 'paid', true, 500), (-2, 'NEW', $d, 'paid', true, 5)", {"k": key, "d": later})
    con.execute("INSERT INTO marts.fct_interactions (customer_key, interaction_type, occurred_date) "
                "VALUES ($k, 'email_open', $d), ($k, 'web_visit', $d)", {"k": key, "d": later})
    con.execute("INSERT INTO marts.fct_tickets (ticket_id, customer_key, opened_at, is_resolved) "
                "VALUES (-1, $k, $d, false)", {"k": key, "d": later})
    con.execute("INSERT INTO marts.fct_surveys (customer_key, answered_date, answered_at, nps) VALUES ($k, $d, $d, 0)",
                {"k": key, "d": later})
    after = churn_features(con, cutoff, None)
    pd.testing.assert_frame_equal(before, after)
    assert churn_features(con, cutoff + timedelta(days=1), None).loc[key, "recency_days"] == 0


def _hand_made(tmp_path) -> duckdb.DuckDBPyConnection:
    orders = pd.DataFrame(
        [  # customer, order date, status
            ("stays", "2024-05-01", "paid"), ("stays", "2024-07-15", "paid"),
            ("lapses", "2024-05-01", "paid"),
            ("cancels", "2024-05-01", "paid"), ("cancels", "2024-07-15", "cancelled"),
            ("edge_in", "2024-06-30", "paid"), ("edge_in", "2024-09-28", "paid"),  # cutoff + 90: in the window
            ("edge_out", "2024-06-30", "paid"), ("edge_out", "2024-09-29", "paid"),  # cutoff + 91: after it
            ("new", "2024-07-01", "paid"),  # first order after the cutoff: not in the population
            ("never_paid", "2024-05-01", "refunded"), ("never_paid", "2024-08-01", "paid"),
        ],
        columns=["customer_key", "order_date", "status"],
    )
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    orders["order_id"] = range(len(orders))
    orders["is_paid"] = orders["status"] == "paid"
    orders["amount"] = 10.0
    empty = lambda **dtypes: pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})  # noqa: E731
    return _fresh(tmp_path, {
        "fct_orders": orders,
        "fct_interactions": empty(customer_key=str, interaction_type=str, occurred_date="datetime64[s]"),
        "fct_tickets": empty(ticket_id=int, customer_key=str, opened_at="datetime64[us]",
                             resolved_at="datetime64[us]", is_resolved=bool, satisfaction=float),
        "fct_surveys": empty(customer_key=str, answered_date="datetime64[s]", answered_at="datetime64[us]", nps=int),
        "dim_customers": pd.DataFrame({"customer_key": ["stays"], "gender": ["female"], "age_band": ["25-34"],
                                       "region": ["north"], "acquisition_channel": ["organic"],
                                       "marketing_consent": [True]}),
    })


def test_labels_on_hand_made_cases(tmp_path):
    labels = churn_labels(_hand_made(tmp_path), date(2024, 6, 30), 90)
    assert labels.to_dict() == {"cancels": 1, "edge_in": 0, "edge_out": 1, "lapses": 1, "stays": 0}


def test_missing_entities_give_zero_or_null(tmp_path):
    features = churn_features(_hand_made(tmp_path), date(2024, 6, 30), None)
    assert sorted(features.index) == ["cancels", "edge_in", "edge_out", "lapses", "stays"]
    lapses = features.loc["lapses"]
    assert lapses["recency_days"] == 60 and lapses["frequency"] == 1 and lapses["tenure_days"] == 60
    assert pd.isna(lapses["avg_days_between_orders"])
    assert lapses[["email_opens_90d", "web_visits_30d", "open_tickets", "tickets_365d"]].eq(0).all()
    assert lapses[["email_open_rate_90d", "last_nps", "avg_satisfaction", "days_since_last_interaction",
                   "p_alive"]].isna().all()
    assert lapses["region"] == "unknown" and features.loc["stays", "region"] == "north"


def test_bgnbd_outputs_are_joined_by_customer(tmp_path):
    bg = pd.DataFrame({"customer_key": ["stays"], "p_alive": [0.9], "expected_purchases_90d": [1.5]})
    features = churn_features(_hand_made(tmp_path), date(2024, 6, 30), bg)
    assert features.loc["stays", "p_alive"] == 0.9 and pd.isna(features.loc["lapses", "expected_purchases_90d"])


def test_customer_sample_keeps_whole_customers(warehouse):
    con = warehouse[0]
    cutoff = date(2024, 3, 1)
    full = churn_features(con, cutoff, None)
    part = churn_features(con, cutoff, None, customer_share=0.3, seed=1)
    assert 0.2 < len(part) / len(full) < 0.4
    pd.testing.assert_frame_equal(part, full.loc[part.index])
    labels = churn_labels(con, cutoff, HORIZON, customer_share=0.3, seed=1)
    assert labels.index.equals(part.index)


# --------------------------------------------------------------------------------------------------- model

def test_training_label_windows_end_by_the_evaluation_cutoff(result):
    config = ChurnConfig()
    plan = cutoff_plan(AS_OF, config)
    horizon = timedelta(days=config.horizon_days)
    assert plan.evaluation + horizon == AS_OF
    assert all(c + horizon <= plan.evaluation for c in plan.validation_training)
    assert all(c + horizon <= AS_OF for c in plan.production_training)
    assert result.evaluation["evaluation_cutoff"] == plan.evaluation
    assert max(result.evaluation["training_cutoffs"]) + horizon <= plan.evaluation
    validation = next(r for r in result.runs if r.purpose == "validation")
    assert validation.train_end <= plan.evaluation


def test_lightgbm_beats_the_p_alive_baseline(warehouse, result):
    con, _, truth = warehouse
    ev = result.evaluation
    print({k: round(v, 3) for k, v in ev.items() if isinstance(v, float)})
    assert ev["auc"] > ev["baseline_auc"] + 0.02
    assert ev["pr_auc"] > ev["baseline_pr_auc"] and ev["brier"] < ev["baseline_brier"]
    assert ev["top_decile_lift"] > 1 and 0 < ev["capture"] <= 1
    labels = churn_labels(con, ev["evaluation_cutoff"], HORIZON)
    ceiling = oracle_auc(labels, oracle_scores(truth, labels.index, ev["evaluation_cutoff"], HORIZON))
    print("oracle auc", round(ceiling, 3))
    assert ev["auc"] < ceiling


def test_calibration_table_has_ten_deciles(result):
    table = result.calibration
    assert len(table) == 10 and table["decile"].tolist() == list(range(1, 11))
    assert table["n"].sum() == result.evaluation["n_eval"]
    assert table["mean_predicted"].is_monotonic_increasing
    assert (table["mean_predicted"] - table["observed_rate"]).abs().max() < 0.15


def test_every_customer_gets_three_readable_drivers_and_an_action(result):
    scores = result.scores
    assert len(scores) > 0 and scores["customer_key"].is_unique
    drivers = scores[["driver_1", "driver_2", "driver_3"]]
    assert drivers.notna().all().all()
    assert drivers.apply(lambda c: c.str.endswith(("(raises risk)", "(lowers risk)"))).all().all()
    assert (drivers.nunique(axis=1) == 3).all()
    assert scores["churn_probability"].between(0, 1).all()
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    allowed = set(SUGGESTED_ACTIONS.values()) | {"standard retention programme", "no action"}
    assert set(scores["suggested_action"]) <= allowed
    assert (scores.loc[scores["risk_band"] == "low", "suggested_action"] == "no action").all()
    print(scores.loc[scores["risk_band"] == "high", ["driver_1", "driver_2", "driver_3"]].head(5).to_string())


def test_watchlist_keeps_only_consenting_valuable_high_risk_customers(result):
    scores, watch = result.scores, result.watchlist
    assert len(watch) > 0
    flagged = scores.set_index("customer_key").loc[watch["customer_key"]]
    assert flagged["marketing_consent"].all() and flagged["high_value"].all()
    assert (flagged["risk_band"] == "high").all()
    no_consent = scores[scores["at_risk_high_value"] & ~scores["marketing_consent"]]
    assert len(no_consent) > 0 and not set(no_consent["customer_key"]) & set(watch["customer_key"])
    assert watch["value_at_risk"].is_monotonic_decreasing


def test_each_fit_records_a_model_run(result):
    runs = model_runs_frame(result.runs)
    assert runs["purpose"].tolist() == ["validation", "production"]
    assert set(runs["model_name"]) == {"churn_lightgbm"}
    validation = result.runs[0].metrics
    for key in ("auc", "pr_auc", "brier", "top_decile_lift", "capture", "baseline_auc", "baseline_pr_auc",
                "baseline_brier", "n_train", "n_eval", "positive_rate"):
        assert key in validation
    assert all(isinstance(v, (int, float)) for r in result.runs for v in r.params.values())
    assert result.runs[1].train_end == AS_OF


def test_without_bgnbd_the_baseline_is_nan_and_training_rows_are_capped(tmp_path):
    tables, _ = simulate(600, seed=4)
    out = run_churn(_fresh(tmp_path, tables), AS_OF, lambda c: None, None, ChurnConfig(max_training_rows=1200))
    assert all(run.metrics["n_train"] <= 1200 for run in out.runs)
    assert np.isnan(out.evaluation["baseline_auc"]) and out.evaluation["auc"] > 0.6
    assert out.calibration["baseline_mean_predicted"].isna().all()
    assert len(out.scores) > 0 and out.watchlist.empty and "CLV" in out.note


def test_tiny_input_gives_empty_outputs_and_a_note(tmp_path):
    tables, _ = simulate(8, seed=5)
    out = run_churn(_fresh(tmp_path, tables), AS_OF, lambda c: None, None)
    assert out.scores.empty and out.watchlist.empty and out.runs == []
    assert out.calibration.empty and out.evaluation == {}
    assert "no production fit" in out.note and "no validation fit" in out.note
