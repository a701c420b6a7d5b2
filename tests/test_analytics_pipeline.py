"""Customer analytics materialised by the real refresh on the generated sample, checked against the generator's
ground truth and against each other."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

pytestmark = pytest.mark.slow


def production_run(refreshed, model: str) -> tuple[dict, dict]:
    params, metrics = refreshed.query(
        "select params, metrics from analytics.model_runs where model_name = ? and purpose = 'production'", [model])[0]
    return json.loads(params), json.loads(metrics)


def validation_metrics(refreshed, model: str) -> dict:
    return json.loads(refreshed.scalar(
        "select metrics from analytics.model_runs where model_name = ? and purpose = 'validation'", [model]))


def test_bg_nbd_recovers_the_generators_parameters(refreshed):
    truth = json.loads((refreshed.truth / "params.json").read_text())["bg_nbd"]
    # The calibration fit: BG/NBD is fitted there at every refresh (on all the data only when it is published).
    fitted = json.loads(refreshed.scalar(
        "select params from analytics.model_runs where model_name = 'bg_nbd' and purpose = 'validation'"))
    print("BG/NBD fitted vs true:", {k: (round(fitted[k], 3), truth[k]) for k in ("r", "alpha", "a", "b")})
    # 1,500 customers over two years: r and alpha are well determined, a and b (dropout) alone much less so than
    # their ratio, the mean dropout probability (tests/test_clv.py checks three seeds).
    assert fitted["r"] == pytest.approx(truth["r"], rel=0.25)
    assert fitted["alpha"] == pytest.approx(truth["alpha"], rel=0.40)
    assert fitted["a"] / (fitted["a"] + fitted["b"]) == pytest.approx(truth["a"] / (truth["a"] + truth["b"]), rel=0.35)
    gamma_gamma, _ = production_run(refreshed, "gamma_gamma")
    assert set(gamma_gamma) >= {"p", "q", "v"}


def test_clv_holdout_predictions_track_actual_purchases(refreshed):
    metrics = validation_metrics(refreshed, "bg_nbd")
    print("BG/NBD holdout:", {k: round(v, 3) for k, v in metrics.items() if isinstance(v, float)})
    assert metrics["holdout_predicted_purchases"] == pytest.approx(metrics["holdout_actual_purchases"], rel=0.2)
    assert metrics["holdout_corr"] > 0.5 and metrics["holdout_mae"] < metrics["holdout_baseline_mae"]


def test_clv_publishes_the_purchase_model_chosen_on_the_holdout_and_its_quality(refreshed):
    metadata = refreshed.metadata["analytics/customer_clv"]
    runs = dict(refreshed.query("select model_name, metrics from analytics.model_runs "
                                "where model_name in ('bg_nbd', 'mbg_nbd') and purpose = 'validation'"))
    loss = {name: json.loads(metrics)["holdout_no_purchase_log_loss"] for name, metrics in runs.items()}
    chosen = [name for name, metrics in runs.items() if json.loads(metrics)["chosen"]]
    assert chosen == [min(loss, key=loss.get)] == [metadata["purchase_model"].value]
    assert chosen == [metadata["trust/published"].value]
    published, baseline, beats, n_eval = refreshed.query(
        "select published_value, baseline_value, beats_baseline, n_eval from analytics.model_quality where model = 'clv'")[0]
    assert published == pytest.approx(json.loads(runs[chosen[0]])["holdout_rmse"])
    assert beats == (published < baseline) and beats == metadata["trust/beats_baseline"].value
    assert n_eval == refreshed.scalar("select count(*) from analytics.clv_validation")
    print("CLV on the sample:", metadata["trust/summary"].value, "|", metadata["trust/note"].value)


def test_churn_model_beats_the_bgnbd_baseline_and_stays_below_the_oracle(refreshed):
    metrics = validation_metrics(refreshed, "churn_lightgbm")
    baseline = validation_metrics(refreshed, "churn_bgnbd_p0")
    as_of = refreshed.scalar("select as_of_date from intermediate.int_as_of")
    cutoff = as_of - timedelta(days=90)
    # The golden CRM id (to meet the truth) is only in the restricted schema; the marts carry its pseudonym.
    labels = pd.DataFrame(refreshed.query("""
        select golden_customer_id, count(*) filter (where order_date > ? and order_date <= ?) = 0 as churned
        from marts.fct_orders join restricted.customer_pii using (customer_key)
        where is_paid group by golden_customer_id having min(order_date) <= ?
    """, [cutoff, as_of, cutoff]), columns=["golden_customer_id", "churned"])
    truth = pd.read_parquet(refreshed.truth / "customers_truth.parquet")
    joined = labels.merge(truth.astype({"customer_id": str}), left_on="golden_customer_id", right_on="customer_id")
    # The best score the truth allows: dead at the cutoff, else the chance a Poisson buyer makes no purchase.
    dead = joined.dropout_date.notna() & (pd.to_datetime(joined.dropout_date) <= pd.Timestamp(cutoff))
    oracle = np.where(dead, 1.0, np.exp(-joined.lambda_per_day * 90))
    oracle_auc = roc_auc_score(joined.churned, oracle)
    print(f"churn AUC {metrics['auc']:.3f}, BG/NBD P0 baseline {baseline['auc']:.3f}, oracle {oracle_auc:.3f}")
    assert metrics["auc"] > baseline["auc"]
    assert metrics["auc"] <= oracle_auc + 0.02
    assert metrics["brier"] < baseline["brier"]
    drivers = refreshed.query("select driver_1, driver_2, driver_3 from analytics.churn_scores limit 5")
    assert all(all(d) for d in drivers)


def test_watchlist_is_valuable_at_risk_customers_with_consent(refreshed):
    rows = refreshed.query("""
        select w.customer_key, w.churn_probability, w.suggested_action, c.marketing_consent
        from analytics.churn_watchlist w join marts.dim_customers c using (customer_key)
    """)
    assert rows and all(consent for *_, consent in rows) and all(action for _, _, action, _ in rows)


def test_prophet_beats_seasonal_naive_on_mase_for_overall_revenue(refreshed):
    prophet, naive, verdict = refreshed.query(
        "select prophet_mase, naive_mase, verdict from analytics.forecast_summary "
        "where series_id = 'overall' and metric = 'revenue'")[0]
    print(f"overall revenue MASE: prophet {prophet:.3f}, seasonal-naive {naive:.3f}: {verdict}")
    assert prophet < naive
    horizon = refreshed.query(
        "select min(ds), max(ds) from analytics.sales_forecast where series_id = 'overall' and not is_history")[0]
    as_of = refreshed.scalar("select as_of_date from intermediate.int_as_of")
    assert pd.Timestamp(horizon[0]).date() == as_of + timedelta(days=1)
    assert pd.Timestamp(horizon[1]).date() == as_of + timedelta(days=90)


def test_deciles_sum_to_total_revenue(refreshed):
    deciles, total = refreshed.query(
        "select (select sum(revenue) from analytics.spend_deciles), (select sum(net_amount) from marts.fct_orders)")[0]
    assert deciles == pytest.approx(total, abs=0.01)
    assert refreshed.scalar("select max(cumulative_share) from analytics.spend_deciles") == pytest.approx(1.0)


def test_rfm_and_cpm_groups_are_complete_and_exclusive(refreshed):
    buyers = {r[0] for r in refreshed.query("select distinct customer_key from marts.fct_orders where is_paid")}
    for table, column in (("rfm_segments", "segment"), ("cpm_states", "cpm_state")):
        rows = refreshed.query(f"select customer_key, {column} from analytics.{table}")
        assert len(rows) == len(buyers) == len({k for k, _ in rows}), table
        assert {k for k, _ in rows} == buyers and all(group for _, group in rows), table
    assert len({r[0] for r in refreshed.query("select distinct cpm_state from analytics.cpm_states")}) >= 6


def test_funnel_counts_reconcile_with_fct_opportunities(refreshed):
    reached_new, total = refreshed.query("""
        select (select reached from analytics.funnel_stages where dimension = 'overall' and stage = 'new'),
               (select count(*) from marts.fct_opportunities)
    """)[0]
    assert reached_new == total
    won, won_mart = refreshed.query("""
        select (select reached from analytics.funnel_stages where dimension = 'overall' and stage = 'won'),
               (select count(*) from marts.fct_opportunities where is_won)
    """)[0]
    assert won == won_mart


def test_every_model_fit_is_recorded_with_named_parameters(refreshed):
    runs = refreshed.query("select model_name, purpose, params, library_versions from analytics.model_runs")
    seen = {(model, purpose) for model, purpose, _, _ in runs}
    assert {("bg_nbd", "validation"), ("mbg_nbd", "validation"), ("gamma_gamma", "production"),
            ("churn_lightgbm", "production"), ("churn_lightgbm", "validation"), ("prophet_revenue", "production"),
            ("prophet_revenue", "backtest")} <= seen
    assert len(seen & {("bg_nbd", "production"), ("mbg_nbd", "production")}) == 1  # the published purchase model
    for model, _, params, versions in runs:
        if model in ("bg_nbd", "mbg_nbd"):
            assert set(json.loads(params)) == {"r", "alpha", "a", "b"}
        assert json.loads(versions)


def test_health_scores_cover_every_customer_within_0_to_100(refreshed):
    low, high, n = refreshed.query("select min(health_score), max(health_score), count(*) from analytics.health_scores")[0]
    assert 0 <= low <= high <= 100 and n == refreshed.scalar("select count(*) from marts.customer_360")
