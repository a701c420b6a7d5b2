"""From explained churn probabilities to the published tables: risk band, suggested action, value, consent and the
watchlist of valuable, high-risk, contactable customers."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from dagster_project.analytics.churn_drivers import suggested_action

SCORE_COLUMNS = (
    "customer_key", "churn_probability", "risk_band", "driver_1", "driver_2", "driver_3", "main_driver_feature",
    "suggested_action", "clv_12m", "high_value", "marketing_consent", "at_risk_high_value", "on_watchlist", "model",
)
WATCHLIST_COLUMNS = (
    "customer_key", "clv_12m", "churn_probability", "value_at_risk", "risk_band", "main_driver", "suggested_action",
)


def risk_band(probability: np.ndarray, thresholds: tuple[float, float]) -> np.ndarray:
    low, high = thresholds
    return np.where(probability >= high, "high", np.where(probability >= low, "medium", "low"))


def _consent(con: duckdb.DuckDBPyConnection) -> tuple[pd.Series, bool]:
    """Marketing consent per customer (unknown counts as no consent) and whether the export has no consent data."""
    frame = con.execute("SELECT customer_key, marketing_consent FROM marts.dim_customers").df()
    consent = frame.set_index("customer_key")["marketing_consent"]
    return consent.fillna(False).astype(bool), bool(consent.isna().all())


def score_table(con: duckdb.DuckDBPyConnection, explained: pd.DataFrame, clv: pd.DataFrame | None, model: str,
                risk_thresholds: tuple[float, float], clv_top_quantile: float) -> tuple[pd.DataFrame, bool]:
    """SCORE_COLUMNS from ``explained`` (indexed by customer_key: churn_probability, main_driver_feature,
    driver_1..3), and whether the export has no consent data. "Valuable" = clv_12m at or above its
    ``clv_top_quantile``."""
    scores = explained.copy()
    scores["risk_band"] = risk_band(scores["churn_probability"].to_numpy(), risk_thresholds)
    scores["suggested_action"] = suggested_action(scores["main_driver_feature"], scores["risk_band"])
    clv_12m = (clv.set_index("customer_key")["clv_12m"].astype(float) if clv is not None
               else pd.Series(dtype=float))
    scores["clv_12m"] = clv_12m.reindex(scores.index)
    threshold = scores["clv_12m"].quantile(clv_top_quantile)
    scores["high_value"] = scores["clv_12m"].ge(threshold).to_numpy() if pd.notna(threshold) else False
    consent, consent_unknown = _consent(con)
    scores["marketing_consent"] = consent.reindex(scores.index, fill_value=False).to_numpy()
    scores["at_risk_high_value"] = scores["high_value"] & (scores["risk_band"] == "high")
    scores["on_watchlist"] = scores["at_risk_high_value"] & scores["marketing_consent"]
    scores["model"] = model
    return scores.rename_axis("customer_key").reset_index()[list(SCORE_COLUMNS)], consent_unknown


def watchlist(scores: pd.DataFrame) -> pd.DataFrame:
    """Valuable, high-risk, contactable customers, largest expected loss (CLV x churn probability) first."""
    rows = scores[scores["on_watchlist"]].assign(
        value_at_risk=lambda s: s["clv_12m"] * s["churn_probability"], main_driver=lambda s: s["driver_1"])
    return rows.sort_values("value_at_risk", ascending=False)[list(WATCHLIST_COLUMNS)].reset_index(drop=True)
