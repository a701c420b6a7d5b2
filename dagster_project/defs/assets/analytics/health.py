"""The health-score asset."""

import math

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from dagster_project.as_of import resolved_as_of
from dagster_project.defs.assets.analytics.common import (
    analytics_asset, append_model_runs, asset_result, record_quality, write_tables,
)
from dagster_project.defs.resources import SavedModels, Warehouse


@analytics_asset("customer_360", "fct_orders", "fct_interactions", "fct_tickets", "fct_surveys", "dim_customers")
def health_scores(context: AssetExecutionContext, warehouse: Warehouse, models: SavedModels) -> MaterializeResult:
    """0-100 health score from activity, value, service and engagement, weighted by how well each predicted churn
    over the 90 days after a past cutoff, judged on a later 90-day window next to days since the last purchase. The
    weights are saved and score the refreshes until they are due for a refit (weekly by default, --retrain) or
    their ROC-AUC on the latest outcomes drops past the threshold."""
    # Model libraries: dagster_project.defs.background_imports.
    from dagster_project.analytics import health_cadence

    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        customers = con.execute("select customer_key from marts.customer_360 order by customer_key").df()
        cadenced = health_cadence.run_on_cadence(con, as_of, customers["customer_key"], models.store,
                                                 models.policy(), warehouse.reporting_currency)
        result = cadenced.result
        metadata = write_tables(con, warehouse, {"health_scores": result.scores})
        append_model_runs(con, result.runs)
        trust = record_quality(con, [result.quality])
    context.log.info(result.quality.sentence())
    context.log.info(f"health weights {'refitted' if cadenced.refitted else 'reused'}: {cadenced.reason}")
    metrics = {f"metric/{key}": value for key, value in result.evaluation.items() if math.isfinite(value)}
    return asset_result(
        metadata, "health_scores", result.scores, result.note,
        weights=MetadataValue.json(result.production.weights), model_version=cadenced.version or "none",
        refitted=cadenced.refitted, refit_reason=cadenced.reason,
        validation_weights=MetadataValue.json(result.validation.weights), **metrics, **trust,
    )
