"""Saved models beside the warehouse, and whether a saved model may score this refresh's data instead of a new fit.

Layout (``warehouse_files.models_dir``): ``models/<model>/<version>/`` holds the model's files in their libraries'
own formats (LightGBM's text model, Prophet's JSON; numbers as JSON, tables as Parquet; never a pickle) and
``metadata.json``: when it was trained, the as-of date and training window, a fingerprint of the data, the settings,
configuration and library versions it was fitted under, its out-of-sample metrics and why it was fitted.
``models/<model>/current`` names the version in use. Folders are owner-only (0700) and files 0600: a model can
memorise personal data. A version is written under a hidden temporary name and renamed into place when complete, and
only then does ``current`` move to it (an atomic rename), so a refresh killed while saving leaves the previous version
in use. The last ``KEEP_VERSIONS`` versions are kept.

``decide`` says whether to refit: when there is no usable saved model, on ``--retrain``, when the saved model was
written by another format, under other settings or configuration, or by other library versions (never reused
silently: the reason is recorded), when the as-of date is before the data it was fitted on (a replay must not see
later data), and when it is ``Policy.cadence_days`` as-of days old. The caller then scores with the saved model and
may still refit when its monitored metric dropped (``metric_drop``); ``score_or_refit`` does all three.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.analytics.model_runs import library_versions
from dagster_project.files import atomic_write

KEEP_VERSIONS = 8
# The forecasts' folder in the store (dagster_project.analytics.forecast_cadence): named here, where the refresh can
# look for a saved forecast without importing the forecasting libraries.
FORECAST_MODEL = "forecast"
METADATA = "metadata.json"
CURRENT = "current"
_FOLDER_MODE, _FILE_MODE = 0o700, 0o600


@dataclass(frozen=True)
class Identity:
    """What a saved model must match to be reused. ``format``: the layout of its files and the definition of its
    inputs (bump when they change); ``settings``: the warehouse settings it depends on (reporting currency, holiday
    country); ``config``: its own configuration; ``libraries``: the packages whose installed versions must match."""

    format: int
    settings: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    libraries: tuple[str, ...] = ()

    def metadata(self) -> dict:
        return {"format": self.format, "settings": self.settings, "config": self.config,
                "library_versions": library_versions(*self.libraries)}


@dataclass(frozen=True)
class Policy:
    """``cadence_days``: refit when the saved model is this many as-of days old (0: at every refresh); ``retrain``:
    refit now (``--retrain``); ``metric_drop``: refit when the monitored metric fell more than this below the
    out-of-sample figure the model was saved with."""

    cadence_days: int
    retrain: bool = False
    metric_drop: float = 0.05


@dataclass(frozen=True)
class Saved:
    model: str
    version: str
    folder: Path
    metadata: dict

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.metadata["as_of"])

    def path(self, name: str) -> Path:
        return self.folder / name


@dataclass(frozen=True)
class Decision:
    refit: bool
    reason: str
    saved: Saved | None = None


class ModelStore:
    """The ``models/`` folder of one warehouse."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def current(self, model: str) -> Saved | None:
        """The version ``current`` names, or None when there is none (or it is unreadable: metadata {})."""
        pointer = self.root / model / CURRENT
        try:
            version = pointer.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        folder = self.root / model / version
        if not version or "/" in version or not folder.is_dir():
            return None
        try:
            metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            metadata = {}
        return Saved(model, version, folder, metadata)

    @staticmethod
    def new_version() -> str:
        """A sortable, unique version name: the UTC time of the fit and a random suffix."""
        return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"

    def save(self, model: str, version: str, metadata: dict, write: Callable[[Path], None]) -> Saved:
        """Write a version: ``write(folder)`` puts the model's files there, then ``metadata.json`` (with ``model`` and
        ``version``); the folder is renamed into place and ``current`` moved to it."""
        parent = self.root / model
        for folder in (self.root, parent):
            folder.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
            os.chmod(folder, _FOLDER_MODE)
        temporary = parent / f".{version}.partial"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(mode=_FOLDER_MODE)
        write(temporary)
        metadata = {"model": model, "version": version, **metadata}
        write_json(temporary / METADATA, metadata)
        for path in temporary.rglob("*"):
            os.chmod(path, _FOLDER_MODE if path.is_dir() else _FILE_MODE)
        os.chmod(temporary, _FOLDER_MODE)
        os.replace(temporary, parent / version)
        with atomic_write(parent / CURRENT, "w", permissions=_FILE_MODE, encoding="utf-8") as out:
            out.write(version + "\n")
        self._prune(model, keep={version})
        return Saved(model, version, parent / version, metadata)

    def _prune(self, model: str, keep: set[str]) -> None:
        """Keep the newest KEEP_VERSIONS versions (and ``keep``); drop leftovers of killed saves."""
        parent = self.root / model
        versions = sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
        for name in versions[:-KEEP_VERSIONS]:
            if name not in keep:
                shutil.rmtree(parent / name, ignore_errors=True)
        for leftover in parent.glob(".*.partial"):
            shutil.rmtree(leftover, ignore_errors=True)


# --------------------------------------------------------------------------------------------------- decisions

def changes(saved: dict, identity: Identity) -> list[str]:
    """Why a saved model's metadata does not match ``identity``, in words; empty when it matches."""
    if not saved:
        return ["its metadata is unreadable"]
    found = []
    if saved.get("format") != identity.format:
        found.append(f"saved in format {saved.get('format')}, this code writes format {identity.format}")
    for section, words in (("settings", "settings"), ("config", "configuration")):
        before, now = saved.get(section) or {}, getattr(identity, section)
        differ = [f"{key} {before.get(key)} -> {now.get(key)}" for key in sorted(set(before) | set(now))
                  if before.get(key) != now.get(key)]
        if differ:
            found.append(f"{words} changed ({', '.join(differ)})")
    before, now = saved.get("library_versions") or {}, library_versions(*identity.libraries)
    differ = [f"{name} {before.get(name)} -> {version}" for name, version in now.items() if before.get(name) != version]
    if differ:
        found.append(f"saved by other library versions ({', '.join(differ)})")
    return found


def decide(saved: Saved | None, identity: Identity, as_of: date, policy: Policy) -> Decision:
    """Refit or score with ``saved`` (see the module docstring); the reason is recorded either way."""
    if saved is None:
        return Decision(True, "no saved model")
    name = f"saved model {saved.version}"
    if policy.retrain:
        return Decision(True, f"retrain requested (--retrain / CRM_RETRAIN); replaces {name}", saved)
    found = changes(saved.metadata, identity)
    if found:
        return Decision(True, f"{name} not reused: {'; '.join(found)}", saved)
    age = (as_of - saved.as_of).days
    if age < 0:
        return Decision(True, f"{name} was fitted on data up to {saved.as_of}, after the as-of date {as_of}", saved)
    cadence = f"fitted {age} days before the as-of date, refitted every {policy.cadence_days} days"
    if age >= policy.cadence_days:
        return Decision(True, f"{name} is due: {cadence}", saved)
    return Decision(False, f"{name} reused: {cadence}", saved)


def metric_drop(reference: float | None, current: float | None, policy: Policy,
                metric: str = "ROC-AUC") -> str | None:
    """Why to refit when ``current`` (the saved model on the latest outcomes) fell more than ``policy.metric_drop``
    below ``reference`` (its out-of-sample figure when saved; higher is better), else None."""
    if reference is None or current is None or math.isnan(reference) or math.isnan(current):
        return None
    if reference - current > policy.metric_drop:
        return (f"{metric} on the latest window with known outcomes fell to {current:.3f}, {reference - current:.3f} "
                f"below {reference:.3f} at its fit (threshold {policy.metric_drop})")
    return None



def score_or_refit(store: ModelStore, model: str, wanted: Identity, as_of: date, policy: Policy,
                   score: Callable[[Saved], Any], monitored: Callable[[Saved, Any], tuple[float | None, float | None]],
                   what: str = "saved model") -> tuple[Decision, Any | None, list]:
    """The cadence both churn and health follow: ``decide``; when the saved model may stand, ``score`` with it (a
    result whose ``runs[0]`` is its evaluation run) and compare its monitored metric (``monitored``: the figure at
    its fit and on the latest outcomes) with ``metric_drop``. Returns the decision, the scored result when it stands
    (else None: refit for the decision's reason) and the runs that evaluated a saved model found wanting."""
    decision = decide(store.current(model), wanted, as_of, policy)
    if decision.refit:
        return decision, None, []
    saved = decision.saved
    try:
        scored = score(saved)
    except Exception as error:  # noqa: BLE001 - a saved model that cannot be used is refitted, and the reason says why
        return Decision(True, f"{what} {saved.version} could not be used ({type(error).__name__}: {error})",
                        saved), None, []
    drop = metric_drop(*monitored(saved, scored), policy)
    scored.runs[0].reason = decision.reason if drop is None else f"{decision.reason}; refitted: {drop}"
    if drop is None:
        return decision, scored, []
    return Decision(True, f"{what} {saved.version}: {drop}", saved), None, scored.runs

def fingerprint(con: duckdb.DuckDBPyConnection, as_of: date) -> str:
    """Paid orders up to ``as_of``: their count and an order-independent hash of their rows, to tell later whether
    two fits saw the same data."""
    count, digest = con.execute(
        "select count(*), coalesce(sum(hash(customer_key, order_date, amount, status)), 0) "
        "from marts.fct_orders where order_date <= ?", [as_of]).fetchone()
    return f"orders:{count}:{int(digest) % 2 ** 64:016x}"


def base_metadata(identity: Identity, as_of: date, window: tuple[date | None, date | None], data: str,
                  metrics: dict, reason: str) -> dict:
    """The metadata every saved model carries (the model adds its own keys)."""
    return {
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "as_of": as_of.isoformat(),
        "training_window": {"start": _iso(window[0]), "end": _iso(window[1])},
        "data_fingerprint": data,
        **identity.metadata(),
        "metrics": metrics,
        "reason": reason,
    }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def write_json(path: Path, data) -> None:
    """JSON with NaN as null, so any reader can parse it."""
    path.write_text(json.dumps(_plain(data), indent=1, sort_keys=True, default=str), encoding="utf-8")


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
