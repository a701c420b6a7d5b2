""""How far to trust these numbers": every published model's metric on data it did not see next to its best simple
baseline (``analytics.model_quality``), in plain words, and the warning a chart of a model that did not beat its
baseline carries."""

from __future__ import annotations

import html

import duckdb
import pandas as pd

from dagster_project.analytics.model_quality import figure
from dagster_project.report.data import has_rows
from dagster_project.report.i18n import Translator

# The report's sections that draw a model's output, by model.
SECTIONS_OF_MODEL = {
    "forecast": ("kpis", "revenue_trend"),
    "campaign_lift": ("campaigns",),
    "clv": ("clv",),
    "churn": ("churn_risk", "watchlist"),
}


def model_quality(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not has_rows(con, "analytics", "model_quality"):
        return None
    return con.execute("select * from analytics.model_quality order by model").df()


def _trusted(row) -> bool:
    return bool(row.beats_baseline) and pd.notna(row.published_value) and pd.notna(row.baseline_value)


def _question(row, t: Translator) -> str:
    return t.value("trust_question", row.model) if t.lang == "zh" else str(row.question)


def sentence(row, t: Translator) -> str:
    """"who stops buying in the next 90 days: better than days since the last purchase (ROC-AUC 0.84 vs 0.80)"."""
    question = _question(row, t)
    if pd.isna(row.published_value) or pd.isna(row.baseline_value):
        return t("trust_not_evaluated", question=question)
    key = "trust_better" if row.beats_baseline else "trust_not_better"
    return t(key, question=question, baseline=t.value("baseline", row.baseline), metric=t.value("metric", row.metric),
             value=figure(row.published_value), baseline_value=figure(row.baseline_value))


def warning(quality: pd.DataFrame | None, section: str, t: Translator) -> str:
    """The visible warning of a section whose model did not beat its baseline (or was not evaluated); else ""."""
    if quality is None:
        return ""
    models = [model for model, sections in SECTIONS_OF_MODEL.items() if section in sections]
    rows = [row for row in quality.itertuples() if row.model in models and not _trusted(row)]
    return "".join(f'<p class="warning" data-model="{html.escape(row.model)}">⚠ '
                   f'{html.escape(t("trust_warning", sentence=sentence(row, t)))}</p>' for row in rows)


def trust_body(quality: pd.DataFrame, t: Translator) -> str:
    items = []
    for row in quality.itertuples():
        tone = "good" if _trusted(row) else "bad"
        published = t("trust_published", published=t.value("contender", row.published), n=f"{int(row.n_eval):,}")
        details = [published] + ([str(row.evaluation)] if t.lang == "en" and pd.notna(row.evaluation) else [])
        if pd.notna(row.note) and row.note and t.lang == "en":
            details.append(str(row.note))
        items.append(f'<li data-model="{html.escape(row.model)}" class="{tone}"><b>'
                     f"{html.escape(sentence(row, t))}</b><br><span class=\"note\">"
                     f"{html.escape(' · '.join(details))}</span></li>")
    return (f'<p class="note">{html.escape(t("trust_intro"))}</p><ul class="trust">{"".join(items)}</ul>')
