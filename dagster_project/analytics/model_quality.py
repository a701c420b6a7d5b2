"""How far to trust a published model: its metric on data it did not see, next to the best simple baseline's.

Every model asset returns one ``ModelQuality`` per published output and writes it to ``analytics.model_quality``
(one row per model, replaced by each refresh); the report's "How far to trust these numbers" section, the Dagster
metadata and docs/analytics.md all read these rows, so the reader sees the same figures everywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

MODEL_QUALITY_COLUMNS = (
    "model", "question", "metric", "higher_is_better", "published", "published_value", "baseline",
    "baseline_value", "beats_baseline", "n_eval", "evaluation", "note",
)


@dataclass(frozen=True)
class ModelQuality:
    """``model``: the analytics output it judges (``churn``, ``clv``, ``health``, ``campaign_lift``, ``forecast``).
    ``question``: what the model answers, in a few words ("who stops buying in the next 90 days").
    ``metric``: the metric name as people write it ("ROC-AUC", "MASE"); ``higher_is_better`` its direction.
    ``published``: the contender whose numbers are published; ``published_value`` its metric on unseen data.
    ``baseline``: the best simple baseline, in words ("days since the last purchase"); ``baseline_value`` its metric
    on the same unseen data. ``beats_baseline``: whether the published numbers beat it (False also when there was no
    evaluation). ``n_eval``: rows (customers, days, campaigns) the metric was computed on. ``evaluation``: the unseen
    data, in words ("customers with a purchase by 2026-08-02, judged on the next 90 days"). ``note``: anything the
    reader must know (why there is no evaluation, which terms could not be backtested), else None."""

    model: str
    question: str
    metric: str
    higher_is_better: bool
    published: str
    published_value: float | None
    baseline: str
    baseline_value: float | None
    beats_baseline: bool
    n_eval: int
    evaluation: str
    note: str | None = None

    def __post_init__(self) -> None:
        for name in ("published_value", "baseline_value"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(float(value)):
                object.__setattr__(self, name, None)

    @property
    def evaluated(self) -> bool:
        return self.published_value is not None and self.baseline_value is not None

    def sentence(self) -> str:
        """Plain words, e.g. "who stops buying in the next 90 days: better than days since the last purchase
        (ROC-AUC 0.84 vs 0.80)"."""
        if not self.evaluated:
            return f"{self.question}: not evaluated on unseen data" + (f" ({self.note})" if self.note else "")
        verdict = "better than" if self.beats_baseline else "NOT better than"
        return (f"{self.question}: {verdict} {self.baseline} "
                f"({self.metric} {figure(self.published_value)} vs {figure(self.baseline_value)})")

    def metadata(self) -> dict:
        """Dagster metadata entries (``trust/...``) with the same figures the report shows."""
        entries = {"trust/summary": self.sentence(), "trust/published": self.published,
                   "trust/beats_baseline": self.beats_baseline, "trust/evaluated_on": self.evaluation,
                   "trust/n_eval": int(self.n_eval)}
        if self.published_value is not None:
            entries[f"trust/{_key(self.metric)}"] = float(self.published_value)
        if self.baseline_value is not None:
            entries[f"trust/baseline_{_key(self.metric)}"] = float(self.baseline_value)
        if self.note:
            entries["trust/note"] = self.note
        return entries


def figure(value: float) -> str:
    """A metric as the sentence shows it: two decimals, or three significant digits below 0.1."""
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def _key(metric: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in metric.lower()).strip("_")


def model_quality_frame(qualities: list[ModelQuality]) -> pd.DataFrame:
    return pd.DataFrame([asdict(q) for q in qualities], columns=list(MODEL_QUALITY_COLUMNS))
