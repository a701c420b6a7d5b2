"""The churn asset: risk scores, drivers and the watchlist from the contender that won on an unseen window."""


from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue

from dagster_project.as_of import resolved_as_of
from dagster_project.defs.assets.analytics.common import (
    SCHEMA, analytics_asset, append_model_runs, asset_result, preview, record_quality, write_tables,
)
from dagster_project.report import metadata_charts
from dagster_project.defs.resources import SavedModels, Warehouse


@analytics_asset("customer_360", "fct_orders", "fct_interactions", "fct_tickets", "fct_surveys", "dim_customers",
                 deps=(AssetKey([SCHEMA, "customer_clv"]),))
def churn_predictions(context: AssetExecutionContext, warehouse: Warehouse,
                      models: SavedModels) -> MaterializeResult:
    """Who stops buying in the next 90 days: LightGBM on past cutoffs against two baselines (BG/NBD probability of
    no purchase, refitted at each cutoff, and days since the last purchase), judged on a later unseen window; the
    winner's scores, risk bands, top drivers and the watchlist are published. The winner is saved and scores the
    refreshes until it is due for a refit (weekly by default, --retrain) or its ROC-AUC on the latest outcomes
    drops past the threshold."""
    # Model libraries: dagster_project.defs.background_imports.
    from dagster_project.analytics import churn_cadence

    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        clv_scores = con.execute(f"select customer_key, clv_12m from {SCHEMA}.customer_clv").df()
        cadenced = churn_cadence.run_on_cadence(con, as_of, clv_scores, models.store, models.policy(),
                                                warehouse.reporting_currency, progress=context.log.info)
        result = cadenced.result
        metadata = write_tables(con, warehouse, {
            "churn_scores": result.scores, "churn_watchlist": result.watchlist,
            "churn_calibration": result.calibration,
        })
        append_model_runs(con, result.runs)
        trust = record_quality(con, [result.quality]) if result.quality else {}
    if result.quality:
        context.log.info(result.quality.sentence())
    if result.note and "WARNING" in result.note:
        context.log.warning(result.note)
    metrics = {f"metric/{k}": float(v) for k, v in result.evaluation.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    metrics["metric/watchlist_held_back_no_consent"] = result.held_back_no_consent
    bands = {band: int((result.scores["risk_band"] == band).sum()) for band in ("low", "medium", "high")} \
        if not result.scores.empty else {}
    chart = {"risk_chart": MetadataValue.md(metadata_charts.bar_chart(bands, "Customers per churn risk band"))} \
        if bands else {}
    context.log.info(f"churn model {'refitted' if cadenced.refitted else 'reused'}: {cadenced.reason}")
    return asset_result(metadata, "churn_scores", result.scores, result.note, watchlist=preview(result.watchlist),
                        model_version=cadenced.version or "none", refitted=cadenced.refitted,
                        refit_reason=cadenced.reason,
                        risk_band_sizes=MetadataValue.json(bands), published_model=result.published or "none",
                        best_baseline=str(result.evaluation.get("best_baseline", "none")),
                        **metrics, **chart, **trust)
