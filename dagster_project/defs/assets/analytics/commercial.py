"""Sales, marketing, service and basket assets."""


import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult

from dagster_project import refresh_state
from dagster_project.analytics import baskets, sales, service
from dagster_project.as_of import resolved_as_of
from dagster_project.defs.assets.analytics.common import (
    analytics_asset, append_model_runs, asset_result, empty_note, record_quality, write_tables,
)
from dagster_project.defs.resources import Warehouse


@analytics_asset("fct_opportunities", "fct_opportunity_stages", "fct_orders", "dim_sales_reps")
def sales_funnel(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Funnel by stage (reached, current, conversion, time in stage), win rate and sales cycle by source,
    campaign, rep and month, and rep performance."""
    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        stages = sales.funnel_by_stage(con, as_of)
        conversion = sales.funnel_conversion(con, as_of)
        metadata = write_tables(con, warehouse, {
            "funnel_stages": stages, "funnel_conversion": conversion,
            "rep_performance": sales.rep_performance(con, as_of),
        })
        note = empty_note(con, "fct_opportunities")
    overall = conversion[conversion["dimension"] == "overall"]
    metrics = {"metric/win_rate": float(overall["win_rate"].iloc[0])} \
        if not overall.empty and pd.notna(overall["win_rate"].iloc[0]) else {}
    return asset_result(metadata, "funnel_stages", stages, note, **metrics)


# customer_360: its post-hook stores the customer measures the lift matches on (analytics/customer_measures.py).
@analytics_asset("dim_campaigns", "fct_interactions", "fct_opportunities", "fct_orders", "dim_customers",
                 "customer_360")
def campaign_effectiveness(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Per campaign: reach, participants, leads, conversion, attributed revenue, cost, ROI (NULL with a reason when
    nothing can be attributed), and the extra revenue and purchases participants made over matched customers the
    campaign reached, with 95% intervals and a placebo check (analytics.model_quality)."""
    # Model libraries: dagster_project.defs.background_imports.
    from dagster_project.analytics import campaigns

    # A campaign's lift is estimated again only when its inputs changed (analytics/campaign_lift_reuse.py), unless the
    # refresh rebuilds everything.
    rebuild = refresh_state.full_refresh_asked(context.run.tags)
    with warehouse.connect() as con:
        result = campaigns.campaign_effectiveness(con, resolved_as_of(con), code=refresh_state.code_version(),
                                                  reuse=not rebuild)
        context.log.info(f"campaign lift: {result.estimated} campaigns estimated, {result.reused} unchanged since "
                         "their saved estimate")
        table = result.table
        metadata = write_tables(con, warehouse, {"campaign_effectiveness": table})
        append_model_runs(con, result.runs)
        trust = record_quality(con, [result.quality])
        note = empty_note(con, "dim_campaigns")
    figures = {"campaigns_estimated": result.estimated, "campaigns_reused": result.reused}
    if not table.empty:
        figures |= {"metric/total_cost": float(table["cost"].sum()),
                   "metric/attributed_revenue": float(table["attributed_revenue"].sum()),
                   "metric/campaigns_without_reach_data": int((table["lift_note"] == campaigns.NO_REACH).sum())}
        production = next(run for run in result.runs if run.purpose == "production").metrics
        if production["participants"]:
            figures |= {f"metric/{key}": float(production[key]) for key in (
                "revenue_lift", "revenue_lift_ci_low", "revenue_lift_ci_high", "purchase_lift")}
    return asset_result(metadata, "campaign_effectiveness", table, note, **figures, **trust)


@analytics_asset("fct_tickets", "fct_surveys")
def service_metrics(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """First-response and resolution times, resolution rate, backlog, CSAT and NPS by month, category and rep."""
    with warehouse.connect() as con:
        table = service.service_metrics(con, resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"service_metrics": table})
        note = empty_note(con, "fct_tickets")
    overall = table[(table["dimension"] == "overall") & (table["period"] == "all")]
    metrics = {f"metric/{column}": float(overall[column].iloc[0]) for column in
               ("median_first_response_hours", "median_resolution_hours", "resolution_rate", "nps")
               if not overall.empty and pd.notna(overall[column].iloc[0])}
    return asset_result(metadata, "service_metrics", table, note, **metrics)


@analytics_asset("fct_order_items", "dim_products")
def product_associations(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Products bought together (support, confidence, lift) in SQL, and "customers who bought X also buy Y"."""
    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        pairs = baskets.product_pairs(con, as_of)
        metadata = write_tables(con, warehouse, {
            "product_pairs": pairs, "also_bought": baskets.also_bought(con, as_of),
        })
        note = empty_note(con, "fct_order_items")
    return asset_result(metadata, "product_pairs", pairs, note)
