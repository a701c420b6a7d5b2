"""Champion/challenger for churn: fit every contender on the training cutoffs, judge each at the unseen evaluation
cutoff, pick the one to publish, refit it for production, and describe the outcome (model runs, ModelQuality and
loud notes when the published score is unevaluated or no better than chance)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dagster_project.analytics import churn_bgnbd, churn_model
from dagster_project.analytics.churn_baselines import (
    BASELINE_WORDS, BGNBD_P0, RECENCY, fit_recency, p0_scores, recency_probability, recency_scores,
)
from dagster_project.analytics.churn_features import CATEGORICAL_FEATURES
from dagster_project.analytics.churn_metrics import auc_standard_error, score_metrics
from dagster_project.analytics.model_quality import ModelQuality
from dagster_project.analytics.model_runs import ModelRun

if TYPE_CHECKING:
    from dagster_project.analytics.churn import ChurnConfig, CutoffPlan

LIGHTGBM = churn_model.MODEL_NAME
CONTENDERS = (LIGHTGBM, BGNBD_P0, RECENCY)
PUBLISHED_WORDS = {LIGHTGBM: "LightGBM churn model", **BASELINE_WORDS}
LIBRARIES = {LIGHTGBM: churn_model.LIBRARIES, BGNBD_P0: ("scipy",), RECENCY: ("scikit-learn",)}


@dataclass
class BgnbdAtCutoff:
    fit: churn_bgnbd.BgnbdFit | None
    seconds: float


@dataclass
class Contender:
    name: str
    metrics: dict[str, float]
    probability: np.ndarray  # at the evaluation cutoff
    run: ModelRun

    @property
    def auc(self) -> float:
        return self.metrics["auc"]


def training_set(frames: list[pd.DataFrame], config: ChurnConfig) -> pd.DataFrame:
    """Stack the cutoffs, each capped at its share of ``max_training_rows`` (the hash sample is only approximate)."""
    cap = config.max_training_rows // config.n_training_cutoffs
    capped = [f.sample(cap, random_state=config.seed) if len(f) > cap else f for f in frames if len(f)]
    if not capped:
        return pd.DataFrame(columns=["churned", "recency_days"])
    # Category sets differ between cutoffs: stack as text, the model fixes one category set.
    return pd.concat([f.astype({c: str for c in CATEGORICAL_FEATURES}) for f in capped])


def too_few(rows: pd.DataFrame, config: ChurnConfig) -> str | None:
    """Why ``rows`` are too few to fit or judge a churn score on, or None."""
    churners = int(rows["churned"].sum()) if len(rows) else 0
    stayers = len(rows) - churners
    if len(rows) < 10 * config.min_class_rows or min(churners, stayers) < config.min_class_rows:
        return (f"{len(rows)} rows ({churners} churners, {stayers} non-churners); need at least "
                f"{10 * config.min_class_rows} rows and {config.min_class_rows} of each class")
    return None


def _run(name: str, purpose: str, as_of: date, cutoffs: tuple[date, ...] | None, end: date, params: dict,
         metrics: dict, seconds: float, config: ChurnConfig) -> ModelRun:
    """train_start = first training cutoff (None for BG/NBD, fitted on all history up to ``end``); train_end = the
    end of the last training label window (or the BG/NBD fit date)."""
    params = {**params, "horizon_days": config.horizon_days, "status_settle_days": config.status_settle_days,
              "challenger_margin": config.challenger_margin, "seed": config.seed}
    if cutoffs:
        params |= {"n_training_cutoffs": len(cutoffs), "cutoff_spacing_days": config.cutoff_spacing_days,
                   "max_training_rows": config.max_training_rows}
    return ModelRun(
        model_name=name, purpose=purpose, as_of_date=as_of, train_start=min(cutoffs) if cutoffs else None,
        train_end=end, holdout_end=as_of if purpose == "validation" else None, params=params, metrics=metrics,
        libraries=LIBRARIES[name], fit_seconds=seconds,
    )


# --------------------------------------------------------------------------------------------------- validation

def judge(plan: CutoffPlan, frames: dict[date, pd.DataFrame], fits: dict[date, BgnbdAtCutoff], as_of: date,
          config: ChurnConfig, progress: Callable[[str], None]) -> tuple[dict[str, Contender], list[str]]:
    """Every contender that could be fitted, judged at the evaluation cutoff; notes on the ones that could not.
    Too few customers or churners at the evaluation cutoff: nobody is judged."""
    held_out = frames[plan.evaluation]
    problem = too_few(held_out, config)
    if problem:
        return {}, [f"no evaluation at {plan.evaluation}: {problem}"]
    y, recency = held_out["churned"].to_numpy(), held_out["recency_days"].to_numpy()
    train = training_set([frames[c] for c in plan.validation_training], config)
    train_end = max(plan.validation_training) + timedelta(days=config.horizon_days)
    train_info = {"n_train": float(len(train)), "train_positive_rate": float(train["churned"].mean())}
    notes, out = [], {}

    problem = too_few(train, config)
    if problem:
        notes.append(f"LightGBM and the recency baseline not evaluated: training cutoffs hold {problem}")
    else:
        progress(f"fitting the validation LightGBM on {len(train):,} rows, to be judged at {plan.evaluation}")
        model = churn_model.fit(train, config.seed)
        probability = churn_model.predict(model, held_out)
        metrics = {**score_metrics(y, probability, recency), **train_info}
        params = {**churn_model.params_record(), "num_boost_round": model.rounds}
        out[LIGHTGBM] = Contender(LIGHTGBM, metrics, probability, _run(
            LIGHTGBM, "validation", as_of, plan.validation_training, train_end, params, metrics, model.fit_seconds,
            config))
        recency_model = fit_recency(train)
        probability = recency_probability(recency_model, held_out)
        metrics = {**score_metrics(y, probability, recency), **train_info}
        out[RECENCY] = Contender(RECENCY, metrics, probability, _run(
            RECENCY, "validation", as_of, plan.validation_training, train_end, {"calibration": "isotonic"},
            metrics, recency_model.fit_seconds, config))

    at_evaluation = fits[plan.evaluation]
    if at_evaluation.fit is None:
        notes.append(f"BG/NBD baseline not evaluated: fewer than {churn_bgnbd.MIN_REPEAT_CUSTOMERS} repeat buyers "
                     f"by {plan.evaluation}")
    else:
        probability = held_out["bgnbd_p_no_purchase"].to_numpy()
        metrics = {**score_metrics(y, probability, recency),
                   "auc_one_minus_p_alive": score_metrics(y, 1 - held_out["p_alive"].to_numpy(), recency)["auc"],
                   "n_fit": float(at_evaluation.fit.n_customers)}
        out[BGNBD_P0] = Contender(BGNBD_P0, metrics, probability, _run(
            BGNBD_P0, "validation", as_of, None, plan.evaluation, at_evaluation.fit.params, metrics,
            at_evaluation.seconds, config))
    return out, notes


def choose(contenders: dict[str, Contender], config: ChurnConfig) -> tuple[str | None, str | None, str | None]:
    """(winner, best baseline, why a baseline won): LightGBM needs the margin over the best judged baseline."""
    baselines = [name for name in (BGNBD_P0, RECENCY) if name in contenders]
    best = max(baselines, key=lambda name: contenders[name].auc) if baselines else None
    challenger = contenders.get(LIGHTGBM)
    if challenger and (best is None or challenger.auc >= contenders[best].auc + config.challenger_margin):
        return LIGHTGBM, best, None
    if best is None:
        return None, None, None
    if challenger:
        why = (f"LightGBM (ROC-AUC {challenger.auc:.3f}) did not beat {BASELINE_WORDS[best]} "
               f"({contenders[best].auc:.3f}) by the required {config.challenger_margin}: the baseline is published")
    else:
        why = f"LightGBM could not be evaluated: {BASELINE_WORDS[best]} is published"
    return best, best, why


def evaluation_summary(plan: CutoffPlan, contenders: dict[str, Contender], published: str | None,
                       best: str | None, config: ChurnConfig) -> dict:
    """Every contender's metrics as ``<name without churn_>_<metric>``; the published one's AUCs as ``auc`` and
    ``auc_active_365d``."""
    summary: dict = {"evaluation_cutoff": plan.evaluation, "training_cutoffs": plan.validation_training,
                     "published": published or "none", "best_baseline": best or "none",
                     "challenger_margin": config.challenger_margin}
    for name, contender in contenders.items():
        summary |= {f"{name.removeprefix('churn_')}_{k}": v for k, v in contender.metrics.items()}
        summary |= {k: contender.metrics[k] for k in ("n_eval", "n_eval_active_365d", "positive_rate")}
    if published in contenders:
        summary |= {"auc": contenders[published].auc,
                    "auc_active_365d": contenders[published].metrics["auc_active_365d"]}
    return summary


# --------------------------------------------------------------------------------------------------- production

def production_scores(name: str, plan: CutoffPlan, frames: dict[date, pd.DataFrame], current: pd.DataFrame,
                      at_as_of: BgnbdAtCutoff, as_of: date, config: ChurnConfig, progress: Callable[[str], None]
                      ) -> tuple[pd.DataFrame | None, ModelRun | None, str | None, object]:
    """Contender ``name`` refitted for production and its explained probabilities for ``current`` (churn_probability,
    main_driver_feature, driver_1..3), the run and the fitted model (LightgbmModel, RecencyBaseline, or the BG/NBD
    parameters); (None, None, why, None) when it cannot be fitted."""
    train = training_set([frames[c] for c in plan.production_training], config)
    problem = too_few(train, config)
    info = {"n_train": float(len(train)), "published": True}
    if name == BGNBD_P0:
        if at_as_of.fit is None:
            return (None, None, f"no BG/NBD fit at {as_of}: fewer than {churn_bgnbd.MIN_REPEAT_CUSTOMERS} repeat "
                                "buyers", None)
        run = _run(BGNBD_P0, "production", as_of, None, as_of, at_as_of.fit.params,
                   {"n_fit": float(at_as_of.fit.n_customers), "published": True}, at_as_of.seconds, config)
        return p0_scores(at_as_of.fit.params, current, config.horizon_days), run, None, at_as_of.fit.params
    if problem:
        return None, None, f"no production {PUBLISHED_WORDS[name]}: training cutoffs hold {problem}", None
    info["train_positive_rate"] = float(train["churned"].mean())
    if name == LIGHTGBM:
        progress(f"fitting the production LightGBM on {len(train):,} rows")
        model = churn_model.fit(train, config.seed)
        progress(f"scoring {len(current):,} customers and explaining their top drivers")
        params = {**churn_model.params_record(), "num_boost_round": model.rounds}
        run = _run(LIGHTGBM, "production", as_of, plan.production_training, as_of, params, info, model.fit_seconds,
                   config)
        return churn_model.explained_predictions(model, current), run, None, model
    model = fit_recency(train)
    run = _run(RECENCY, "production", as_of, plan.production_training, as_of, {"calibration": "isotonic"}, info,
               model.fit_seconds, config)
    return recency_scores(model, current), run, None, model


# --------------------------------------------------------------------------------------------------- outcome

def quality(plan: CutoffPlan, contenders: dict[str, Contender], published: str | None, best: str | None,
            config: ChurnConfig, note: str | None) -> ModelQuality:
    """The published score's ROC-AUC on the unseen window next to the best baseline's."""
    judged, baseline = contenders.get(published), contenders.get(best)
    return ModelQuality(
        model="churn", question=f"who stops buying in the next {config.horizon_days} days", metric="ROC-AUC",
        higher_is_better=True, published=PUBLISHED_WORDS.get(published, "nothing"),
        published_value=judged.auc if judged else None,
        baseline=BASELINE_WORDS.get(best, "no baseline could be evaluated"),
        baseline_value=baseline.auc if baseline else None,
        beats_baseline=bool(published == LIGHTGBM and judged and baseline
                            and judged.auc >= baseline.auc + config.challenger_margin),
        n_eval=int(judged.metrics["n_eval"]) if judged else 0,
        evaluation=(f"customers with a paid order by {plan.evaluation}, judged on the {config.horizon_days} days "
                    f"after it"),
        note=note,
    )


def chance_warning(contenders: dict[str, Contender], published: str | None, config: ChurnConfig) -> str | None:
    """A loud note when the published score ranks churners no better than chance on the unseen window: its AUC is
    within ``chance_margin`` of 0.5, or within two standard errors (a small window cannot show better)."""
    judged = contenders.get(published)
    if judged is None or not math.isfinite(judged.auc):
        return None
    churners = round(judged.metrics["positive_rate"] * judged.metrics["n_eval"])
    error = auc_standard_error(judged.auc, churners, int(judged.metrics["n_eval"]) - churners)
    threshold = 0.5 + max(config.chance_margin, 2 * error)
    if judged.auc > threshold:
        return None
    return (f"WARNING: the published churn score ({PUBLISHED_WORDS[published]}) ranks churners no better than chance "
            f"on the unseen window (ROC-AUC {judged.auc:.3f}, not above {threshold:.3f}); do not act on it")
