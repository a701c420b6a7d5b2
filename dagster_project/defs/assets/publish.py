"""The last step of every refresh: publish the BI-facing warehouse and its Parquet exports atomically."""

from collections.abc import Sequence

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Failure, MaterializeResult, MetadataValue, asset

from dagster_project import refresh_state
from dagster_project.publish import publication
from dagster_project.as_of import resolved_as_of
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.defs.resources import Warehouse

PUBLISHED_WAREHOUSE_KEY = AssetKey(["publish", "warehouse"])


def build_published_warehouse(upstream: Sequence[AssetsDefinition]) -> AssetsDefinition:
    """The publish asset, downstream of every other asset: it runs only when they all succeeded and no blocking
    check failed, so a failed refresh leaves yesterday's published warehouse in place."""

    upstream_keys = {key for a in upstream for key in a.keys}

    @asset(key=PUBLISHED_WAREHOUSE_KEY, group_name="publish", deps=[key for a in upstream for key in a.keys],
           pool=WRITER_POOL, kinds={"duckdb", "parquet"})
    def published_warehouse(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        """The published warehouse BI tools read (schemas marts, analytics, quality, meta) and one Parquet file per
        table, each replaced as a whole: readers see yesterday's complete state until the new one is complete."""
        with warehouse.connect() as con:
            # The currency the marts were built in, which is the configured one unless dbt has not run since the
            # settings changed.
            reporting_currency, label = (publication.built_currency(con)
                                         or (warehouse.reporting_currency, warehouse.currency_label))
            full_rebuild = context.run.tags.get(refresh_state.FULL_REFRESH_TAG) == "true"
            try:
                done = publication.publish(con, warehouse.published_path, context.run.run_id,
                                       resolved_as_of(con), reporting_currency, label,
                                       warehouse.storage_version, reuse=not full_rebuild)
            except publication.PublishError as error:
                raise Failure(str(error)) from None
            # What this publication was built from, for the next refresh to tell whether anything changed: only a
            # run of every asset built all of it.
            selection = context.run.asset_selection
            if not selection or upstream_keys | {PUBLISHED_WAREHOUSE_KEY} <= selection:
                refresh_state.record_published(con, context.run.run_id)
            else:
                refresh_state.forget(con)
        context.log.info(f"published {len(done.rows)} tables to {done.warehouse} in {done.seconds:.1f} s, "
                         f"readable by DuckDB {done.storage_version} and newer; {len(done.changed)} changed "
                         f"({', '.join(done.changed[:8])}{', ...' if len(done.changed) > 8 else ''}), "
                         f"{len(done.rows) - len(done.changed)} kept as they were")
        return MaterializeResult(metadata={
            "path": MetadataValue.path(str(done.warehouse)),
            "parquet": MetadataValue.path(str(done.parquet_dir)),
            "tables": len(done.rows),
            "tables_changed": MetadataValue.json(done.changed),
            "dagster/row_count": sum(done.rows.values()),
            "rows": MetadataValue.json(done.rows),
            "publish_seconds": round(done.seconds, 2),
            "reporting_currency": reporting_currency,
            "storage_version": done.storage_version,
        })

    return published_warehouse
