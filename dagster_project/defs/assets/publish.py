"""The last step of every refresh: publish the BI-facing warehouse and its Parquet exports atomically."""

from collections.abc import Sequence

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Failure, MaterializeResult, MetadataValue, asset

from dagster_project.publish import publication
from dagster_project.as_of import resolved_as_of
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.defs.resources import Warehouse

PUBLISHED_WAREHOUSE_KEY = AssetKey(["publish", "warehouse"])


def build_published_warehouse(upstream: Sequence[AssetsDefinition]) -> AssetsDefinition:
    """The publish asset, downstream of every other asset: it runs only when they all succeeded and no blocking
    check failed, so a failed refresh leaves yesterday's published warehouse in place."""

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
            try:
                done = publication.publish(con, warehouse.published_path, context.run.run_id,
                                       resolved_as_of(con), reporting_currency, label,
                                       warehouse.storage_version)
            except publication.PublishError as error:
                raise Failure(str(error)) from None
        context.log.info(f"published {len(done.rows)} tables to {done.warehouse} in {done.seconds:.1f} s, "
                         f"readable by DuckDB {done.storage_version} and newer")
        return MaterializeResult(metadata={
            "path": MetadataValue.path(str(done.warehouse)),
            "parquet": MetadataValue.path(str(done.parquet_dir)),
            "tables": len(done.rows),
            "dagster/row_count": sum(done.rows.values()),
            "rows": MetadataValue.json(done.rows),
            "publish_seconds": round(done.seconds, 2),
            "reporting_currency": reporting_currency,
            "storage_version": done.storage_version,
        })

    return published_warehouse
