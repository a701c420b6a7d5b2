"""Segmentation assets: RFM, customer states, spend deciles, lifecycle stages, demographic cuts, cohorts."""


from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue

from dagster_project.analytics import segments, cohorts
from dagster_project.as_of import resolved_as_of
from dagster_project.defs.assets.analytics.common import (
    SCHEMA, analytics_asset, asset_result, read_paid_orders, write_tables,
)
from dagster_project.report import metadata_charts
from dagster_project.defs.resources import Warehouse


@analytics_asset("fct_orders")
def rfm_segments(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """RFM per customer: recency, frequency, monetary, 1-5 quintile scores and the named segment
    (champions ... lost; mapping in docs/analytics.md)."""
    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        table = segments.rfm_segments(read_paid_orders(con), as_of)
        metadata = write_tables(con, warehouse, {"rfm_segments": table})
    sizes = table["segment"].value_counts().to_dict() if not table.empty else {}
    chart = {"segment_chart": MetadataValue.md(metadata_charts.bar_chart(sizes, "Customers per RFM segment"))} \
        if sizes else {}
    return asset_result(metadata, "rfm_segments", table, segment_sizes=MetadataValue.json(sizes), **chart)


@analytics_asset("fct_orders")
def cpm_states(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Customer-state management: the 10 active / lapsed groups from purchases, spend, ticket, interval and
    time since the last purchase (thresholds in docs/analytics.md)."""
    with warehouse.connect() as con:
        table = segments.cpm_states(read_paid_orders(con), resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"cpm_states": table})
    sizes = table["cpm_state"].value_counts().to_dict() if not table.empty else {}
    return asset_result(metadata, "cpm_states", table, state_sizes=MetadataValue.json(sizes))


@analytics_asset("fct_orders")
def spend_deciles(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Customers ranked by spend into 10 groups: revenue, share, cumulative share, average ticket (Pareto)."""
    with warehouse.connect() as con:
        result = segments.spend_deciles(read_paid_orders(con), resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"spend_deciles": result.table})
    return asset_result(metadata, "spend_deciles", result.table, top20_revenue_share=float(result.top20_share or 0.0))


@analytics_asset("fct_orders", "dim_customers", "fct_interactions", "fct_opportunities")
def lifecycle_stages(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Lifecycle stage per customer and open lead: potential, interested, intent, customer, loyal, churned."""
    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        table = segments.lifecycle_stages(
            _columns(con, "dim_customers", ["customer_key", "signup_date"]),
            read_paid_orders(con),
            last_engagements(con, as_of),
            _columns(con, "fct_opportunities", list(segments.OPPORTUNITY_SCHEMA)),
            as_of,
        )
        metadata = write_tables(con, warehouse, {"lifecycle_stages": table})
    sizes = table["lifecycle_stage"].value_counts().to_dict() if not table.empty else {}
    return asset_result(metadata, "lifecycle_stages", table, stage_sizes=MetadataValue.json(sizes))


@analytics_asset("dim_customers", "fct_orders", deps=(AssetKey([SCHEMA, "customer_clv"]),))
def demographic_cuts(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Customers, buyers, revenue, repeat rate and CLV by region, age band, gender and acquisition channel."""
    with warehouse.connect() as con:
        table = segments.demographic_cuts(
            _columns(con, "dim_customers", list(segments.CUSTOMER_SCHEMA)),
            read_paid_orders(con),
            con.execute(f"select customer_key, clv_12m from {SCHEMA}.customer_clv").df(),
            resolved_as_of(con),
        )
        metadata = write_tables(con, warehouse, {"demographic_cuts": table})
    return asset_result(metadata, "demographic_cuts", table)


@analytics_asset("fct_orders")
def cohort_retention(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Monthly acquisition cohorts: retention % and revenue per customer by months since the first order."""
    with warehouse.connect() as con:
        table = cohorts.monthly_cohorts(read_paid_orders(con), resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"cohort_retention": table})
    return asset_result(metadata, "cohort_retention", table)


def _columns(con, mart: str, columns: list[str]):
    """Only the columns a segmentation reads: the marts' other columns (and a whole table) need not be in pandas."""
    return con.execute(f"select {', '.join(columns)} from marts.{mart}").df()


def last_engagements(con, as_of):
    """Each customer's latest engagement (segments.ENGAGEMENT_TYPES) on or before the as-of date: all that
    lifecycle_stages needs of the interactions (engaged recently = the latest one is recent), one row per customer
    instead of the largest table in pandas."""
    return con.execute("""
        select customer_key, arg_max(interaction_type, occurred_date) as interaction_type,
               max(occurred_date) as occurred_date
        from marts.fct_interactions
        where list_contains($types, interaction_type) and occurred_date <= $as_of
        group by customer_key
    """, {"types": list(segments.ENGAGEMENT_TYPES), "as_of": as_of}).df()
