"""What every analytics asset shares: the asset factory (downstream of dbt marts, in the writer pool), reading
paid orders, writing tables and model runs, and metadata rounded for people."""

import math

import duckdb
import pandas as pd
import pyarrow as pa
from dagster import AssetKey, JsonMetadataValue, MaterializeResult, MetadataValue, asset

from dagster_project.analytics.model_quality import MODEL_QUALITY_COLUMNS, ModelQuality, model_quality_frame
from dagster_project.analytics.model_runs import MODEL_RUNS_COLUMNS, ModelRun, model_runs_frame
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.defs.resources import Warehouse

SCHEMA = "analytics"
GROUP = "analytics"


def mart(name: str) -> AssetKey:
    """The asset key of a dbt mart (dbt's models are grouped and keyed by folder: marts/<name>); a key no dbt model
    has is refused by tests/test_definitions.py, which checks every dependency against the built graph."""
    return AssetKey(["marts", name])


def analytics_asset(*marts: str, deps: tuple = (), **kwargs):
    """An analytics asset downstream of the given dbt marts, in the writer pool."""
    return asset(key_prefix=[SCHEMA], group_name=GROUP, deps=[mart(m) for m in marts] + list(deps),
                 pool=WRITER_POOL, kinds={"python", "duckdb"}, **kwargs)


# --------------------------------------------------------------------------------------------------- helpers


_PAID_ORDERS = "select {columns} from marts.fct_orders where is_paid"
# In a fixed order, for reading into Python: pandas and numpy sum in row order, and a parallel scan's order changes
# from run to run, which would change totals in the last bit and every figure rounded from them.
_PAID_ORDERS_SQL = _PAID_ORDERS + " order by customer_key, order_date, order_id"


def read_paid_orders(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """The warehouse's paid orders (customer_key, order_date, net_amount) for the segmentations, which aggregate them
    in SQL: as an Arrow table, which DuckDB hands over without making a Python object of every key (at 9.3M orders,
    2.1 s against 8.6 s for a pandas frame), in the same fixed order."""
    # A cursor of its own: the relation API refuses a connection an earlier execute() left a pending result on, and
    # Arrow from execute() copies every row once more.
    with con.cursor() as cursor:
        return cursor.sql(_PAID_ORDERS_SQL.format(columns="customer_key, order_date, net_amount")).to_arrow_table()


def paid_orders_query(columns: str) -> str:
    """A query of the paid orders' `columns`, in no particular order: for SQL that aggregates them."""
    return _PAID_ORDERS.format(columns=columns)


def write_tables(con: duckdb.DuckDBPyConnection, warehouse: Warehouse, tables: dict[str, pd.DataFrame]) -> dict:
    """Write each frame to analytics.<name>; returns metadata with every table's row count."""
    counts = {name: warehouse.write_table(con, SCHEMA, name, frame) for name, frame in tables.items()}
    return {f"rows/{name}": count for name, count in counts.items()}


def append_model_runs(con: duckdb.DuckDBPyConnection, runs: list[ModelRun]) -> None:
    """Model runs accumulate across refreshes, so accuracy can be tracked over time."""
    con.execute(
        f"create table if not exists {SCHEMA}.model_runs ("
        "run_id varchar, model_name varchar, purpose varchar, as_of_date date, train_start date, train_end date, "
        "holdout_end date, time_unit varchar, params json, metrics json, library_versions json, "
        "fit_seconds double, created_at timestamp, run_kind varchar, model_version varchar, reason varchar)"
    )
    # A table written before fits and evaluations were told apart gets the new columns (NULL on its old rows).
    columns = {row[0] for row in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = 'model_runs'",
        [SCHEMA]).fetchall()}
    if "run_kind" not in columns:
        for column in ("run_kind", "model_version", "reason"):
            con.execute(f"alter table {SCHEMA}.model_runs add column if not exists {column} varchar")
        con.execute(f"update {SCHEMA}.model_runs set run_kind = 'fit'")  # before cadences, every run was a fit
    _insert(con, "model_runs", model_runs_frame(runs), MODEL_RUNS_COLUMNS)


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Append the frame's rows to analytics.<table>, columns in the table's order."""
    if frame.empty:
        return
    con.register("_rows", frame)
    try:
        names = ", ".join(columns)
        con.execute(f"insert into {SCHEMA}.{table} ({names}) select {names} from _rows")
    finally:
        con.unregister("_rows")


def preview(frame: pd.DataFrame, rows: int = 10) -> MetadataValue:
    """A Markdown table of the first rows (no extra dependency for Markdown rendering)."""
    if frame.empty:
        return MetadataValue.md("_empty_")
    head = frame.head(rows)
    cells = [[_cell(v) for v in row] for row in head.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, head.columns)) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return MetadataValue.md("\n".join(lines))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value == value else ""
    return str(value).replace("|", "/")


def for_people(value):
    """A figure as people read it: floats to 3 significant digits below 100 (0.594, 12.3, 0.00123) and to whole
    numbers from 100 (1,089,925.0), inside dicts and lists too; NaN, infinities and anything else unchanged."""
    if isinstance(value, dict):
        return {key: for_people(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [for_people(item) for item in value]
    if not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return value
    return float(round(value, max(0, 2 - math.floor(math.log10(abs(value))))))


def _for_people(entry):
    """A metadata entry with its figures rounded (plain floats and JSON; Markdown, text and ints as they are)."""
    if isinstance(entry, JsonMetadataValue):
        return MetadataValue.json(for_people(entry.data))
    return for_people(entry) if isinstance(entry, float) else entry


def asset_result(metadata: dict, table: str, frame: pd.DataFrame, note: str | None = None,
                 **extra) -> MaterializeResult:
    """The materialisation of an asset whose main table is analytics.<table>, written from `frame`: its row count is
    the asset's row-count badge and its first rows the preview; every figure is rounded for people (for_people)."""
    metadata = {key: _for_people(entry) for key, entry in {**metadata, **extra}.items()}
    metadata |= {"dagster/row_count": len(frame), "dagster/table_name": f"{SCHEMA}.{table}", "preview": preview(frame)}
    if note:
        metadata["note"] = note
    return MaterializeResult(metadata=metadata)


def empty_note(con: duckdb.DuckDBPyConnection, *tables: str) -> str | None:
    empty = [t for t in tables if con.execute(f"select count(*) = 0 from marts.{t}").fetchone()[0]]
    return f"no rows in {', '.join('marts.' + t for t in empty)}: the export lacks this entity" if empty else None


def record_quality(con: duckdb.DuckDBPyConnection, qualities: list[ModelQuality]) -> dict:
    """Replace these models' rows of analytics.model_quality (each model asset owns its rows); returns the Dagster
    metadata of the first quality (the asset's main output), for the asset's materialisation."""
    con.execute(
        f"create table if not exists {SCHEMA}.model_quality (model varchar, question varchar, metric varchar, "
        "higher_is_better boolean, published varchar, published_value double, baseline varchar, "
        "baseline_value double, beats_baseline boolean, n_eval bigint, evaluation varchar, note varchar)"
    )
    frame = model_quality_frame(qualities)
    con.execute(f"delete from {SCHEMA}.model_quality where model in (select unnest($models))",
                {"models": sorted(set(frame["model"]))})
    _insert(con, "model_quality", frame, MODEL_QUALITY_COLUMNS)
    return qualities[0].metadata() if qualities else {}
