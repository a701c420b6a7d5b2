"""Churn where it counts: on warehouses the real pipeline built from three generator seeds, judged against the
generator's hidden truth, and on a real transaction log (the CDNOW sample), judged on the 90 days after the date it
was published for. test_churn.py has the unit tests on simulated marts."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import (
    CORE_GROUPS, SAMPLE_CUSTOMERS, SAMPLE_DAYS, SAMPLE_END, Refreshed, install_customer_measures, refresh,
)
from dagster_project.analytics import churn_bgnbd
from dagster_project.analytics.churn import CONTENDERS, ChurnResult, churn_features, churn_labels, run_churn
from dagster_project.analytics.churn_metrics import auc

pytestmark = pytest.mark.slow

# Seed 7 is the suite's shared sample (`refreshed`, the full refresh); 8 and 9 have the same size and go through
# ingestion and dbt only.
EXTRA_SEEDS = (8, 9)
HORIZON = 90


@dataclass
class Seed:
    seed: int
    result: ChurnResult
    oracle_auc: float

    def __getitem__(self, metric: str) -> float:
        return self.result.evaluation[metric]


def oracle_auc(con: duckdb.DuckDBPyConnection, truth: pd.DataFrame, cutoff: date) -> float:
    """The best the hidden truth allows: dropped out by the cutoff, else the chance a Poisson buyer at the true rate
    makes no purchase in the horizon. The golden CRM id (to meet the truth) is only in the restricted schema."""
    labels = churn_labels(con, cutoff, HORIZON).rename("churned").reset_index()
    ids = con.execute("select customer_key, golden_customer_id from restricted.customer_pii").df()
    joined = labels.merge(ids, on="customer_key").merge(truth, left_on="golden_customer_id", right_on="customer_id")
    assert len(joined) == len(labels)
    dead = joined["dropout_date"].notna() & (pd.to_datetime(joined["dropout_date"]) <= pd.Timestamp(cutoff))
    return auc(joined["churned"].to_numpy(), np.where(dead, 1.0, np.exp(-joined["lambda_per_day"] * HORIZON)))


def judged(warehouse: Refreshed, seed: int) -> Seed:
    truth = pd.read_parquet(warehouse.truth / "customers_truth.parquet").astype({"customer_id": str})
    with warehouse.connect() as con:
        as_of = con.execute("select as_of_date from intermediate.int_as_of").fetchone()[0]
        result = run_churn(con, as_of, None)
        return Seed(seed, result, oracle_auc(con, truth, result.evaluation["evaluation_cutoff"]))


@pytest.fixture(scope="module")
def seeds(refreshed, tmp_path_factory) -> list[Seed]:
    from dagster_project.sample_data import generate

    out = [judged(refreshed, 7)]
    for seed in EXTRA_SEEDS:
        root = tmp_path_factory.mktemp(f"churn_seed_{seed}")
        summary = generate(root / "exports", customers=SAMPLE_CUSTOMERS, days=SAMPLE_DAYS, seed=seed,
                           end_date=SAMPLE_END)
        warehouse = Refreshed(summary.out_dir, summary.truth_dir, root / "warehouse" / "crm.duckdb")
        refresh(warehouse.exports, warehouse.warehouse, groups=CORE_GROUPS)
        out.append(judged(warehouse, seed))
    table = pd.DataFrame([{
        "seed": s.seed, "lightgbm": s["lightgbm_auc"], "bgnbd_p0": s["bgnbd_p0_auc"], "recency": s["recency_auc"],
        "one_minus_p_alive": s["bgnbd_p0_auc_one_minus_p_alive"], "oracle": s.oracle_auc,
        "lightgbm_active": s["lightgbm_auc_active_365d"], "bgnbd_p0_active": s["bgnbd_p0_auc_active_365d"],
        "recency_active": s["recency_auc_active_365d"], "n_eval": s["n_eval"], "n_active": s["n_eval_active_365d"],
    } for s in out])
    print("\nchurn ROC-AUC at the evaluation cutoff, by generator seed:\n" + table.round(4).to_string(index=False))
    return out


# One test for every claim on the generated samples: its fixture builds two warehouses, and with pytest-xdist each
# worker running one of its tests would build them again.
def test_on_three_generated_samples_lightgbm_beats_the_baselines_and_nears_the_oracle(seeds):
    mean = lambda metric: float(np.mean([s[metric] for s in seeds]))  # noqa: E731
    # Measured on seeds 7, 8, 9 (1,500 customers): LightGBM - P0 = 0.029, 0.023, 0.028 (all customers) and 0.034,
    # 0.028, 0.036 (active in the last year); four more seeds at 1,500 and 3,000 customers ranged 0.029-0.037.
    assert mean("lightgbm_auc") >= mean("bgnbd_p0_auc") + 0.02
    assert mean("lightgbm_auc_active_365d") >= mean("bgnbd_p0_auc_active_365d") + 0.02
    # The baselines in the order the issue found: P0 far above 1 - p_alive (0.86 vs 0.73 measured), above recency.
    assert mean("bgnbd_p0_auc") >= mean("bgnbd_p0_auc_one_minus_p_alive") + 0.08
    assert mean("bgnbd_p0_auc") > mean("recency_auc")
    # Measured LightGBM / oracle: 0.932, 0.914, 0.924 (mean 0.923; 0.93-0.94 at 3,000 customers, 0.949 on the
    # 10,000-customer demo). 0.97 x oracle would take near-perfect knowledge of who has dropped out, which the
    # oracle has and the data does not: on a 3,000-customer seed, a score told exactly who had dropped out reached
    # 0.964 x oracle ranking the rest with LightGBM, 0.979 with the exact posterior of their purchase rate given
    # purchases and web visits. The oracle also knows each customer's rate exactly.
    ratio = float(np.mean([s["lightgbm_auc"] / s.oracle_auc for s in seeds]))
    assert ratio >= 0.90
    for s in seeds:
        assert s["lightgbm_auc"] < s.oracle_auc
        assert s.result.published == "churn_lightgbm" and s.result.quality.beats_baseline
        assert s["n_eval"] > s["n_eval_active_365d"] > 0


def test_the_asset_publishes_the_winner_and_says_how_far_to_trust_it(refreshed):
    metadata = refreshed.metadata["analytics/churn_predictions"]
    runs = refreshed.query("select model_name, purpose, metrics from analytics.model_runs "
                           "where model_name like 'churn_%'")
    published = [name for name, purpose, metrics in runs if purpose == "validation" and '"published": true' in metrics]
    assert sorted(name for name, purpose, _ in runs if purpose == "validation") == sorted(CONTENDERS)
    assert published == [metadata["published_model"].value]
    assert [name for name, purpose, _ in runs if purpose == "production"] == published
    assert refreshed.query("select distinct model from analytics.churn_scores") == [(published[0],)]
    quality = refreshed.query("select published, published_value, baseline, baseline_value, beats_baseline, metric "
                              "from analytics.model_quality where model = 'churn'")
    assert len(quality) == 1
    words, value, baseline, baseline_value, beats, metric = quality[0]
    assert metric == "ROC-AUC" and words == metadata["trust/published"].value
    assert value == pytest.approx(metadata["metric/auc"].value, abs=1e-3)
    assert baseline_value == pytest.approx(max(metadata["metric/bgnbd_p0_auc"].value,
                                               metadata["metric/recency_auc"].value), abs=1e-3)
    assert beats == metadata["trust/beats_baseline"].value
    assert metadata["metric/watchlist_held_back_no_consent"].value >= 0
    print("churn on the sample:", metadata["trust/summary"].value)


def test_watchlist_rows_are_valuable_and_at_high_risk(refreshed):
    valuable = refreshed.scalar("select quantile_cont(clv_12m, 0.8) from analytics.churn_scores")
    rows = refreshed.query("""
        select w.clv_12m, w.churn_probability, w.value_at_risk, c.marketing_consent
        from analytics.churn_watchlist w join marts.dim_customers c using (customer_key)
    """)
    assert rows
    for clv_12m, probability, at_risk, consent in rows:
        assert clv_12m >= valuable and probability >= 0.7 and consent
        assert at_risk == pytest.approx(clv_12m * probability)


def test_churn_features_at_the_as_of_date_are_customer_360s_measures(refreshed):
    """One definition: read at the as-of date with today's order status, churn's features are customer_360's columns
    (the dbt model and the table macro dbt stored for the analytics render the same macro)."""
    with refreshed.connect() as con:
        as_of = con.execute("select max(as_of_date) from marts.customer_360").fetchone()[0]
        features = churn_features(con, as_of, settle_days=0)
        mart = con.execute("select * from marts.customer_360").df().set_index("customer_key")
    shared = [c for c in features.select_dtypes("number").columns if c in mart.columns]
    assert len(shared) == 22 and {"orders_count", "revenue", "recency_days", "avg_satisfaction_365d"} <= set(shared)
    assert set(features.index) == set(mart.index[mart["orders_count"] > 0])
    pd.testing.assert_frame_equal(features[shared].astype("float64"),
                                  mart.loc[features.index, shared].astype("float64"), rtol=1e-12)


# --------------------------------------------------------------------------------------------------- CDNOW

def cdnow_marts(sample: bytes) -> duckdb.DuckDBPyConnection:
    """Just enough marts for churn from the CDNOW log: its orders (all paid), no engagement, no consent data."""
    log = pd.read_csv(io.BytesIO(sample), sep=r"\s+", header=None,
                      names=["customer_id", "customer_index", "date", "number_of_cds", "dollar_value"])
    con = duckdb.connect()
    con.execute("create schema marts")
    con.register("log", log)
    con.execute("""
        create table marts.fct_orders as
        select row_number() over () as order_id, customer_id::varchar as customer_key,
               strptime(date::varchar, '%Y%m%d')::date as order_date, 'paid' as status, true as is_paid,
               dollar_value::double as amount, dollar_value::double as net_amount
        from log;
        create table marts.fct_interactions (customer_key varchar, interaction_type varchar, occurred_date date);
        create table marts.fct_tickets (customer_key varchar, opened_at timestamp, resolved_at timestamp,
                                        is_resolved boolean, satisfaction double);
        create table marts.fct_surveys (customer_key varchar, answered_date date, answered_at timestamp, nps integer);
        create table marts.dim_customers as
        select distinct customer_key, null::varchar as gender, null::varchar as age_band, null::varchar as region,
               null::varchar as acquisition_channel, null::boolean as marketing_consent
        from marts.fct_orders;
    """)
    con.unregister("log")
    install_customer_measures(con)
    return con


def after_publication(con: duckdb.DuckDBPyConnection, as_of: date, result: ChurnResult) -> dict[str, float]:
    """ROC-AUC on the 90 days after ``as_of`` of the published score and of each baseline refitted at ``as_of``."""
    y = churn_labels(con, as_of, HORIZON)
    features = churn_features(con, as_of).loc[y.index]
    bgnbd = churn_bgnbd.fit(*churn_bgnbd.rfm_arrays(features))
    p0 = churn_bgnbd.predictions(bgnbd.params, features, HORIZON)["bgnbd_p_no_purchase"]
    published = result.scores.set_index("customer_key")["churn_probability"].loc[y.index]
    return {"published": auc(y.to_numpy(), published.to_numpy()), "bgnbd_p0": auc(y.to_numpy(), p0.to_numpy()),
            "recency": auc(y.to_numpy(), features["recency_days"].to_numpy())}


def test_on_the_cdnow_log_the_published_score_holds_up_on_the_next_90_days(tmp_path_factory):
    from test_real_exports import cdnow_sample

    con = cdnow_marts(cdnow_sample(tmp_path_factory.getbasetemp() / "lifetimes_wheel"))
    assert con.execute("select count(*), count(distinct customer_key) from marts.fct_orders").fetchone() == (6919, 2357)
    # Published at three month ends (the log runs to 1998-06-30), each judged on the 90 days after it, which no
    # fit saw: every fit uses orders up to its as-of date only (test_churn.py checks later rows change nothing).
    outcomes = []
    for as_of in (date(1998, 1, 31), date(1998, 2, 28), date(1998, 3, 31)):
        value = con.execute("select customer_key, sum(amount) as clv_12m from marts.fct_orders "
                            "where order_date <= ? group by all", [as_of]).df()  # spend as the value measure
        result = run_churn(con, as_of, value)
        outcomes.append({"as_of": as_of, "published_model": result.published,
                         "contest_auc": result.evaluation["auc"], **after_publication(con, as_of, result)})
        # No consent data: the watchlist is empty, and the note and the count say how many it holds back and why.
        assert result.consent_unknown and result.watchlist.empty
        assert result.held_back_no_consent == int(result.scores["at_risk_high_value"].sum()) > 0
        assert f"{result.held_back_no_consent} valuable high-risk customers are held back" in result.note
        # BG/NBD's 1 - p_alive ranks churners worse than chance here (one-time buyers get p_alive = 1).
        assert result.evaluation["bgnbd_p0_auc_one_minus_p_alive"] < 0.5 < result.evaluation["bgnbd_p0_auc"]
    table = pd.DataFrame(outcomes)
    print("\nCDNOW, ROC-AUC on the 90 days after each as-of date:\n" + table.round(4).to_string(index=False))
    best_baseline = table[["bgnbd_p0", "recency"]].max(axis=1)
    # Measured: published (LightGBM, which won each contest by 0.008-0.019) 0.809, 0.812, 0.832 against the best
    # baseline 0.804, 0.811, 0.834. A paired bootstrap over customers puts the standard error of one date's
    # difference at 0.007-0.008 (the three windows overlap, so their mean is hardly less noisy), and the best of two
    # baselines picked after the fact gains ~0.002 from noise alone: the published score must be at least as good
    # on average within 0.005, and never more than two standard errors worse on a date.
    assert table["published"].mean() >= best_baseline.mean() - 0.005
    assert (table["published"] >= best_baseline - 0.015).all()
    assert (table["published"] > 0.75).all()  # 1 - p_alive, the old baseline, scored 0.32-0.33 at the contests
