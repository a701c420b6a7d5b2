"""Churn risk, champion/challenger: LightGBM on point-in-time features is published only when it beats the best of
two baselines on an unseen window; otherwise the best baseline's probabilities are published.

Label: a customer with at least one paid order on or before a cutoff *churns* when they place no paid order in the
``horizon_days`` after it. Features (``churn_features``) are computed in DuckDB as of each cutoff.

Contenders (``CONTENDERS``): ``churn_lightgbm``; ``churn_bgnbd_p0``, the BG/NBD probability of no purchase over the
horizon, refitted at every cutoff; ``churn_recency``, days since the last purchase calibrated into a probability
(``churn_baselines``). LightGBM is published when its ROC-AUC at the evaluation cutoff is at least
``ChurnConfig.challenger_margin`` above the best baseline's; every contender's metrics go to ``model_runs``.

Time layout of ``run_churn`` (H = horizon, E = as_of - H, s = cutoff spacing, k = 0 .. n_training_cutoffs - 1):

* validation: LightGBM and the recency calibration are fitted on cutoffs E - H - k*s, whose label windows all end on
  or before E; BG/NBD is fitted on the purchases up to E. All are judged at cutoff E, whose labels are fully observed
  by as_of. Nothing is tuned on E (fixed hyper-parameters; early stopping uses a customer split of the training
  cutoffs).
* production: the published contender is refitted on cutoffs E - k*s (label windows end on or before as_of), or for
  BG/NBD on the purchases up to as_of, and scores every customer as of as_of.

At scale, past cutoffs are computed on a hashed sample of customers (``max_training_rows`` spread over the training
cutoffs, ``max_evaluation_rows`` at E) and BG/NBD is fitted on at most ``max_bgnbd_fit_rows`` of a cutoff's
customers; scoring always covers every customer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from dagster_project.analytics import churn_bgnbd
from dagster_project.analytics.churn_baselines import BGNBD_P0, RECENCY
from dagster_project.analytics.churn_contest import (  # noqa: F401 - CONTENDERS for the tests
    CONTENDERS, PUBLISHED_WORDS, BgnbdAtCutoff, chance_warning, choose, evaluation_summary, judge, production_scores,
    quality,
)
from dagster_project.analytics.churn_drivers import SUGGESTED_ACTIONS  # noqa: F401 - for the tests
from dagster_project.analytics.churn_features import (  # noqa: F401 - churn_features and churn_labels serve health
    POPULATION_SQL, STATUS_SETTLE_DAYS, churn_features, churn_labels,
)
from dagster_project.analytics.churn_metrics import CALIBRATION_COLUMNS, calibration_table
from dagster_project.analytics.churn_scores import SCORE_COLUMNS, WATCHLIST_COLUMNS, score_table, watchlist
from dagster_project.analytics.model_quality import ModelQuality
from dagster_project.analytics.model_runs import ModelRun
from dagster_project.analytics.progress import Progress, silent


@dataclass(frozen=True)
class ChurnConfig:
    horizon_days: int = 90
    n_training_cutoffs: int = 6
    cutoff_spacing_days: int = 30
    max_training_rows: int = 400_000  # across all training cutoffs; customers are sampled per cutoff above it
    max_evaluation_rows: int = 250_000  # customers sampled at the evaluation cutoff above it
    max_bgnbd_fit_rows: int = 50_000  # customers a BG/NBD fit uses at one cutoff (its predictions cover all)
    status_settle_days: int = STATUS_SETTLE_DAYS
    # LightGBM is published only if its AUC on the unseen window is at least this much above the best baseline's.
    challenger_margin: float = 0.005
    # A published score whose unseen-window AUC is at most 0.5 + this is flagged as no better than chance.
    chance_margin: float = 0.02
    seed: int = 0
    # Risk bands by predicted churn probability: low < 0.4 <= medium < 0.7 <= high.
    risk_thresholds: tuple[float, float] = (0.4, 0.7)
    # "Valuable" = clv_12m at or above this quantile of the scored customers' CLV (top 20%).
    clv_top_quantile: float = 0.8
    # Fewer churners or non-churners than this (or fewer rows than 10x it) -> no fit, or no evaluation.
    min_class_rows: int = 20


@dataclass(frozen=True)
class CutoffPlan:
    validation_training: tuple[date, ...]
    evaluation: date
    production_training: tuple[date, ...]


@dataclass
class ChurnResult:
    """``scores``: one row per customer with a paid order by as_of (SCORE_COLUMNS; ``model`` names the published
    contender); ``watchlist``: the consenting, valuable, high-risk ones (WATCHLIST_COLUMNS); ``evaluation``: every
    contender's metrics at the evaluation cutoff (``<contender>_<metric>`` without the ``churn_`` prefix), the
    published one's as ``auc`` / ``auc_active_365d``, and the cutoffs; ``calibration``: ten deciles of the published
    score next to the best baseline's (CALIBRATION_COLUMNS); ``runs``: one ModelRun per fit; ``quality``: the
    published score's ROC-AUC next to the best baseline's; ``held_back_no_consent``: valuable high-risk customers
    left off the watchlist for lack of marketing consent; ``note``: what the reader must know, else None."""

    scores: pd.DataFrame
    watchlist: pd.DataFrame
    evaluation: dict
    calibration: pd.DataFrame
    runs: list[ModelRun] = field(default_factory=list)
    note: str | None = None
    quality: ModelQuality | None = None
    published: str | None = None
    held_back_no_consent: int = 0
    consent_unknown: bool = False
    # The published contender as fitted for production (churn_contest.production_scores), for saving.
    model: object = None


def cutoff_plan(as_of: date, config: ChurnConfig) -> CutoffPlan:
    horizon, spacing = timedelta(days=config.horizon_days), timedelta(days=config.cutoff_spacing_days)
    evaluation = as_of - horizon
    steps = range(config.n_training_cutoffs)
    return CutoffPlan(
        validation_training=tuple(evaluation - horizon - k * spacing for k in steps),
        evaluation=evaluation,
        production_training=tuple(evaluation - k * spacing for k in steps),
    )


# --------------------------------------------------------------------------------------------------- frames

def _with_bgnbd(features: pd.DataFrame, config: ChurnConfig, start: dict | None) -> tuple[pd.DataFrame, BgnbdAtCutoff]:
    """``features`` plus the BG/NBD columns of a fit on (a sample of) these customers' histories; NaN without one."""
    started = time.perf_counter()
    sample = churn_bgnbd.fit_sample(features, config.max_bgnbd_fit_rows, config.seed)
    fit = churn_bgnbd.fit(*churn_bgnbd.rfm_arrays(sample), start=start) if len(sample) else None
    if fit is None:
        predictions = pd.DataFrame(np.nan, index=features.index, columns=list(churn_bgnbd.BGNBD_COLUMNS))
    else:
        predictions = churn_bgnbd.predictions(fit.params, features, config.horizon_days)
    return features.join(predictions), BgnbdAtCutoff(fit, time.perf_counter() - started)


def _labelled_frames(con, cutoffs: list[date], evaluation: date, config: ChurnConfig,
                     progress: Callable[[str], None] = silent
                     ) -> tuple[dict[date, pd.DataFrame], dict[date, BgnbdAtCutoff]]:
    """Features, BG/NBD refitted at the cutoff and the label, per cutoff, on a customer sample sized to that
    cutoff's share of the row budget. Fits run oldest first, each starting from the previous cutoff's estimate."""
    population = dict(con.execute(POPULATION_SQL, {"cutoffs": cutoffs}).fetchall())
    per_cutoff = config.max_training_rows // config.n_training_cutoffs
    counter = Progress(progress, "past cutoffs' features, BG/NBD fits and labels computed", len(cutoffs))
    frames, fits, start = {}, {}, None
    for cutoff in sorted(cutoffs):
        budget = max(per_cutoff, config.max_evaluation_rows) if cutoff == evaluation else per_cutoff
        sample = {"customer_share": budget / max(population.get(cutoff, 0), 1), "seed": config.seed,
                  "settle_days": config.status_settle_days}
        features, fits[cutoff] = _with_bgnbd(churn_features(con, cutoff, **sample), config, start)
        start = fits[cutoff].fit.params if fits[cutoff].fit else start
        frames[cutoff] = features.join(churn_labels(con, cutoff, config.horizon_days, **sample))
        counter.advance()
    return frames, fits


# --------------------------------------------------------------------------------------------------- pipeline

def run_churn(con: duckdb.DuckDBPyConnection, as_of: date, clv: pd.DataFrame | None,
              config: ChurnConfig = ChurnConfig(), progress: Callable[[str], None] = silent) -> ChurnResult:
    """Judge the contenders and publish the winner's scores as of ``as_of`` (see the module docstring).

    ``clv`` has customer_key, clv_12m (None: no watchlist). ``progress`` receives a line now and then.
    """
    plan = cutoff_plan(as_of, config)
    cutoffs = sorted({*plan.validation_training, plan.evaluation, *plan.production_training})
    frames, fits = _labelled_frames(con, cutoffs, plan.evaluation, config, progress)
    contenders, notes = judge(plan, frames, fits, as_of, config, progress)
    winner, best, why = choose(contenders, config)
    notes += [why] if why else []
    for name, contender in contenders.items():
        contender.run.metrics["published"] = name == winner
    runs = [c.run for c in contenders.values()]

    start = fits[plan.evaluation].fit.params if fits[plan.evaluation].fit else None
    current, at_as_of = _with_bgnbd(churn_features(con, as_of, settle_days=config.status_settle_days), config, start)
    # Nothing judged: the simplest contender that can be fitted is published, and the note says so loudly.
    candidates = list(dict.fromkeys(c for c in (winner, best) if c)) if winner else [RECENCY, BGNBD_P0]
    explained, published, model = None, None, None
    for candidate in candidates:
        explained, run, problem, model = production_scores(candidate, plan, frames, current, at_as_of, as_of, config,
                                                           progress)
        if explained is not None:
            published = candidate
            runs.append(run)
            break
        notes.append(problem)
    if winner is None:
        notes.insert(0, "WARNING: churn scores could not be evaluated on unseen data; " + (
            f"{PUBLISHED_WORDS[published]} is published without evidence that it ranks churners" if published
            else "nothing is published"))
    notes += [warning] if (warning := chance_warning(contenders, published, config)) else []

    evaluation = evaluation_summary(plan, contenders, published, best, config)
    calibration = pd.DataFrame(columns=list(CALIBRATION_COLUMNS))
    if published in contenders:
        calibration = calibration_table(frames[plan.evaluation]["churned"].to_numpy(),
                                        contenders[published].probability, contenders[best].probability)
    if explained is None or current.empty:
        note = "; ".join(notes) or None
        return ChurnResult(pd.DataFrame(columns=list(SCORE_COLUMNS)), pd.DataFrame(columns=list(WATCHLIST_COLUMNS)),
                           evaluation, calibration, runs, note, quality(plan, contenders, None, best, config, note))

    scores, held_back, consent_unknown = published_scores(con, explained, clv, published, config, notes)
    note = "; ".join(notes) or None
    return ChurnResult(scores, watchlist(scores), evaluation, calibration, runs, note,
                       quality(plan, contenders, published, best, config, note), published, held_back,
                       consent_unknown, model)


def published_scores(con: duckdb.DuckDBPyConnection, explained: pd.DataFrame, clv: pd.DataFrame | None,
                     published: str, config: ChurnConfig, notes: list[str]) -> tuple[pd.DataFrame, int, bool]:
    """The score table of ``explained`` probabilities, the valuable high-risk customers held back for lack of
    consent, and whether the export has no consent data; adds what the reader must know to ``notes``."""
    scores, consent_unknown = score_table(con, explained, clv, published, config.risk_thresholds,
                                          config.clv_top_quantile)
    held_back = int((scores["at_risk_high_value"] & ~scores["marketing_consent"]).sum())
    if clv is None:
        notes.append("no CLV supplied: watchlist is empty")
    if consent_unknown and held_back:
        notes.append(f"{held_back} valuable high-risk customers are held back from the watchlist: the export has "
                     "no marketing consent data, and unknown consent counts as no consent")
    return scores, held_back, consent_unknown
