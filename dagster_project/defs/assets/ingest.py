"""Ingestion: every export drop into the DuckDB ``raw`` schema, one asset per entity; on the Spark engine the raw
tables then land as Spark tables too (dagster_project.spark.landing). The first step of every refresh, so it also
decides whether there is anything to do (dagster_project.refresh_state)."""

import os
from pathlib import Path

from dagster import (
    AssetExecutionContext, AssetKey, AssetSpec, DataVersion, MaterializeResult, MetadataValue, multi_asset,
)

from dagster_project import ingest, refresh_state
from dagster_project.contract import ENTITIES
from dagster_project.ingest import MAPPING_FILE_NAME, Mapping, MappingError, load_mapping
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.defs.resources import SavedModels, Warehouse
from dagster_project.privacy import erasure, retention, tombstones
from dagster_project.warehouse_files import tombstones_path
from dagster_project.privacy.secret import keyed_hash

RAW_ENTITY_KEYS = {entity.name: AssetKey(["raw", entity.name]) for entity in ENTITIES}
INGEST_LOG_KEY = AssetKey(["raw", "_ingest_log"])
QUARANTINE_KEY = AssetKey(["raw", "_quarantine"])


def _entity_spec(entity) -> AssetSpec:
    required = ", ".join(entity.required) or "none"
    return AssetSpec(
        RAW_ENTITY_KEYS[entity.name],
        description=f"Raw `{entity.name}` rows from every export drop, as delivered (text) plus lineage columns. "
        f"{entity.description} Required columns: {required}.",
        group_name="ingest",
        kinds={"duckdb", "csv"},
        skippable=True,
    )


@multi_asset(
    specs=[_entity_spec(entity) for entity in ENTITIES]
    + [
        AssetSpec(INGEST_LOG_KEY, description="One row per export file loaded: hash, encoding, delimiter, "
                  "header mapping, rows read / loaded / quarantined.", group_name="ingest", kinds={"duckdb"},
                  skippable=True),
        AssetSpec(QUARANTINE_KEY, description="Rows the CSV reader could not parse, with the reason and the raw line.",
                  group_name="ingest", kinds={"duckdb"}, skippable=True),
    ],
    can_subset=True,
    pool=WRITER_POOL,
)
def raw_exports(context: AssetExecutionContext, warehouse: Warehouse, models: SavedModels):
    """Apply pending erasure requests and the retention of raw working copies, then load every new or changed export
    file (rows of erased people quarantined as "erased"); files already loaded with the same content are skipped.
    When no file, setting or code changed since the last publication and no erasure is pending, yield nothing:
    Dagster then skips every step after this one and the publication stays as it is."""
    if not _anything_to_do(context, warehouse, models.retrain):
        return
    selected = [name for name, key in RAW_ENTITY_KEYS.items() if key in context.selected_asset_keys]
    totals = {"files": 0, "read": 0, "loaded": 0, "quarantined": 0}
    exports_dir = Path(warehouse.exports_dir)
    mapping = export_mapping(warehouse, exports_dir)
    if mapping.path is not None:
        context.log.info(f"mapping file {mapping.path}: {', '.join(mapping.entities) or 'empty'}")
    for warning in ingest.unread_files(exports_dir, mapping):
        context.log.warning(warning)
    with warehouse.connect() as con:
        screen = _privacy(context, warehouse, con)
        progress = lambda r: context.log.info(_describe(r))  # noqa: E731
        for name, results in ingest.ingest_entities(con, exports_dir, selected, progress=progress, mapping=mapping,
                                                    erased=screen):
            if not warehouse.currency_named:
                _stop_on_amounts_without_currency(con, warehouse, ingest.files_without_currency(con))
            loaded = [r for r in results if not r.skipped]
            for key, attribute in (("read", "rows_read"), ("loaded", "rows_loaded"), ("quarantined", "rows_quarantined")):
                totals[key] += sum(getattr(r, attribute) for r in loaded)
            totals["files"] += len(loaded)
            row_count = con.execute(f'select count(*) from raw."{name}"').fetchone()[0]
            yield MaterializeResult(
                asset_key=RAW_ENTITY_KEYS[name],
                data_version=_data_version(con, name),
                metadata={
                    "dagster/row_count": row_count,
                    "files_loaded": len(loaded),
                    "files_already_loaded": len(results) - len(loaded),
                    "rows_read": sum(r.rows_read for r in loaded),
                    "rows_quarantined": sum(r.rows_quarantined for r in loaded),
                    "extra_columns": MetadataValue.json(sorted({c for r in results for c in r.extra_columns})),
                    "files": MetadataValue.md(_files_table(results)) if results else MetadataValue.md("_no files_"),
                },
            )
        if not warehouse.currency_named and {"orders", "order_items"} & set(selected):
            # (Lines are priced by their orders unless those have no amount: known once both are loaded.)
            _stop_on_amounts_without_currency(con, warehouse, ingest.lines_pricing_orders_without_currency(con),
                                              lines=True)
        if warehouse.on_spark:
            from dagster_project.spark.landing import land_raw_tables

            with warehouse.spark() as catalog:
                landed = land_raw_tables(con, catalog)
            context.log.info(f"landed {len(landed)} raw tables in Spark ({sum(landed.values()):,} rows)")
        for key, table in ((INGEST_LOG_KEY, "_ingest_log"), (QUARANTINE_KEY, "_quarantine")):
            if key in context.selected_asset_keys:
                yield MaterializeResult(
                    asset_key=key,
                    metadata={"dagster/row_count": con.execute(f"select count(*) from raw.{table}").fetchone()[0]},
                )
    # Only what the reader rejected is known here; the models quarantine more, and the refresh's summary adds both.
    context.log.info(
        f"ingested {totals['files']} new file(s): {totals['read']:,} rows read, {totals['loaded']:,} loaded, "
        f"{totals['quarantined']:,} quarantined at ingest (rows the models reject are counted after dbt)"
    )


def _stop_on_amounts_without_currency(con, warehouse: Warehouse, files: list[str], lines: bool = False) -> None:
    """Amounts that name no currency are read in the default currency; while no setting names one, that is the
    built-in default's (CNY), and a US shop's dollars would be published as yuan: stop, saying how to name it. The
    files stay loaded, so the next refresh with the currency named goes straight on. `lines`: the files are order
    lines that price orders without an amount of their own (ingest.currency_check)."""
    if not files:
        return
    named = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    priced = "the order lines price orders that have no amount of their own, and their " if lines else ""
    raise ingest.IngestError(
        f"{named}: {priced}amounts name no currency (no currency column, no symbol or code such as $ or USD), and no "
        f"setting names one, so they would be read as {warehouse.default_currency}. Say which currency they are in: "
        f"currency: USD (say) in the file's section of mapping.yml, or --default-currency USD (CRM_DEFAULT_CURRENCY); "
        f"--currency (CRM_REPORTING_CURRENCY) reports every amount in it too")


def _data_version(con, entity: str) -> DataVersion:
    """The content of raw.<entity>: which files (and which content of each) are loaded into it."""
    (digest,) = con.execute(
        "select sha256(coalesce(string_agg(source_file || ':' || content_sha256 || ':' "
        "|| coalesce(mapping_sha256, ''), '|' order by source_file), '')) "
        "from raw._ingest_log where entity = $entity", {"entity": entity}).fetchone()
    return DataVersion(digest[:16])


def _anything_to_do(context: AssetExecutionContext, warehouse: Warehouse, retrain: bool) -> bool:
    """Whether this run must refresh: something changed since the last publication, the run is tagged to rebuild
    everything, an erasure is pending, or the saved models are to be refitted (`--retrain`). Records what the run is
    built from, for the publish step."""
    config = {name: getattr(warehouse, name)
              for name in (*refresh_state.RESULT_FIELDS, "path", "exports_dir", "mapping_file", "work_path")}
    if not os.environ.get(refresh_state.SECRET_ENV):
        # The secret dbt's pseudonym model would generate beside the warehouse, generated now: the inputs recorded
        # below then include it, and the next refresh with nothing new (`make demo` twice) is recognised as such.
        keyed_hash(Path(warehouse.path))
    with warehouse.connect() as con:
        state = refresh_state.recorded(con)
        inputs = refresh_state.current_inputs(config, state.files if state else None)
        current = refresh_state.unchanged_since(state, inputs, warehouse.published_path)
        rebuild = refresh_state.full_refresh_asked(context.run.tags)
        if current is not None and not (retrain or rebuild or erasure.pending(con)):
            context.log.info(f"nothing changed since the refresh published at {current.recorded_at:%Y-%m-%d %H:%M} "
                             f"UTC (run {current.run_id}): no export file, setting or code is new; the published "
                             "warehouse stays as it is and every later step is skipped")
            return False
        refresh_state.record_pending(con, inputs, context.run.run_id)
    return True


def _privacy(context: AssetExecutionContext, warehouse: Warehouse, con) -> tombstones.Screen | None:
    """Before anything is loaded: apply the erasure requests taken since the last refresh and blank what outlived the
    retention (dagster_project.privacy); returns the tombstones new files are screened with. Counts only are logged."""
    def keys():  # resolved only when someone was erased
        return keyed_hash(Path(warehouse.path))

    kept = tombstones_path(Path(warehouse.path))
    try:
        restored = tombstones.restore(con, kept)  # after the working database was deleted, say
        applied = erasure.apply_pending(con, keys, context.run.run_id)
        tombstones.save(con, kept)
        screen = tombstones.screen(con, keys)
    except (erasure.ErasureError, tombstones.TombstoneKeyError) as error:
        raise ingest.IngestError(str(error)) from None
    if restored:
        context.log.info(f"erasure: {restored} tombstone(s) restored from {kept.name}: the working database did not "
                         "have them")
    if applied:
        context.log.info(f"erasure: {len(applied)} request(s) applied, {sum(a.source_ids for a in applied)} CRM "
                         f"customer id(s) and {sum(a.rows for a in applied):,} raw row(s) removed (quarantined as "
                         "erased); this run's publication completes them")
    purged = retention.purge(con, warehouse.raw_retention_days, context.run.run_id)
    if purged.total:
        context.log.info(f"retention: personal values loaded before {purged.cutoff:%Y-%m-%d %H:%M} UTC blanked in "
                         f"{purged.quarantined_lines:,} quarantined raw line(s) and {purged.customer_versions:,} "
                         f"replaced or set-aside customer version(s) (CRM_RAW_RETENTION_DAYS "
                         f"{warehouse.raw_retention_days})")
    return screen


def export_mapping(warehouse: Warehouse, exports_dir: Path) -> Mapping:
    """The mapping file named by the settings, else mapping.yml in the exports folder if there is one (looked for at
    every run: a long-running daemon sees a mapping file added after it started)."""
    default = exports_dir / MAPPING_FILE_NAME
    path = Path(warehouse.mapping_file) if warehouse.mapping_file else default
    if path == default and not path.is_file():
        return Mapping()
    try:
        return load_mapping(path)
    except MappingError as error:
        raise ingest.IngestError(str(error)) from None


def _describe(result: ingest.FileResult) -> str:
    if result.skipped:
        return f"{result.source_file}: already loaded"
    extra = f", extra columns kept: {', '.join(result.extra_columns)}" if result.extra_columns else ""
    grain = f" as {result.entity} (dropped as {result.dropped_as})" if result.dropped_as else ""
    notes = f"; {'; '.join(result.notes)}" if result.notes else ""
    return (f"{result.source_file}: {result.rows_loaded:,} rows loaded{grain}, {result.rows_quarantined:,} quarantined "
            f"at ingest ({result.encoding}, {_delimiter_name(result.delimiter)}){extra}{notes}")


def _delimiter_name(delimiter: str | None) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", None: "parquet"}.get(delimiter, str(delimiter))


def _files_table(results) -> str:
    lines = ["| file | encoding | rows read | loaded | quarantined | status |", "|---|---|---|---|---|---|"]
    for r in results:
        status = "already loaded" if r.skipped else "loaded"
        lines.append(f"| {r.source_file} | {r.encoding} | {r.rows_read} | {r.rows_loaded} | {r.rows_quarantined} | {status} |")
    return "\n".join(lines)
