"""Models on a cadence: the saved churn model, health weights and forecasts score the refreshes between fits; a
refresh refits them when they are due, on --retrain, when they were saved under other settings or library versions,
or when their monitored ROC-AUC dropped past the threshold; analytics.model_runs keeps every fit and evaluation.

The pipeline tests run the analytics assets of the real refresh on copies of the session's refreshed sample (whose
refresh fitted and saved the models); the metric-drop claim is checked on three simulated seeds."""

from __future__ import annotations

import json
import shutil
import stat
from dataclasses import replace
from datetime import date, timedelta

import duckdb
import numpy as np
import pytest
from conftest import copy_of, refresh
from test_churn import AS_OF, load, random_clv, simulate

from dagster_project.analytics import churn_cadence, health_cadence
from dagster_project.analytics.model_store import Identity, ModelStore, Policy, Saved, decide
from dagster_project.warehouse_files import models_dir

pytestmark = pytest.mark.slow

CADENCED = ("churn", "health", "forecast")
# model_runs names of the cadenced models' runs
CADENCED_RUNS = "(model_name like 'churn%' or model_name = 'health_weights' or model_name like 'prophet%' " \
                "or model_name like 'auto_ets%' or model_name like 'seasonal_naive%')"


def current_versions(warehouse) -> dict[str, str]:
    store = ModelStore(models_dir(warehouse))
    return {model: store.current(model).version for model in CADENCED}


@pytest.fixture
def copied(refreshed, tmp_path):
    """A copy of the session's refreshed sample with its saved models."""
    copy = copy_of(refreshed, tmp_path)
    shutil.copytree(models_dir(refreshed.warehouse), models_dir(copy.warehouse))
    return copy


def new_runs(copy, seen: set[str]) -> list[tuple]:
    """The cadenced models' runs a refresh added: (model_name, run_kind, model_version, reason)."""
    rows = copy.query(f"select run_id, model_name, run_kind, model_version, reason from analytics.model_runs "
                      f"where {CADENCED_RUNS}")
    return [row[1:] for row in rows if row[0] not in seen]


def run_ids(copy) -> set[str]:
    return {row[0] for row in copy.query("select run_id from analytics.model_runs")}


def kinds(runs: list[tuple], prefix: str) -> set[str]:
    return {kind for name, kind, _, _ in runs if name.startswith(prefix)}


def test_within_the_cadence_the_saved_models_score_and_retrain_refits_them(refreshed, copied):
    saved, seen = current_versions(copied.warehouse), run_ids(copied)
    metadata = refresh(copied.exports, copied.warehouse, groups=("analytics",))
    runs = new_runs(copied, seen)
    # No fit, one evaluation by the saved version, for each cadenced model.
    assert {kind for _, kind, _, _ in runs} == {"evaluation"}, runs
    for prefix, model in (("churn", "churn"), ("health", "health"), ("prophet", "forecast")):
        assert {version for name, _, version, _ in runs if name.startswith(prefix)} == {saved[model]}, prefix
    assert current_versions(copied.warehouse) == saved
    assert metadata["analytics/churn_predictions"]["refitted"].value is False
    assert all("reused" in reason for *_, reason in runs)
    # Same data, same as-of: the saved model gives the very scores of the fit, and the rows accumulate.
    query = "select customer_key, churn_probability, driver_1 from analytics.churn_scores order by 1"
    assert copied.query(query) == refreshed.query(query)
    assert seen < run_ids(copied)

    seen = run_ids(copied)
    refresh(copied.exports, copied.warehouse, groups=("analytics",), settings_overrides={"retrain": True})
    runs = new_runs(copied, seen)
    refitted = current_versions(copied.warehouse)
    for prefix, model in (("churn", "churn"), ("health", "health"), ("prophet", "forecast")):
        assert kinds(runs, prefix) == {"fit"}, prefix
        assert refitted[model] != saved[model]
        assert {version for name, _, version, _ in runs if name.startswith(prefix)} == {refitted[model]}
    assert all(reason.startswith("retrain requested") for *_, reason in runs)


def test_a_model_saved_by_other_library_versions_or_settings_is_refitted_and_says_why(copied):
    saved, seen = current_versions(copied.warehouse), run_ids(copied)
    churn_metadata = ModelStore(models_dir(copied.warehouse)).current("churn").path("metadata.json")
    written = json.loads(churn_metadata.read_text())
    written["library_versions"]["lightgbm"] = "0.0.1"
    churn_metadata.write_text(json.dumps(written))
    refresh(copied.exports, copied.warehouse, groups=("analytics",), settings_overrides={"holiday_country": "none"})
    runs = new_runs(copied, seen)
    assert kinds(runs, "churn") == {"fit"} and kinds(runs, "prophet") == {"fit"}
    assert kinds(runs, "health") == {"evaluation"}  # the health weights depend on neither
    assert any("lightgbm 0.0.1 ->" in reason for name, _, _, reason in runs if name.startswith("churn"))
    assert any("holiday_country CN -> none" in reason for name, _, _, reason in runs if name.startswith("prophet"))
    now = current_versions(copied.warehouse)
    assert now["churn"] != saved["churn"] and now["forecast"] != saved["forecast"] and now["health"] == saved["health"]
    # Owner-only: a model can memorise personal data.
    folder = ModelStore(models_dir(copied.warehouse)).current("churn").folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()} == {0o600}


def test_a_data_change_that_breaks_the_churn_model_makes_the_refresh_refit_it(copied):
    """Orders of the last 90 days handed to random customers: the saved churn model and health weights no longer
    rank who bought, their ROC-AUC on the latest window falls past the threshold, and the refresh refits them."""
    seen = run_ids(copied)
    with duckdb.connect(str(copied.work)) as con:
        scramble_latest_orders(con, con.execute("select as_of_date from intermediate.int_as_of").fetchone()[0], 7)
    refresh(copied.exports, copied.warehouse, groups=("analytics",))
    runs = new_runs(copied, seen)
    for prefix in ("churn", "health"):
        assert kinds(runs, prefix) == {"evaluation", "fit"}, prefix
        assert all("fell to" in reason for name, _, _, reason in runs if name.startswith(prefix)), runs
    assert kinds(runs, "prophet") == {"evaluation"}


def scramble_latest_orders(con: duckdb.DuckDBPyConnection, as_of: date, seed: int) -> None:
    """Give each order of the 90 days before ``as_of`` to a customer drawn at random: who buys in that window no
    longer follows from anything before it."""
    start = as_of - timedelta(days=90)
    keys = con.execute("select order_id from marts.fct_orders where order_date > ? order by order_id", [start]).df()
    customers = con.execute("select distinct customer_key from marts.fct_orders where order_date <= ? order by 1",
                            [start]).df()["customer_key"].to_numpy()
    keys["new_key"] = np.random.default_rng(seed).choice(customers, len(keys))
    con.register("_keys", keys)
    con.execute("update marts.fct_orders o set customer_key = k.new_key from _keys k where o.order_id = k.order_id")
    con.unregister("_keys")


# --------------------------------------------------------------------------------------------------- the rules

def _saved(tmp_path, identity: Identity, as_of: date) -> Saved:
    store = ModelStore(tmp_path / "models")
    return store.save("m", store.new_version(), {**identity.metadata(), "as_of": as_of.isoformat()},
                      lambda folder: None)


def test_the_rules_refit_when_due_asked_replayed_or_saved_under_other_settings(tmp_path):
    identity = Identity(1, settings={"reporting_currency": "CNY"}, libraries=("numpy",))
    saved = _saved(tmp_path, identity, date(2026, 10, 1))
    weekly = Policy(7)
    assert decide(None, identity, date(2026, 10, 1), weekly).reason == "no saved model"
    assert not decide(saved, identity, date(2026, 10, 7), weekly).refit
    assert decide(saved, identity, date(2026, 10, 8), weekly).refit
    assert decide(saved, identity, date(2026, 10, 1), Policy(0)).refit
    assert decide(saved, identity, date(2026, 10, 2), replace(weekly, retrain=True)).reason.startswith("retrain")
    assert "after the as-of date" in decide(saved, identity, date(2026, 9, 30), weekly).reason
    usd = replace(identity, settings={"reporting_currency": "USD"})
    assert "reporting_currency CNY -> USD" in decide(saved, usd, date(2026, 10, 2), weekly).reason
    assert "format 1" in decide(saved, replace(identity, format=2), date(2026, 10, 2), weekly).reason
    broken = ModelStore(tmp_path / "models").current("m")
    (broken.folder / "metadata.json").write_text("{")
    assert "unreadable" in decide(ModelStore(tmp_path / "models").current("m"), identity, date(2026, 10, 2),
                                  weekly).reason


# --------------------------------------------------------------------------------------------------- three seeds

# Monitored ROC-AUC of the saved model minus its out-of-sample AUC at the fit (1,200 simulated customers, seeds 1-3),
# measured: churn +0.011 to +0.014 on the unchanged data (the monitored window overlaps the fit's until a horizon has
# passed) and -0.43 to -0.50 with the latest orders given to random customers; health +0.000 to +0.003 and -0.43 to
# -0.50. The default threshold (0.05) sits far from both.
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_monitored_auc_holds_on_unchanged_data_and_falls_past_the_threshold_when_the_data_breaks(tmp_path, seed):
    tables, _ = simulate(1200, seed=seed)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load(con, tables)
    store, weekly = ModelStore(tmp_path / "models"), Policy(7)
    keys = tables["dim_customers"]["customer_key"]
    config = churn_cadence.churn.ChurnConfig(max_training_rows=20_000)
    fitted = churn_cadence.run_on_cadence(con, AS_OF, random_clv(tables), store, weekly, "CNY", config)
    health_cadence.run_on_cadence(con, AS_OF, keys, store, weekly, "CNY")
    drops = {}
    for state in ("unchanged", "scrambled"):
        if state == "scrambled":
            scramble_latest_orders(con, AS_OF, seed)
        churn = churn_cadence.run_on_cadence(con, AS_OF, random_clv(tables), store, weekly, "CNY", config)
        health = health_cadence.run_on_cadence(con, AS_OF, keys, store, weekly, "CNY")
        drops[state] = [run.metrics["auc"] - run.metrics["reference_auc"]
                        for run in (churn.result.runs[0], health.result.runs[0])]
        assert churn.refitted == health.refitted == (state == "scrambled"), (state, churn.reason, health.reason)
    print(f"seed {seed}: churn {fitted.result.published}, AUC minus reference (churn, health): {drops}")
    assert all(-0.03 < drop < 0.04 for drop in drops["unchanged"])
    assert all(drop < -0.15 for drop in drops["scrambled"])


def test_the_cadence_settings_come_from_the_flag_then_the_environment_then_the_defaults(env, tmp_path):
    from dagster_project.cli import build_parser, refresh_settings
    from dagster_project.settings import Settings, SettingsError

    plain = Settings.load({"exports_dir": tmp_path})
    assert (plain.retrain, plain.retrain_days, plain.forecast_refit_days, plain.retrain_metric_drop) == \
        (False, 7, 7, 0.05)
    for key, value in {"CRM_RETRAIN": "yes", "CRM_RETRAIN_DAYS": "0", "CRM_FORECAST_REFIT_DAYS": "30",
                       "CRM_RETRAIN_METRIC_DROP": "0.1"}.items():
        env.setenv(key, value)
    read = Settings.load()
    assert (read.retrain, read.retrain_days, read.forecast_refit_days, read.retrain_metric_drop) == (True, 0, 30, 0.1)
    env.setenv("CRM_RETRAIN", "0")
    assert not Settings.load().retrain
    assert refresh_settings(build_parser().parse_args(["refresh", "--retrain"])).retrain
    for key, value in {"CRM_RETRAIN": "maybe", "CRM_RETRAIN_DAYS": "-1", "CRM_RETRAIN_METRIC_DROP": "2"}.items():
        env.setenv(key, value)
        with pytest.raises(SettingsError, match=key):
            Settings.load()
        env.delenv(key)
