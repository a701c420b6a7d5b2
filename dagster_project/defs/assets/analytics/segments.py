"""Segmentation assets: RFM, customer states, spend deciles, lifecycle stages, demographic cuts, cohorts.

One Dagster step for the six: each starts from the warehouse's paid orders, which the step reads once (at a million
customers, reading them took seconds per segmentation). Each is still an asset of its own, with its own table,
dependencies and metadata, and can be materialised alone."""

from collections.abc import Callable
from dataclasses import dataclass

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from dagster_project.analytics import cohorts, segments
from dagster_project.as_of import resolved_as_of
from dagster_project.defs.assets.analytics.common import (
    GROUP, SCHEMA, asset_result, mart, read_paid_orders, write_tables,
)
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.report import metadata_charts
from dagster_project.defs.resources import Warehouse


def _columns(con, mart_name: str, columns: list[str]):
    """Only the columns a segmentation reads: the marts' other columns (and a whole table) need not be in pandas."""
    return con.execute(f"select {', '.join(columns)} from marts.{mart_name}").df()


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


def _rfm_segments(con, warehouse, orders, as_of) -> MaterializeResult:
    table = segments.rfm_segments(orders, as_of)
    metadata = write_tables(con, warehouse, {"rfm_segments": table})
    sizes = table["segment"].value_counts().to_dict() if not table.empty else {}
    chart = {"segment_chart": MetadataValue.md(metadata_charts.bar_chart(sizes, "Customers per RFM segment"))} \
        if sizes else {}
    return asset_result(metadata, "rfm_segments", table, segment_sizes=MetadataValue.json(sizes), **chart)


def _cpm_states(con, warehouse, orders, as_of) -> MaterializeResult:
    table = segments.cpm_states(orders, as_of)
    metadata = write_tables(con, warehouse, {"cpm_states": table})
    sizes = table["cpm_state"].value_counts().to_dict() if not table.empty else {}
    return asset_result(metadata, "cpm_states", table, state_sizes=MetadataValue.json(sizes))


def _spend_deciles(con, warehouse, orders, as_of) -> MaterializeResult:
    result = segments.spend_deciles(orders, as_of)
    metadata = write_tables(con, warehouse, {"spend_deciles": result.table})
    return asset_result(metadata, "spend_deciles", result.table, top20_revenue_share=float(result.top20_share or 0.0))


def _lifecycle_stages(con, warehouse, orders, as_of) -> MaterializeResult:
    table = segments.lifecycle_stages(
        _columns(con, "dim_customers", ["customer_key", "signup_date"]),
        orders,
        last_engagements(con, as_of),
        _columns(con, "fct_opportunities", list(segments.OPPORTUNITY_SCHEMA)),
        as_of,
    )
    metadata = write_tables(con, warehouse, {"lifecycle_stages": table})
    sizes = table["lifecycle_stage"].value_counts().to_dict() if not table.empty else {}
    return asset_result(metadata, "lifecycle_stages", table, stage_sizes=MetadataValue.json(sizes))


def _demographic_cuts(con, warehouse, orders, as_of) -> MaterializeResult:
    table = segments.demographic_cuts(
        _columns(con, "dim_customers", list(segments.CUSTOMER_SCHEMA)),
        orders,
        con.execute(f"select customer_key, clv_12m from {SCHEMA}.customer_clv").df(),
        as_of,
    )
    metadata = write_tables(con, warehouse, {"demographic_cuts": table})
    return asset_result(metadata, "demographic_cuts", table)


def _cohort_retention(con, warehouse, orders, as_of) -> MaterializeResult:
    table = cohorts.monthly_cohorts(orders, as_of)
    metadata = write_tables(con, warehouse, {"cohort_retention": table})
    return asset_result(metadata, "cohort_retention", table)


@dataclass(frozen=True)
class _Segmentation:
    name: str
    # (connection, warehouse, paid orders, as-of date) -> the asset's materialisation, its table written
    build: Callable[..., MaterializeResult]
    marts: tuple[str, ...]
    description: str
    analytics: tuple[str, ...] = ()  # analytics assets it reads besides the marts

    @property
    def key(self) -> AssetKey:
        return AssetKey([SCHEMA, self.name])


SEGMENTATIONS = (
    _Segmentation("rfm_segments", _rfm_segments, ("fct_orders",),
                  "RFM per customer: recency, frequency, monetary, 1-5 quintile scores and the named segment "
                  "(champions ... lost; mapping in docs/analytics.md)."),
    _Segmentation("cpm_states", _cpm_states, ("fct_orders",),
                  "Customer-state management: the 10 active / lapsed groups from purchases, spend, ticket, interval "
                  "and time since the last purchase (thresholds in docs/analytics.md)."),
    _Segmentation("spend_deciles", _spend_deciles, ("fct_orders",),
                  "Customers ranked by spend into 10 groups: revenue, share, cumulative share, average ticket "
                  "(Pareto)."),
    _Segmentation("lifecycle_stages", _lifecycle_stages,
                  ("fct_orders", "dim_customers", "fct_interactions", "fct_opportunities"),
                  "Lifecycle stage per customer and open lead: potential, interested, intent, customer, loyal, "
                  "churned."),
    _Segmentation("demographic_cuts", _demographic_cuts, ("dim_customers", "fct_orders"),
                  "Customers, buyers, revenue, repeat rate and CLV by region, age band, gender and acquisition "
                  "channel.", analytics=("customer_clv",)),
    _Segmentation("cohort_retention", _cohort_retention, ("fct_orders",),
                  "Monthly acquisition cohorts: retention % and revenue per customer by months since the first "
                  "order."),
)
SEGMENTATION_KEYS = {segmentation.name: segmentation.key for segmentation in SEGMENTATIONS}


@multi_asset(
    name="segmentations",
    specs=[AssetSpec(s.key, description=s.description, group_name=GROUP, kinds={"python", "duckdb"},
                     deps=[mart(m) for m in s.marts] + [AssetKey([SCHEMA, a]) for a in s.analytics])
           for s in SEGMENTATIONS],
    can_subset=True,
    pool=WRITER_POOL,
)
def segmentations(context: AssetExecutionContext, warehouse: Warehouse):
    """The selected segmentations, from one read of the paid orders."""
    selected = [s for s in SEGMENTATIONS if s.key in context.selected_asset_keys]
    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        orders = read_paid_orders(con)
        for segmentation in selected:
            result = segmentation.build(con, warehouse, orders, as_of)
            yield MaterializeResult(asset_key=segmentation.key, metadata=result.metadata)
