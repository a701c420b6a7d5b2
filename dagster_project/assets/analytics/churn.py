"""The churn asset: risk scores, drivers and the watchlist, judged against baselines."""


from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue

from dagster_project.analytics import churn, clv
from dagster_project.assets.analytics.common import (
    SCHEMA, analytics_asset, append_model_runs, asset_result, paid_transactions, preview,
    write_tables,
)
from dagster_project.report import metadata_charts
from dagster_project.resources import Warehouse


@analytics_asset("customer_360", "fct_orders", "fct_interactions", "fct_tickets", "fct_surveys", "dim_customers",
        deps=(AssetKey([SCHEMA, "customer_clv"]),))
def churn_predictions(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """LightGBM churn model (no purchase in the next 90 days) trained on past cutoffs, evaluated on a later unseen
    window next to the BG/NBD probability-alive baseline; scores, risk bands, top-3 drivers and the watchlist."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        clv_scores = con.execute(f"select customer_key, clv_12m from {SCHEMA}.customer_clv").df()
        plan = churn.cutoff_plan(as_of, churn.ChurnConfig())
        earliest = min(*plan.validation_training, plan.evaluation, *plan.production_training)
        scorer = clv.bgnbd_scorer(paid_transactions(con), earliest, progress=context.log.info)
        result = churn.run_churn(con, as_of, scorer, clv_scores, progress=context.log.info)
        metadata = write_tables(con, warehouse, {
            "churn_scores": result.scores, "churn_watchlist": result.watchlist,
            "churn_calibration": result.calibration,
        })
        append_model_runs(con, result.runs)
    metrics = {f"metric/{k}": float(v) for k, v in result.evaluation.items() if isinstance(v, (int, float))}
    bands = {band: int((result.scores["risk_band"] == band).sum()) for band in ("low", "medium", "high")} \
        if not result.scores.empty else {}
    chart = {"risk_chart": MetadataValue.md(metadata_charts.bar_chart(bands, "Customers per churn risk band"))} \
        if bands else {}
    return asset_result(metadata, "churn_scores", result.scores, result.note, watchlist=preview(result.watchlist),
                   risk_band_sizes=MetadataValue.json(bands), **metrics, **chart)
