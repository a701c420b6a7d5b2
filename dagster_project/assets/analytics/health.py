"""The health-score asset."""

from datetime import timedelta

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue

from dagster_project.analytics import churn, health
from dagster_project.assets.analytics.common import SCHEMA, analytics_asset, asset_result, write_tables
from dagster_project.resources import Warehouse


# churn_features computes customer_360's measures at any cutoff; these are the two it names differently.
CHURN_TO_360_COLUMNS = {"revenue_total": "revenue", "avg_satisfaction": "avg_satisfaction_365d"}


@analytics_asset("customer_360", "fct_orders", deps=(AssetKey([SCHEMA, "customer_clv"]),))
def health_scores(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """0-100 health score from activity, value, service and engagement, weighted by how well each predicted
    churn over the 90 days after a past cutoff."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        cutoff = as_of - timedelta(days=90)
        past = churn.churn_features(con, cutoff).rename(columns=CHURN_TO_360_COLUMNS).reset_index()
        labels = churn.churn_labels(con, cutoff, 90).reindex(past["customer_key"]).fillna(False).to_numpy()
        weights = health.fit_health_weights(health.health_components(past), labels)
        current = con.execute(
            f"select c.*, v.clv_12m from marts.customer_360 c left join {SCHEMA}.customer_clv v using (customer_key)"
        ).df()
        table = health.health_scores(current, weights)
        metadata = write_tables(con, warehouse, {"health_scores": table})
    return asset_result(
        metadata, "health_scores", table, weights.reason if weights.fallback else None,
        weights=MetadataValue.json(weights.weights), **{"metric/weights_auc": float(weights.auc or 0.0)},
    )
