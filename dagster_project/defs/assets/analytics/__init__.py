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
from dagster_project.defs.assets.analytics.segments import (
    cohort_retention, cpm_states, demographic_cuts, lifecycle_stages, rfm_segments, spend_deciles,
)

ANALYTICS_ASSETS = [
    rfm_segments, cpm_states, spend_deciles, lifecycle_stages, demographic_cuts, cohort_retention,
    customer_clv, churn_predictions, health_scores, sales_forecast, sales_funnel, campaign_effectiveness,
    service_metrics, product_associations,
]

__all__ = [
    "ANALYTICS_ASSETS", "campaign_effectiveness", "churn_predictions", "cohort_retention", "cpm_states", "customer_clv",
    "demographic_cuts", "for_people", "health_scores", "lifecycle_stages", "mart",
    "product_associations", "rfm_segments", "sales_forecast", "sales_funnel", "service_metrics", "spend_deciles",
]
