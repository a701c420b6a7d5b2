"""Health weights on a cadence: ``health.run_health`` fits and judges the weights when the saved ones are due
(``model_store.decide``: weekly by default, ``--retrain``, other settings or library versions) or their ROC-AUC on
the latest outcomes dropped past the threshold; in between, the saved production weights score the components as of
each refresh.

Saved as JSON: both fits' weights, the evaluation figures and the quality row. The monitored metric is the saved
weights' ROC-AUC at as_of - horizon on the churn known by the as-of date (next to days since the last purchase);
its outcomes overlap the window the weights were fitted on until a horizon has passed, so it flatters them and the
trigger, which compares it with the out-of-sample figure of the fit, only fires on a real drop.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta

import duckdb
import numpy as np

from dagster_project.analytics import health
from dagster_project.analytics.churn_features import _FEATURES_SQL
from dagster_project.analytics.churn_metrics import auc
from dagster_project.analytics.model_quality import ModelQuality
from dagster_project.analytics.model_runs import ModelRun, tagged
from dagster_project.analytics.model_store import (
    Identity, ModelStore, Policy, Saved, base_metadata, fingerprint, read_json, score_or_refit,
    write_json,
)

MODEL = "health"
FORMAT = 1
STATE_FILE = "weights.json"


@dataclass
class Cadenced:
    result: health.HealthResult
    version: str | None
    refitted: bool
    reason: str


def identity(reporting_currency: str, horizon_days: int) -> Identity:
    definition = hashlib.sha256((_FEATURES_SQL + repr(health._INPUTS)).encode()).hexdigest()[:12]
    return Identity(FORMAT, settings={"reporting_currency": reporting_currency},
                    config={"horizon_days": horizon_days, "components": definition}, libraries=health.LIBRARIES)


def run_on_cadence(con: duckdb.DuckDBPyConnection, as_of: date, customer_keys: Iterable[str], store: ModelStore,
                   policy: Policy, reporting_currency: str, horizon_days: int = health.HORIZON_DAYS) -> Cadenced:
    """Score with the saved weights when they may be reused, else (or when their monitored AUC dropped) fit, judge
    and save new ones."""
    keys = list(customer_keys)
    wanted = identity(reporting_currency, horizon_days)
    decision, scored, evaluation_runs = score_or_refit(
        store, MODEL, wanted, as_of, policy, lambda saved: score_saved(con, as_of, keys, saved, horizon_days),
        lambda saved, scored: (saved.metadata["metrics"].get("out_of_sample_auc"), scored.runs[0].metrics["auc"]),
        what="saved weights")
    if scored is not None:
        return Cadenced(scored, decision.saved.version, False, decision.reason)
    result = health.run_health(con, as_of, keys, horizon_days)
    version = store.new_version()
    tagged(result.runs, version, decision.reason)
    _save(store, version, result, con, as_of, wanted, decision.reason)
    result.runs = evaluation_runs + result.runs
    return Cadenced(result, version, True, decision.reason)


def _save(store: ModelStore, version: str, result: health.HealthResult, con: duckdb.DuckDBPyConnection, as_of: date,
          wanted: Identity, reason: str) -> Saved:
    state = {"production": asdict(result.production), "validation": asdict(result.validation),
             "plan": {k: str(v) for k, v in asdict(result.plan).items()}, "evaluation": result.evaluation,
             "quality": asdict(result.quality), "note": result.note}
    plan = result.plan
    metadata = base_metadata(wanted, as_of, (plan.evaluation_cutoff, plan.as_of), fingerprint(con, as_of),
                             {"out_of_sample_auc": result.evaluation["out_of_sample_auc"],
                              "baseline_recency_auc": result.evaluation["baseline_recency_auc"]}, reason)
    return store.save(MODEL, version, metadata, lambda folder: write_json(folder / STATE_FILE, state))


def _weights(saved: dict) -> health.HealthWeights:
    saved = {**saved, "auc": math.nan if saved.get("auc") is None else saved["auc"]}
    return health.HealthWeights(**saved)


def score_saved(con: duckdb.DuckDBPyConnection, as_of: date, keys: list[str], saved: Saved,
                horizon_days: int) -> health.HealthResult:
    """The saved production weights' scores as of ``as_of`` and one evaluation run: their ROC-AUC at
    as_of - horizon on the churn known by ``as_of``, next to days since the last purchase."""
    started = time.perf_counter()
    state = read_json(saved.path(STATE_FILE))
    production, validation = _weights(state["production"]), _weights(state["validation"])
    if set(production.weights) != set(health.COMPONENTS):
        raise ValueError(f"saved components {sorted(production.weights)}, expected {list(health.COMPONENTS)}")
    cutoff = as_of - timedelta(days=horizon_days)
    latest = health.labelled_window(con, cutoff, horizon_days)
    y = latest["churned"].to_numpy(dtype=bool)
    reference = saved.metadata["metrics"].get("out_of_sample_auc")
    monitored = {"auc": auc(y, -health.weighted_score(latest, production.weights)),
                 "baseline_recency_auc": auc(y, latest["recency_days"].to_numpy()),
                 "n_eval": len(y), "n_churned_eval": int(y.sum()), "reference_auc": reference,
                 "evaluation_cutoff": cutoff.isoformat(), "days_since_fit": (as_of - saved.as_of).days}
    scores = health.score_customers(con, as_of, production, keys)
    fitted = (f"scored with the weights fitted with data up to {saved.as_of} (model version {saved.version}); "
              f"ROC-AUC on customers with a paid order by {cutoff}, judged on the {horizon_days} days after it: "
              f"{_figure(monitored['auc'])} (at its fit {_figure(reference)}, unseen window)")
    quality = ModelQuality(**state["quality"])
    quality = replace(quality, note="; ".join(n for n in (fitted, quality.note) if n))
    unscored = int(scores["health_score"].isna().sum())
    notes = [fitted, f"production weights: equal ({production.reason})" if production.fallback else "",
             f"{unscored} customers without a paid order by {as_of} have no score (band "
             f"'{health.NO_PURCHASE_BAND}')" if unscored else ""]
    plan = health.health_plan(saved.as_of, horizon_days)
    run = ModelRun(model_name=health.MODEL_NAME, purpose="production", as_of_date=as_of, train_start=None,
                   train_end=saved.as_of, holdout_end=as_of,
                   params={**production.weights, "horizon_days": horizon_days, "fallback": production.fallback},
                   metrics=monitored, libraries=health.LIBRARIES, fit_seconds=time.perf_counter() - started,
                   run_kind="evaluation", model_version=saved.version)
    evaluation = {**{k: float(v) for k, v in state["evaluation"].items() if v is not None},
                  **{f"latest_{k}": float(v) for k, v in monitored.items()
                     if isinstance(v, (int, float)) and v is not None and not np.isnan(v)}}
    return health.HealthResult(scores, production, validation, plan, evaluation, quality, [run],
                               "; ".join(n for n in notes if n) or None)


def _figure(value) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"

