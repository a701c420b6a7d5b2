"""Churn on a cadence: the contest (``churn.run_churn``) runs when the saved model is due (``model_store.decide``:
weekly by default, ``--retrain``, other settings or library versions) or its ROC-AUC on the latest outcomes dropped
past the threshold; in between, the saved winner scores the customers as of each refresh.

Saved with the winner: LightGBM's own text model (with the category sets and rounds it predicts with), the recency
baseline's isotonic steps as JSON, or for BG/NBD P0 only its name (BG/NBD itself is refitted at every refresh: a
scipy fit of a second or less); the contest's evaluation figures, calibration table and quality row.

Scoring with a saved model repeats ``run_churn``'s production step without the contest: features as of the as-of
date, BG/NBD refitted there, scored and explained by the saved winner. The monitored metric is the saved winner's
ROC-AUC at the cutoff as_of - horizon, whose outcomes are known by the as-of date; next to it, days since the last
purchase on the same customers. Until a horizon has passed since the fit, those outcomes overlap the windows the
model was fitted on, so the figure flatters the model; the trigger compares it with the out-of-sample ROC-AUC of the
contest, so a drop past the threshold is a real one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from dagster_project.analytics import churn, churn_model
from dagster_project.analytics.churn_baselines import (
    BGNBD_P0, RECENCY, RecencyBaseline, p0_scores, recency_probability, recency_scores,
)
from dagster_project.analytics.churn_contest import LIBRARIES, LIGHTGBM, PUBLISHED_WORDS
from dagster_project.analytics.churn_features import _FEATURES_SQL
from dagster_project.analytics.churn_metrics import CALIBRATION_COLUMNS, auc, score_metrics
from dagster_project.analytics.model_quality import ModelQuality
from dagster_project.analytics.model_runs import ModelRun, tagged
from dagster_project.analytics.model_store import (
    Identity, ModelStore, Policy, Saved, base_metadata, fingerprint, read_json, score_or_refit,
    write_json,
)
from dagster_project.analytics.progress import silent

MODEL = "churn"
# Bump when the saved files or the meaning of the features change (the features' SQL is fingerprinted as well).
FORMAT = 1
LIGHTGBM_FILE, RECENCY_FILE, STATE_FILE, CALIBRATION_FILE = ("lightgbm.txt", "recency.json", "state.json",
                                                            "calibration.json")


@dataclass
class Cadenced:
    """A churn result (fitted or scored by a saved model), all the runs to append, the version that scored and
    whether the contest ran (and why)."""

    result: churn.ChurnResult
    version: str | None
    refitted: bool
    reason: str


def identity(config: churn.ChurnConfig, reporting_currency: str) -> Identity:
    features = hashlib.sha256(_FEATURES_SQL.encode()).hexdigest()[:12]
    return Identity(FORMAT, settings={"reporting_currency": reporting_currency},
                    config=json.loads(json.dumps({**asdict(config), "features_sql": features})),
                    libraries=tuple(dict.fromkeys(LIBRARIES[LIGHTGBM] + LIBRARIES[RECENCY])))


def run_on_cadence(con: duckdb.DuckDBPyConnection, as_of: date, clv: pd.DataFrame | None, store: ModelStore,
                   policy: Policy, reporting_currency: str, config: churn.ChurnConfig = churn.ChurnConfig(),
                   progress: Callable[[str], None] = silent) -> Cadenced:
    """Score with the saved winner when it may be reused, else (or when its monitored AUC dropped) run the contest
    and save the winner."""
    wanted = identity(config, reporting_currency)
    decision, scored, evaluation_runs = score_or_refit(
        store, MODEL, wanted, as_of, policy, lambda saved: score_saved(con, as_of, clv, saved, config, progress),
        lambda saved, scored: (saved.metadata["metrics"].get("auc"), scored.runs[0].metrics.get("auc")))
    if scored is not None:
        return Cadenced(scored, decision.saved.version, False, decision.reason)
    progress(f"fitting the churn contenders ({decision.reason})")
    result = churn.run_churn(con, as_of, clv, config, progress)
    version = store.new_version() if result.published else None
    tagged(result.runs, version, decision.reason)
    if version:
        save(store, version, result, con, as_of, wanted, decision.reason)
    result.runs = evaluation_runs + result.runs
    return Cadenced(result, version, True, decision.reason)


# --------------------------------------------------------------------------------------------------- saving

def save(store: ModelStore, version: str, result: churn.ChurnResult, con: duckdb.DuckDBPyConnection, as_of: date,
         wanted: Identity, reason: str) -> Saved:
    production = next(run for run in result.runs if run.purpose == "production")
    state = {"published": result.published, "evaluation": result.evaluation, "note": result.note,
             "quality": asdict(result.quality) if result.quality else None}

    def write(folder: Path) -> None:
        if result.published == LIGHTGBM:
            model = result.model
            model.booster.save_model(str(folder / LIGHTGBM_FILE), num_iteration=model.rounds)
            state["lightgbm"] = {"categories": model.categories, "rounds": model.rounds}
        elif result.published == RECENCY:
            calibration = result.model.calibration
            write_json(folder / RECENCY_FILE, {"x": calibration.X_thresholds_.tolist(),
                                               "y": calibration.y_thresholds_.tolist(),
                                               "n_train": result.model.n_train})
        write_json(folder / STATE_FILE, state)
        write_json(folder / CALIBRATION_FILE, result.calibration.to_dict(orient="list"))

    metrics = {key: result.evaluation.get(key) for key in ("auc", "auc_active_365d", "n_eval", "positive_rate")}
    metadata = base_metadata(wanted, as_of, (production.train_start, production.train_end), fingerprint(con, as_of),
                             {**metrics, "published": result.published}, reason)
    return store.save(MODEL, version, metadata, write)


@dataclass(frozen=True)
class _IsotonicSteps:
    """A fitted isotonic regression's steps, predicting as scikit-learn's does (linear between steps, clipped)."""

    x: np.ndarray
    y: np.ndarray

    def predict(self, values) -> np.ndarray:
        return np.interp(np.asarray(values, float), self.x, self.y)


def load(saved: Saved):
    """The saved winner: (name, model) with model a LightgbmModel, a RecencyBaseline-like or None (BG/NBD P0)."""
    state = read_json(saved.path(STATE_FILE))
    published = state["published"]
    if published == LIGHTGBM:
        import lightgbm as lgb  # as in churn_model.fit: after the entry point set OpenMP's environment

        booster = lgb.Booster(model_file=str(saved.path(LIGHTGBM_FILE)))
        booster.best_iteration = int(state["lightgbm"]["rounds"])
        return published, churn_model.LightgbmModel(booster, state["lightgbm"]["categories"], 0.0), state
    if published == RECENCY:
        steps = read_json(saved.path(RECENCY_FILE))
        calibration = _IsotonicSteps(np.asarray(steps["x"], float), np.asarray(steps["y"], float))
        return published, RecencyBaseline(calibration, steps["n_train"], 0.0), state
    if published == BGNBD_P0:
        return published, None, state
    raise ValueError(f"unknown saved churn contender {published!r}")


# --------------------------------------------------------------------------------------------------- scoring

def _probability(published: str, model, frame: pd.DataFrame) -> np.ndarray:
    if published == LIGHTGBM:
        return churn_model.predict(model, frame)
    if published == RECENCY:
        return recency_probability(model, frame)
    return frame["bgnbd_p_no_purchase"].to_numpy()


def score_saved(con: duckdb.DuckDBPyConnection, as_of: date, clv: pd.DataFrame | None, saved: Saved,
                config: churn.ChurnConfig, progress: Callable[[str], None] = silent) -> churn.ChurnResult:
    """The saved winner's scores as of ``as_of`` and one evaluation run: its ROC-AUC (and the other score metrics)
    at as_of - horizon on the outcomes known by ``as_of``, next to days since the last purchase."""
    started = time.perf_counter()
    published, model, state = load(saved)
    plan = churn.cutoff_plan(as_of, config)
    frames, fits = churn._labelled_frames(con, [plan.evaluation], plan.evaluation, config)
    latest = frames[plan.evaluation]
    y, recency = latest["churned"].to_numpy(), latest["recency_days"].to_numpy()
    monitored = {"auc": float("nan"), "n_eval": float(len(y))}
    if len(latest) and (published != BGNBD_P0 or fits[plan.evaluation].fit is not None):
        monitored = {**score_metrics(y, _probability(published, model, latest), recency),
                     "baseline_recency_auc": auc(y, recency)}
    reference = saved.metadata["metrics"].get("auc")
    monitored |= {"reference_auc": reference, "evaluation_cutoff": plan.evaluation.isoformat(),
                  "days_since_fit": (as_of - saved.as_of).days}

    start = fits[plan.evaluation].fit.params if fits[plan.evaluation].fit else None
    current, at_as_of = churn._with_bgnbd(
        churn.churn_features(con, as_of, settle_days=config.status_settle_days), config, start)
    progress(f"scoring {len(current):,} customers with the saved {PUBLISHED_WORDS[published]} ({saved.version})")
    if published == LIGHTGBM:
        explained = churn_model.explained_predictions(model, current)
    elif published == RECENCY:
        explained = recency_scores(model, current)
    elif at_as_of.fit is None:
        raise ValueError(f"no BG/NBD fit at {as_of} for the saved BG/NBD P0 to score with")
    else:
        explained = p0_scores(at_as_of.fit.params, current, config.horizon_days)

    fitted = (f"scored by the {PUBLISHED_WORDS[published]} fitted with data up to {saved.as_of} (model version "
              f"{saved.version}); ROC-AUC on customers with a paid order by {plan.evaluation}, judged on the "
              f"{config.horizon_days} days after it: {_figure(monitored['auc'])} (at its fit "
              f"{_figure(reference)}, unseen window)")
    notes = [fitted] + [n for n in (state.get("note") or "").split("; ") if n]
    scores, held_back, consent_unknown = churn.published_scores(con, explained, clv, published, config, notes)
    note = "; ".join(notes)
    run = ModelRun(model_name=published, purpose="production", as_of_date=as_of, train_start=None,
                   train_end=saved.as_of, holdout_end=as_of, params={"horizon_days": config.horizon_days},
                   metrics=monitored, libraries=LIBRARIES[published], fit_seconds=time.perf_counter() - started,
                   run_kind="evaluation", model_version=saved.version)
    quality = ModelQuality(**state["quality"]) if state.get("quality") else None
    if quality is not None:
        quality = replace(quality, note="; ".join(n for n in (fitted, quality.note) if n))
    calibration = pd.DataFrame(read_json(saved.path(CALIBRATION_FILE))).reindex(columns=list(CALIBRATION_COLUMNS))
    evaluation = {**state["evaluation"], **{f"latest_{k}": v for k, v in monitored.items()},
                  "model_version": saved.version}
    return churn.ChurnResult(scores, churn.watchlist(scores), evaluation, calibration, [run], note, quality,
                             published, held_back, consent_unknown, model)


def _figure(value) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"
