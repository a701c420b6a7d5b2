"""One row per model fit or evaluation, so accuracy can be tracked across refreshes (the ``analytics.model_runs``
table, appended to by every refresh).

``run_kind`` says what happened: ``fit`` (parameters estimated at this refresh) or ``evaluation`` (a model saved by an
earlier refresh scored this refresh's data and was judged on the latest outcomes, without being refitted).
``model_version`` names the saved version a fit produced or an evaluation used (``models/<model>/<version>/`` beside
the warehouse; None for models that are not saved), and ``reason`` why the model was refitted or reused.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from importlib import metadata

import pandas as pd

PURPOSES = ("production", "validation", "backtest")
RUN_KINDS = ("fit", "evaluation")

MODEL_RUNS_COLUMNS = (
    "run_id", "model_name", "purpose", "as_of_date", "train_start", "train_end", "holdout_end", "time_unit",
    "params", "metrics", "library_versions", "fit_seconds", "created_at", "run_kind", "model_version", "reason",
)


def library_versions(*packages: str) -> dict[str, str]:
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@dataclass
class ModelRun:
    model_name: str
    purpose: str
    as_of_date: date
    train_start: date | None
    train_end: date | None
    params: dict[str, float]
    metrics: dict[str, float]
    time_unit: str = "days"
    holdout_end: date | None = None
    libraries: tuple[str, ...] = ()
    fit_seconds: float = 0.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    run_kind: str = "fit"
    model_version: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}, got {self.purpose!r}")
        if self.run_kind not in RUN_KINDS:
            raise ValueError(f"run_kind must be one of {RUN_KINDS}, got {self.run_kind!r}")

    def as_record(self) -> dict:
        return {
            "run_id": self.run_id,
            "model_name": self.model_name,
            "purpose": self.purpose,
            "as_of_date": self.as_of_date,
            "train_start": self.train_start,
            "train_end": self.train_end,
            "holdout_end": self.holdout_end,
            "time_unit": self.time_unit,
            "params": json.dumps({k: _plain(v) for k, v in self.params.items()}, sort_keys=True),
            "metrics": json.dumps({k: _plain(v) for k, v in self.metrics.items()}, sort_keys=True),
            "library_versions": json.dumps(library_versions(*self.libraries), sort_keys=True),
            "fit_seconds": float(self.fit_seconds),
            "created_at": datetime.now(timezone.utc).replace(tzinfo=None),
            "run_kind": self.run_kind,
            "model_version": self.model_version,
            "reason": self.reason,
        }


def _plain(value):
    """JSON-safe scalar: numpy numbers become floats, NaN becomes None."""
    if value is None:
        return None
    if isinstance(value, (str, bool, int)):
        return value
    value = float(value)
    return None if value != value else value


def tagged(runs: list[ModelRun], version: str | None, reason: str | None) -> list[ModelRun]:
    """``runs`` marked as produced by the fit saved as ``version`` (or not saved: None), for ``reason``."""
    for run in runs:
        run.model_version, run.reason = version, reason
    return runs


def model_runs_frame(runs: list[ModelRun]) -> pd.DataFrame:
    return pd.DataFrame([r.as_record() for r in runs], columns=list(MODEL_RUNS_COLUMNS))
