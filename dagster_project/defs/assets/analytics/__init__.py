"""Customer analytics as Dagster assets: thin wrappers that read the marts, call the pure functions in
``dagster_project.analytics`` and write documented tables to the warehouse's ``analytics`` schema.

Every asset uses the as-of date the dbt run resolved (``intermediate.int_as_of``), so a replayed ``--as-of`` only
sees data dated on or before it, and degrades to empty tables plus a note when the export lacks what it needs.
"""

from dagster_project.defs.assets.analytics.churn import churn_predictions
from dagster_project.defs.assets.analytics.clv import customer_clv
from dagster_project.defs.assets.analytics.commercial import (
    campaign_effectiveness, product_associations, sales_funnel, service_metrics,
)
from dagster_project.defs.assets.analytics.common import for_people, mart
from dagster_project.defs.assets.analytics.forecast import sales_forecast
from dagster_project.defs.assets.analytics.health import health_scores
from dagster_project.defs.assets.analytics.segments import SEGMENTATION_KEYS, segmentations

ANALYTICS_ASSETS = [
    segmentations, customer_clv, churn_predictions, health_scores, sales_forecast, sales_funnel,
    campaign_effectiveness, service_metrics, product_associations,
]

__all__ = [
    "ANALYTICS_ASSETS", "SEGMENTATION_KEYS", "campaign_effectiveness", "churn_predictions", "customer_clv",
    "for_people", "health_scores", "mart", "product_associations", "sales_forecast", "sales_funnel", "segmentations",
    "service_metrics",
]
