"""The CLV asset: expected purchases (BG/NBD or MBG/NBD, chosen on a holdout) x Gamma-Gamma spend per customer."""


import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from dagster_project.as_of import resolved_as_of
from dagster_project.defs.assets.analytics.common import (
    analytics_asset, append_model_runs, asset_result, paid_orders_query, record_quality, write_tables,
)
from dagster_project.report import metadata_charts
from dagster_project.defs.resources import Warehouse


@analytics_asset("fct_orders")
def customer_clv(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """BG/NBD and MBG/NBD purchase models and Gamma-Gamma spend (pymc-marketing, maximum likelihood), fitted on a
    calibration period and compared on the 90 days after it; the purchase model with the lower holdout error gives
    each customer's probability alive, expected purchases over 30/90/365 days and, with the expected order value,
    the discounted 12-month CLV."""
    # Model libraries: dagster_project.defs.background_imports.
    from dagster_project.analytics import clv

    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        purchases = clv.purchase_days(con, paid_orders_query("customer_key, order_date, net_amount as amount"), as_of)
        result = clv.run_clv(purchases, as_of, progress=context.log.info)
        metadata = write_tables(con, warehouse, {"customer_clv": result.scores, "clv_validation": result.validation})
        append_model_runs(con, result.runs)
        trust = record_quality(con, [result.quality])
    context.log.info(result.quality.sentence())
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    chart = {}
    if not result.scores.empty:
        metrics |= {"clv_12m_total": float(result.scores["clv_12m"].sum()),
                    "clv_12m_median": float(result.scores["clv_12m"].median())}
        chart["clv_chart"] = MetadataValue.md(metadata_charts.bar_chart(
            clv_by_decile(result.scores["clv_12m"]), "Expected 12-month CLV by customer decile"))
    return asset_result(metadata, "customer_clv", result.scores, result.note, purchase_model=result.purchase_model,
                        **{f"metric/{k}": v for k, v in metrics.items()}, **chart, **trust)


def clv_by_decile(clv_12m: pd.Series) -> dict[str, float]:
    """Total 12-month CLV of each tenth of the customers, most valuable first ("top 10%", "10-20%", ...)."""
    ranked = clv_12m.fillna(0.0).sort_values(ascending=False, kind="stable").reset_index(drop=True)
    decile = ranked.index * 10 // max(len(ranked), 1)
    totals = ranked.groupby(decile).sum()
    return {("top 10%" if d == 0 else f"{10 * d}-{10 * d + 10}%"): float(v) for d, v in totals.items()}
