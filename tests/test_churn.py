"""Churn tests on small simulated marts: features and labels as of a cutoff, the BG/NBD baseline, champion/challenger
and what the published scores and watchlist hold. The statistical claims on the generator's samples and on a real
transaction log are in test_churn_real.py."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import install_customer_measures

from dagster_project.analytics import churn_bgnbd
from dagster_project.analytics.churn import (
    CONTENDERS, SCORE_COLUMNS, SUGGESTED_ACTIONS, ChurnConfig, churn_features, churn_labels, cutoff_plan, run_churn,
)
from dagster_project.analytics.churn_baselines import P0_FEATURES, fit_recency, p0_scores, recency_scores
from dagster_project.analytics.churn_drivers import describe_driver, top_drivers
from dagster_project.analytics.churn_features import _FEATURES_SQL
from dagster_project.analytics.churn_metrics import auc
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


def _empty(**dtypes) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def _no_engagement() -> dict[str, pd.DataFrame]:
    return {
        "fct_interactions": _empty(customer_key=str, interaction_type=str, occurred_date="datetime64[s]"),
        "fct_tickets": _empty(ticket_id=int, customer_key=str, opened_at="datetime64[us]",
                              resolved_at="datetime64[us]", is_resolved=bool, satisfaction=float),
        "fct_surveys": _empty(customer_key=str, answered_date="datetime64[s]", answered_at="datetime64[us]", nps=int),
    }


def simulate(n: int, seed: int = 0, as_of: date = AS_OF, warning_signs: bool = True, common_rate: float | None = None,
             mean_lifetime: float = 900.0) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Marts tables (only the columns the churn module reads) and the truth per customer.

    Customers buy at a rate (gamma-distributed, or ``common_rate`` for all) until an exponential dropout
    (``mean_lifetime``, infinite: never). With ``warning_signs``, e-mail opens and web visits fall, a ticket stays
    open and NPS drops in the ``WARNING_DAYS`` before the dropout; without, the export holds orders only.
    """
    rng = np.random.default_rng(seed)
    end = (as_of - START).days + 1
    keys = np.array([f"C{i:07d}" for i in range(n)], dtype=object)
    signup = rng.uniform(0, end - 150, n)
    rate = np.full(n, common_rate) if common_rate else rng.gamma(2.0, 1 / 50, n)  # mean one order every 25 days
    dropout = signup + rng.exponential(mean_lifetime, n)
    active_end = np.minimum(dropout, end)

    who, day = _events(rng, signup, active_end, rate)
    who, day = np.concatenate([np.arange(n), who]), np.concatenate([signup, day])  # everyone buys at signup
    status = rng.choice(["paid", "cancelled", "refunded"], len(who), p=[0.9, 0.05, 0.05])
    orders = pd.DataFrame({
        "order_id": np.arange(len(who)), "customer_key": keys[who], "order_date": _to_dates(day),
        "status": status, "is_paid": status == "paid", "amount": rng.lognormal(3.5, 0.6, len(who)),
    })
    orders["net_amount"] = orders["amount"].where(orders["is_paid"], 0.0)
    customers = pd.DataFrame({
        "customer_key": keys,
        "gender": rng.choice(["female", "male", "unknown"], n),
        "age_band": rng.choice(["<25", "25-34", "35-44", "45-54", "55-64", "65+"], n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "acquisition_channel": rng.choice(["organic", "paid_search", "referral"], n),
        "marketing_consent": rng.random(n) < 0.8,
    })
    truth = pd.DataFrame({"customer_key": keys, "rate": rate, "dropout_day": dropout}).set_index("customer_key")
    tables = {"fct_orders": orders, "dim_customers": customers, **_no_engagement()}
    if warning_signs:
        tables |= _warning_signs(rng, keys, signup, dropout, active_end, end)
    return tables, truth


def _warning_signs(rng, keys, signup, dropout, active_end, end) -> dict[str, pd.DataFrame]:
    n = len(keys)
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
    return {"fct_interactions": interactions, "fct_tickets": tickets, "fct_surveys": surveys}


def load(con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame]) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    for name, frame in tables.items():
        dates = ", ".join(f"{c}::DATE AS {c}" for c in frame.columns if c.endswith("_date"))
        select = f"SELECT * REPLACE ({dates})" if dates else "SELECT *"
        con.register("_frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS {select} FROM _frame")
        con.unregister("_frame")
    install_customer_measures(con)


def random_clv(tables: dict[str, pd.DataFrame], seed: int = 3) -> pd.DataFrame:
    keys = tables["dim_customers"]["customer_key"]
    return pd.DataFrame({"customer_key": keys, "clv_12m": np.random.default_rng(seed).lognormal(5, 1, len(keys))})


def _fresh(tmp_path, tables, name: str = "w") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
    load(con, tables)
    return con


def simulate_bgnbd(n: int, seed: int, params: dict[str, float], horizon: float = HORIZON
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Customers drawn from the BG/NBD itself, each observed for T days after the first purchase: (x, t_x, T) at T
    and whether they made no purchase in (T, T + horizon]."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(params["r"], 1 / params["alpha"], n)
    p_drop = rng.beta(params["a"], params["b"], n)
    T = rng.uniform(30, 700, n)
    x, t_x, now = np.zeros(n), np.zeros(n), np.zeros(n)
    bought_later, running = np.zeros(n, bool), np.ones(n, bool)
    while running.any():
        now[running] += rng.exponential(1 / rate[running])
        running &= now <= T + horizon
        in_calibration, in_window = running & (now <= T), running & (now > T)
        x[in_calibration] += 1
        t_x[in_calibration] = now[in_calibration]
        bought_later |= in_window
        running &= ~in_window & (rng.random(n) >= p_drop)  # dropout right after a repeat purchase
    return x, t_x, T, ~bought_later


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
    return run_churn(con, AS_OF, random_clv(tables), ChurnConfig(max_training_rows=20_000))


# --------------------------------------------------------------------------------------------------- features & labels

def test_events_after_the_cutoff_change_no_feature(tmp_path):
    tables, _ = simulate(300, seed=2)
    con = _fresh(tmp_path, tables)
    cutoff = date(2024, 6, 30)
    before = churn_features(con, cutoff)
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
    after = churn_features(con, cutoff)
    pd.testing.assert_frame_equal(before, after)
    assert churn_features(con, cutoff + timedelta(days=1)).loc[key, "recency_days"] == 0


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
            # Refunded today, but 10 days before the cutoff the refund was not yet knowable: paid as of the cutoff.
            ("refunds_later", "2024-04-01", "paid"), ("refunds_later", "2024-06-20", "refunded"),
        ],
        columns=["customer_key", "order_date", "status"],
    )
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    orders["order_id"] = range(len(orders))
    orders["is_paid"] = orders["status"] == "paid"
    orders["amount"] = 10.0
    orders["net_amount"] = orders["amount"].where(orders["is_paid"], 0.0)
    return _fresh(tmp_path, {
        "fct_orders": orders, **_no_engagement(),
        "dim_customers": pd.DataFrame({"customer_key": ["stays"], "gender": ["female"], "age_band": ["25-34"],
                                       "region": ["north"], "acquisition_channel": ["organic"],
                                       "marketing_consent": [True]}),
    })


def test_labels_on_hand_made_cases(tmp_path):
    labels = churn_labels(_hand_made(tmp_path), date(2024, 6, 30), 90)
    assert labels.to_dict() == {"cancels": 1, "edge_in": 0, "edge_out": 1, "lapses": 1, "refunds_later": 1,
                                "stays": 0}


def test_an_order_status_counts_once_it_had_time_to_settle(tmp_path):
    con = _hand_made(tmp_path)
    at_cutoff = churn_features(con, date(2024, 6, 30)).loc["refunds_later"]  # the refunded order is 10 days old
    assert at_cutoff["recency_days"] == 10 and at_cutoff["orders_count"] == 2 and at_cutoff["refunded_orders"] == 0
    settled = churn_features(con, date(2024, 7, 31)).loc["refunds_later"]  # 41 days old: the refund is known
    assert settled["recency_days"] == 121 and settled["orders_count"] == 1 and settled["refunded_orders"] == 1
    # A refund the marts date 40 days before the cutoff leaves "never_paid" outside the population until it pays.
    assert "never_paid" not in churn_features(con, date(2024, 6, 30)).index
    # A credit note (a negative refunded order of a line-level file) was never a paid order, settled or not: it
    # nets out of revenue and buys nothing.
    con.execute("INSERT INTO marts.fct_orders (order_id, customer_key, order_date, status, is_paid, amount, "
                "net_amount) VALUES (-1, 'stays', DATE '2024-06-25', 'refunded', false, -4, -4)")
    stays = churn_features(con, date(2024, 6, 30)).loc["stays"]
    assert (stays["recency_days"], stays["orders_count"], stays["revenue"]) == (60, 1, 6.0)


def test_missing_entities_give_zero_or_null(tmp_path):
    features = churn_features(_hand_made(tmp_path), date(2024, 6, 30))
    assert sorted(features.index) == ["cancels", "edge_in", "edge_out", "lapses", "refunds_later", "stays"]
    lapses = features.loc["lapses"]
    assert lapses["recency_days"] == 60 and lapses["orders_count"] == 1 and lapses["tenure_days"] == 60
    assert lapses["purchase_days"] == 1 and pd.isna(lapses["avg_days_between_orders"])
    assert lapses[["email_opens_90d", "web_visits_365d", "open_tickets", "tickets_365d"]].eq(0).all()
    assert lapses[["email_open_rate_90d", "last_nps", "avg_satisfaction_365d", "days_since_last_interaction",
                   "days_since_last_web_visit"]].isna().all()
    assert lapses["region"] == "unknown" and features.loc["stays", "region"] == "north"


def test_customer_sample_keeps_whole_customers(warehouse):
    con = warehouse[0]
    cutoff = date(2024, 3, 1)
    full = churn_features(con, cutoff)
    part = churn_features(con, cutoff, customer_share=0.3, seed=1)
    assert 0.2 < len(part) / len(full) < 0.4
    pd.testing.assert_frame_equal(part, full.loc[part.index])
    labels = churn_labels(con, cutoff, HORIZON, customer_share=0.3, seed=1)
    assert labels.index.equals(part.index)


def test_a_subset_of_the_features_equals_those_columns_of_all_of_them(warehouse):
    con = warehouse[0]
    cutoff = date(2024, 3, 1)
    full = churn_features(con, cutoff)
    for columns in (("recency_days", "last_nps", "web_visits_90d"), ("region", "orders_count", "age_band"),
                    ("gender", "acquisition_channel")):
        pd.testing.assert_frame_equal(churn_features(con, cutoff, columns=columns), full[list(columns)])
    sample = {"customer_share": 0.3, "seed": 1}
    pd.testing.assert_frame_equal(churn_features(con, cutoff, **sample, columns=("revenue", "region")),
                                  churn_features(con, cutoff, **sample)[["revenue", "region"]])
    with pytest.raises(ValueError, match="not churn features: \\['clv_12m'\\]"):
        churn_features(con, cutoff, columns=("recency_days", "clv_12m"))


def test_the_query_of_every_feature_is_the_one_saved_models_were_identified_by():
    """Saved churn and health models carry a hash of this text (churn_cadence, health_cadence): a new text refits
    them at the next refresh. Change the hash here only with a change to what the features mean."""
    assert hashlib.sha256(_FEATURES_SQL.encode()).hexdigest()[:12] == "d99d3407734d"


# --------------------------------------------------------------------------------------------------- BG/NBD baseline

TRUE_BG = {"r": 0.75, "alpha": 18.0, "a": 0.8, "b": 8.0}  # the generator's parameters


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_p0_is_the_bgnbd_probability_of_no_purchase_in_the_horizon(seed):
    x, t_x, T, no_purchase = simulate_bgnbd(20_000, seed, TRUE_BG)
    p0 = churn_bgnbd.p_no_purchase(TRUE_BG, x, t_x, T, HORIZON)
    # Calibrated overall and by decile. Measured over seeds 1-3: overall gap -0.007, 0.001, 0.002 (Monte Carlo
    # standard error 0.003); largest decile gap 0.021, 0.011, 0.012 (standard error of a decile's rate ~0.01).
    assert abs(p0.mean() - no_purchase.mean()) < 0.012
    decile = pd.qcut(p0, 10, labels=False, duplicates="drop")
    by_decile = pd.DataFrame({"p0": p0, "y": no_purchase}).groupby(decile).mean()
    assert (by_decile["p0"] - by_decile["y"]).abs().max() < 0.035
    # 1 - p_alive gives every one-time buyer 0 although three in four of them buy nothing in the horizon; P0 ranks
    # far better (measured AUC 0.891-0.895 against 0.744-0.754).
    one_time = x == 0
    assert no_purchase[one_time].mean() > 0.6 and p0[one_time].min() > 0.4
    alive = churn_bgnbd._bg_p_alive(TRUE_BG, x, t_x, T)
    assert auc(no_purchase, p0) > auc(no_purchase, 1 - alive) + 0.1


def test_maximum_likelihood_fit_equals_pymc_marketings():
    from dagster_project.analytics.clv import fit_bgnbd

    x, t_x, T, _ = simulate_bgnbd(3000, 4, TRUE_BG)
    ours = churn_bgnbd.fit(x, t_x, T)
    summary = pd.DataFrame({"customer_key": np.arange(len(x)).astype(str), "frequency": x, "recency": t_x, "T": T})
    _, theirs = fit_bgnbd(summary)
    assert ours.params == pytest.approx(theirs, rel=2e-3)
    # A warm start from elsewhere reaches the same optimum.
    assert churn_bgnbd.fit(x, t_x, T, start={"r": 2.0, "alpha": 5.0, "a": 0.3, "b": 20.0}).params == pytest.approx(
        ours.params, rel=2e-3)
    assert churn_bgnbd.fit(np.zeros(50), np.zeros(50), np.full(50, 100.0)) is None  # no repeat buyer: no fit


def test_the_drivers_are_the_largest_contributions_largest_first_ties_in_column_order():
    """What a stable descending sort of each row's contributions gives, ties included (the argmax passes must pick the
    first of equal values), and with a NaN, which the sort puts last."""
    rng = np.random.default_rng(7)
    contributions = rng.integers(-3, 4, size=(2000, 6)).astype(float)  # small integers: many ties
    contributions[:5] = 0.0
    x = pd.DataFrame(rng.integers(0, 400, size=(2000, 5)), columns=[f"orders_{d}d" for d in (30, 90, 180, 365, 730)])
    x["recency_days"] = rng.integers(0, 800, size=2000)
    for with_nan in (False, True):
        if with_nan:
            contributions[7, 2] = np.nan
        drivers = top_drivers(contributions, x)
        expected = np.argsort(-contributions, axis=1, kind="stable")[:, :3]
        assert (drivers["main_driver_feature"].to_numpy() == np.array(x.columns)[expected[:, 0]]).all()
        for rank in range(3):
            column = expected[:, rank]
            raises = contributions[np.arange(2000), column] > 0
            assert drivers[f"driver_{rank + 1}"].tolist() == [
                describe_driver(x.columns[j], x.iloc[i, j], bool(up)) for i, (j, up) in enumerate(zip(column, raises))]


def test_baseline_drivers_use_only_the_baselines_inputs(warehouse):
    con = warehouse[0]
    features = churn_features(con, date(2024, 6, 30))
    fit = churn_bgnbd.fit(*churn_bgnbd.rfm_arrays(features))
    p0 = p0_scores(fit.params, features, HORIZON)
    assert np.allclose(p0["churn_probability"],
                       churn_bgnbd.predictions(fit.params, features, HORIZON)["bgnbd_p_no_purchase"])
    assert set(p0["main_driver_feature"]) <= set(P0_FEATURES)
    lapsed = features["recency_days"].idxmax()
    days = features.loc[lapsed, "recency_days"]
    assert p0.loc[lapsed, "driver_1"] == f"no purchase for {days:.0f} days (raises risk)"
    assert p0[["driver_1", "driver_2", "driver_3"]].notna().all().all()

    train = features.join(churn_labels(con, date(2024, 6, 30), HORIZON))
    recency = recency_scores(fit_recency(train), features)
    assert (recency["main_driver_feature"] == "recency_days").all()
    assert recency["driver_1"].str.startswith("no purchase for").all()
    assert recency[["driver_2", "driver_3"]].isna().all().all()
    # Calibrated: never less likely to churn after a longer wait.
    ordered = recency.join(features["recency_days"]).sort_values("recency_days")
    assert ordered["churn_probability"].is_monotonic_increasing


# --------------------------------------------------------------------------------------------------- contest

def test_training_label_windows_end_by_the_evaluation_cutoff(result):
    config = ChurnConfig()
    plan = cutoff_plan(AS_OF, config)
    horizon = timedelta(days=config.horizon_days)
    assert plan.evaluation + horizon == AS_OF
    assert all(c + horizon <= plan.evaluation for c in plan.validation_training)
    assert all(c + horizon <= AS_OF for c in plan.production_training)
    assert result.evaluation["evaluation_cutoff"] == plan.evaluation
    assert max(result.evaluation["training_cutoffs"]) + horizon <= plan.evaluation
    for run in result.runs:
        assert run.train_end <= (plan.evaluation if run.purpose == "validation" else AS_OF), run.model_name


def test_every_contender_is_judged_on_the_same_unseen_window_and_one_is_published(result):
    ev = result.evaluation
    print({k: round(v, 3) for k, v in ev.items() if isinstance(v, float)})
    for name in ("lightgbm", "bgnbd_p0", "recency"):
        assert 0.5 < ev[f"{name}_auc"] <= 1 and 0.5 < ev[f"{name}_auc_active_365d"] <= 1
        assert ev[f"{name}_n_eval"] == ev["n_eval"] > ev["n_eval_active_365d"] > 0
    validation = {run.model_name: run.metrics for run in result.runs if run.purpose == "validation"}
    assert set(validation) == set(CONTENDERS)
    assert [name for name, metrics in validation.items() if metrics["published"]] == [result.published]
    production = [run for run in result.runs if run.purpose == "production"]
    assert [run.model_name for run in production] == [result.published] and production[0].metrics["published"]
    assert (result.scores["model"] == result.published).all()
    # The warning signs carry information the baselines lack: LightGBM wins by more than the margin.
    assert result.published == "churn_lightgbm"
    assert ev["auc"] == ev["lightgbm_auc"] >= max(ev["bgnbd_p0_auc"], ev["recency_auc"]) + 0.005
    quality = result.quality
    assert (quality.model, quality.metric, quality.published, quality.beats_baseline) == (
        "churn", "ROC-AUC", "LightGBM churn model", True)
    assert quality.published_value == ev["auc"] and quality.n_eval == ev["n_eval"]
    assert quality.baseline_value == max(ev["bgnbd_p0_auc"], ev["recency_auc"])


def test_calibration_table_has_ten_deciles(result):
    table = result.calibration
    assert len(table) == 10 and table["decile"].tolist() == list(range(1, 11))
    assert table["n"].sum() == result.evaluation["n_eval"]
    assert table["mean_predicted"].is_monotonic_increasing
    assert (table["mean_predicted"] - table["observed_rate"]).abs().max() < 0.15
    assert table["baseline_mean_predicted"].notna().all()


def test_every_customer_gets_three_readable_drivers_and_an_action(result):
    scores = result.scores
    assert list(scores.columns) == list(SCORE_COLUMNS)
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
    valuable = scores["clv_12m"].quantile(ChurnConfig().clv_top_quantile)
    assert (watch["clv_12m"] >= valuable).all() and (watch["churn_probability"] >= 0.7).all()
    assert watch["value_at_risk"].to_numpy() == pytest.approx((watch["clv_12m"] * watch["churn_probability"]))
    assert watch["value_at_risk"].is_monotonic_decreasing
    flagged = scores.set_index("customer_key").loc[watch["customer_key"]]
    assert flagged["marketing_consent"].all()
    # Everyone valuable and at high risk with consent is on it; the ones without consent are counted, not listed.
    at_risk = scores[(scores["clv_12m"] >= valuable) & (scores["churn_probability"] >= 0.7)]
    assert set(watch["customer_key"]) == set(at_risk.loc[at_risk["marketing_consent"], "customer_key"])
    assert result.held_back_no_consent == (~at_risk["marketing_consent"]).sum() > 0
    assert not result.consent_unknown and "held back" not in (result.note or "")


def test_model_runs_record_every_contender_with_named_parameters(result):
    runs = model_runs_frame(result.runs)
    assert sorted(zip(runs["model_name"], runs["purpose"])) == sorted(
        [(name, "validation") for name in CONTENDERS] + [(result.published, "production")])
    by_name = {run.model_name: run for run in result.runs if run.purpose == "validation"}
    assert set(by_name["churn_bgnbd_p0"].params) >= {"r", "alpha", "a", "b"}
    assert by_name["churn_lightgbm"].params["num_boost_round"] > 0
    for run in by_name.values():
        assert {"auc", "auc_active_365d", "brier", "n_eval", "published"} <= set(run.metrics)


def test_a_baseline_is_published_when_lightgbm_cannot_beat_it(tmp_path):
    # Orders only, one purchase rate for everybody: days since the last purchase tells all there is to know.
    # Measured over seeds 1-8: LightGBM within -0.002..+0.001 of recency's AUC (~0.97), recency published each time.
    tables, _ = simulate(4000, seed=6, warning_signs=False, common_rate=1 / 20, mean_lifetime=400)
    out = run_churn(_fresh(tmp_path, tables), AS_OF, random_clv(tables))
    ev = out.evaluation
    print({k: round(v, 3) for k, v in ev.items() if isinstance(v, float) and "auc" in k})
    assert out.published in ("churn_recency", "churn_bgnbd_p0") and ev["best_baseline"] == out.published
    assert ev["lightgbm_auc"] < ev[f"{out.published.removeprefix('churn_')}_auc"] + 0.005
    assert "LightGBM" in out.note and "did not beat" in out.note
    assert (out.scores["model"] == out.published).all()
    assert out.scores["main_driver_feature"].isin(P0_FEATURES).all()
    runs = {(run.model_name, run.purpose): run for run in out.runs}
    assert not runs[("churn_lightgbm", "validation")].metrics["published"]
    assert ("churn_lightgbm", "production") not in runs and (out.published, "production") in runs
    assert out.quality.published == out.quality.baseline and not out.quality.beats_baseline


def test_a_score_no_better_than_chance_is_flagged(tmp_path):
    # Everybody buys at one rate and nobody drops out: no history predicts the next 90 days. Measured over seeds
    # 1-8: the published AUC 0.499-0.513 (the best of three contenders on ~5,000 customers, standard error 0.008).
    tables, _ = simulate(6000, seed=7, warning_signs=False, common_rate=1 / 130, mean_lifetime=np.inf)
    out = run_churn(_fresh(tmp_path, tables), AS_OF, random_clv(tables))
    assert out.evaluation["auc"] <= 0.52
    assert "WARNING" in out.note and "no better than chance" in out.note
    assert out.quality.note == out.note


def test_nothing_published_without_enough_history_and_the_note_says_so(tmp_path):
    tables, _ = simulate(8, seed=5)
    out = run_churn(_fresh(tmp_path, tables), AS_OF, None)
    assert out.scores.empty and out.watchlist.empty and out.runs == []
    assert out.calibration.empty and out.published is None
    assert out.note.startswith("WARNING: churn scores could not be evaluated") and "nothing is published" in out.note
    assert not out.quality.evaluated and "not evaluated" in out.quality.sentence()


def test_without_consent_data_the_held_back_customers_are_counted(tmp_path):
    tables, _ = simulate(1500, seed=8)
    tables["dim_customers"]["marketing_consent"] = None
    out = run_churn(_fresh(tmp_path, tables), AS_OF, random_clv(tables), ChurnConfig(max_training_rows=20_000))
    assert out.watchlist.empty and out.consent_unknown
    held_back = int((out.scores["at_risk_high_value"]).sum())
    assert out.held_back_no_consent == held_back > 0
    assert f"{held_back} valuable high-risk customers are held back" in out.note and "no marketing consent" in out.note


def _until(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    """The rows an export taken at the end of ``day`` would hold: events up to then, tickets as they stood."""
    end = pd.Timestamp(day) + pd.Timedelta(days=1)
    when = next((c for c in ("order_date", "occurred_date", "answered_date", "opened_at") if c in frame), None)
    if when is None:
        return frame
    frame = frame[pd.to_datetime(frame[when]) < end].copy()
    if "resolved_at" in frame:
        later = frame["resolved_at"] >= end
        frame.loc[later, ["resolved_at", "satisfaction"]] = [pd.NaT, np.nan]
        frame.loc[later, "is_resolved"] = False
    return frame


def test_later_data_changes_nothing_published_as_of_a_date(tmp_path):
    tables, _ = simulate(1200, seed=9)
    config = ChurnConfig(max_training_rows=20_000)
    as_of = AS_OF - timedelta(days=60)
    full = run_churn(_fresh(tmp_path, tables, "full"), as_of, None, config)
    up_to = {name: _until(frame, as_of) for name, frame in tables.items()}
    cut = run_churn(_fresh(tmp_path, up_to, "cut"), as_of, None, config)
    pd.testing.assert_frame_equal(full.scores, cut.scores)
    assert full.evaluation == cut.evaluation
