"""The last step of every refresh: publish the BI-facing warehouse and its Parquet exports atomically (and on the Spark
engine the metastore's tables, dagster_project.spark.publication)."""

import shutil
from collections.abc import Sequence

import duckdb

from dagster import (
    AssetExecutionContext, AssetKey, AssetsDefinition, DagsterRunStatus, Failure, MaterializeResult, MetadataValue,
    RunsFilter, asset,
)

from dagster_project import refresh_state
from dagster_project.publish import gate, publication
from dagster_project.as_of import resolved_as_of
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.defs.resources import Warehouse, dbt_run_folders
from dagster_project.privacy import compaction, erasure, retention

PUBLISHED_WAREHOUSE_KEY = AssetKey(["publish", "warehouse"])


def build_published_warehouse(upstream: Sequence[AssetsDefinition]) -> AssetsDefinition:
    """The publish asset, downstream of every other asset: it runs only when they all succeeded and no blocking
    check failed, so a failed refresh leaves yesterday's published warehouse in place."""

    upstream_keys = {key for a in upstream for key in a.keys}

    @asset(key=PUBLISHED_WAREHOUSE_KEY, group_name="publish", deps=[key for a in upstream for key in a.keys],
           pool=WRITER_POOL, kinds={"duckdb", "parquet"})
    def published_warehouse(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        """The published warehouse BI tools read (schemas marts, analytics, quality, meta) and one Parquet file per
        table, each replaced as a whole: readers see yesterday's complete state until the new one is complete.
        After an erasure or a retention purge, older export versions are removed and the working database rebuilt."""
        with warehouse.connect() as con:
            erasures = erasure.awaiting_publication(con)
            try:
                erasure.check_gone(con, erasures)
            except erasure.ErasureError as error:
                raise Failure(str(error)) from None
            purged = retention.awaiting_compaction(con)
            # The currency the marts were built in, which is the configured one unless dbt has not run since the
            # settings changed.
            reporting_currency, label = (publication.built_currency(con)
                                         or (warehouse.reporting_currency, warehouse.currency_label))
            full_rebuild = refresh_state.full_refresh_asked(context.run.tags)
            try:
                done = publication.publish(con, warehouse.published_path, context.run.run_id,
                                       resolved_as_of(con), reporting_currency, label,
                                       warehouse.storage_version, warehouse.published_mode,
                                       # no older version may still hold an erased person
                                       0 if erasures else warehouse.keep_previous_exports,
                                       # a copy of the published file would carry erased values in its free blocks
                                       reuse=not (full_rebuild or erasures or purged))
            except publication.PublishError as error:
                raise Failure(str(error)) from None
            if warehouse.on_spark:
                from dagster_project.spark.publication import publish_to_spark

                with warehouse.spark() as catalog:
                    written = publish_to_spark(con, warehouse.published_path, catalog,
                                               publication.published_tables(con),
                                               0 if erasures or purged else warehouse.keep_previous_exports)
                context.log.info(f"wrote {len(written)} analytics and quality tables back to Spark and pointed the "
                                 "metastore's published_* tables at the Parquet exports")
            # The quarantine each file went out with: the gate judges such a file again only if it loses more rows.
            gate.record_published_quarantine(con, context.run.run_id)
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
                         f"{len(done.rows) - len(done.changed)} kept as they were"
                         + "".join(f"; {table}: {replaced} of its {months} months replaced"
                                   for table, (replaced, months) in done.months_replaced.items()))
        if erasures or purged:
            _rebuild_working_database(context, warehouse, [request_id for request_id, _ in erasures])
        return MaterializeResult(metadata={
            "path": MetadataValue.path(str(done.warehouse)),
            "parquet": MetadataValue.path(str(done.parquet_dir)),
            "tables": len(done.rows),
            "tables_changed": MetadataValue.json(done.changed),
            "months_replaced": MetadataValue.json({table: {"replaced": replaced, "months": months}
                                                   for table, (replaced, months) in done.months_replaced.items()}),
            "dagster/row_count": sum(done.rows.values()),
            "rows": MetadataValue.json(done.rows),
            "publish_seconds": round(done.seconds, 2),
            "reporting_currency": reporting_currency,
            "storage_version": done.storage_version,
            "erasures_completed": len(erasures),
        })

    return published_warehouse


def _rebuild_working_database(context: AssetExecutionContext, warehouse: Warehouse, request_ids: list[str]) -> None:
    """Leave no erased or purged value in the working database's free blocks (dagster_project.privacy.compaction), nor
    in dbt's folders of earlier failed builds (their dbt.log may quote values); mark the erasures completed."""
    def finish(con, database: str) -> None:
        erasure.complete(con, database, request_ids, context.run.run_id)
        retention.mark_compacted(con, database)

    try:
        rebuilt = compaction.rebuild(warehouse.published_path, finish)
    except (OSError, duckdb.Error) as error:
        raise Failure(f"published, but the working database could not be rebuilt (erased or purged values may stay in "
                      f"its free blocks until a refresh succeeds): {' '.join(str(error).split())}") from None
    if request_ids:
        # Only the folders of this instance's finished runs: another warehouse's refresh, or one of the test suite's
        # workers, may be building in the same dbt project at this moment, in a folder of its own.
        finished = context.instance.get_run_ids(RunsFilter(statuses=[
            DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]))
        for folder in dbt_run_folders(include_parses=False, of_runs=finished):
            shutil.rmtree(folder, ignore_errors=True)
    context.log.info(f"working database rebuilt in {rebuilt.seconds:.1f} s ({rebuilt.bytes_before / 1e6:.1f} -> "
                     f"{rebuilt.bytes_after / 1e6:.1f} MB); {len(request_ids)} erasure request(s) completed")
