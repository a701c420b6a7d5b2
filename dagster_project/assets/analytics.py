"""Customer analytics as Dagster assets: thin wrappers that read the marts, call the pure functions in
``dagster_project.analytics`` and write documented tables to the warehouse's ``analytics`` schema.

Every asset uses the as-of date the dbt run resolved (``intermediate.int_as_of``), so a replayed ``--as-of`` only
sees data dated on or before it, and degrades to empty tables plus a note when the export lacks what it needs.
"""

import math
import time
from datetime import timedelta

import duckdb
import pandas as pd
from dagster import AssetExecutionContext, AssetKey, JsonMetadataValue, MaterializeResult, MetadataValue, asset
from dagster_dbt import get_asset_key_for_model

from dagster_project.analytics import baskets, churn, clv, cohorts, forecast, health, sales, segments, service
from dagster_project.analytics.model_runs import MODEL_RUNS_COLUMNS, ModelRun, model_runs_frame
from dagster_project.assets.dbt import crm_dbt_models
from dagster_project.assets.ingest import WRITER_POOL
from dagster_project.report import metadata_charts
from dagster_project.resources import Warehouse
from dagster_project.settings import NO_HOLIDAYS

SCHEMA = "analytics"
GROUP = "analytics"


def mart(name: str) -> AssetKey:
    return get_asset_key_for_model([crm_dbt_models], name)


def _asset(*marts: str, deps: tuple = (), **kwargs):
    """An analytics asset downstream of the given dbt marts, in the writer pool."""
    return asset(key_prefix=[SCHEMA], group_name=GROUP, deps=[mart(m) for m in marts] + list(deps),
                 pool=WRITER_POOL, kinds={"python", "duckdb"}, **kwargs)


# --------------------------------------------------------------------------------------------------- helpers


def _paid(con: duckdb.DuckDBPyConnection, columns: str) -> pd.DataFrame:
    return con.execute(f"select {columns} from marts.fct_orders where is_paid").df()


def paid_orders(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return _paid(con, "customer_key, order_id, order_date, net_amount")


def paid_transactions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Paid orders in the shape the CLV models take (customer_key, order_date, amount).

    Only those columns: at 9.8M orders, converting the unused order_id strings to pandas costs seconds.
    """
    return _paid(con, "customer_key, order_date, net_amount as amount")


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
        "fit_seconds double, created_at timestamp)"
    )
    if runs:
        frame = model_runs_frame(runs)
        con.register("_runs", frame)
        try:
            con.execute(f"insert into {SCHEMA}.model_runs select {', '.join(MODEL_RUNS_COLUMNS)} from _runs")
        finally:
            con.unregister("_runs")


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


def _result(metadata: dict, table: str, frame: pd.DataFrame, note: str | None = None, **extra) -> MaterializeResult:
    """The materialisation of an asset whose main table is analytics.<table>, written from `frame`: its row count is
    the asset's row-count badge and its first rows the preview; every figure is rounded for people (for_people)."""
    metadata = {key: _for_people(entry) for key, entry in {**metadata, **extra}.items()}
    metadata |= {"dagster/row_count": len(frame), "dagster/table_name": f"{SCHEMA}.{table}", "preview": preview(frame)}
    if note:
        metadata["note"] = note
    return MaterializeResult(metadata=metadata)


def _empty_note(con: duckdb.DuckDBPyConnection, *tables: str) -> str | None:
    empty = [t for t in tables if con.execute(f"select count(*) = 0 from marts.{t}").fetchone()[0]]
    return f"no rows in {', '.join('marts.' + t for t in empty)}: the export lacks this entity" if empty else None


# --------------------------------------------------------------------------------------------------- segments


@_asset("fct_orders")
def rfm_segments(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """RFM per customer: recency, frequency, monetary, 1-5 quintile scores and the named segment
    (champions ... lost; mapping in docs/analytics.md)."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        table = segments.rfm_segments(paid_orders(con), as_of)
        metadata = write_tables(con, warehouse, {"rfm_segments": table})
    sizes = table["segment"].value_counts().to_dict() if not table.empty else {}
    chart = {"segment_chart": MetadataValue.md(metadata_charts.bar_chart(sizes, "Customers per RFM segment"))} \
        if sizes else {}
    return _result(metadata, "rfm_segments", table, segment_sizes=MetadataValue.json(sizes), **chart)


@_asset("fct_orders")
def cpm_states(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Customer-state management: the 10 active / lapsed groups from purchases, spend, ticket, interval and
    time since the last purchase (thresholds in docs/analytics.md)."""
    with warehouse.connect() as con:
        table = segments.cpm_states(paid_orders(con), warehouse.resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"cpm_states": table})
    sizes = table["cpm_state"].value_counts().to_dict() if not table.empty else {}
    return _result(metadata, "cpm_states", table, state_sizes=MetadataValue.json(sizes))


@_asset("fct_orders")
def spend_deciles(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Customers ranked by spend into 10 groups: revenue, share, cumulative share, average ticket (Pareto)."""
    with warehouse.connect() as con:
        result = segments.spend_deciles(paid_orders(con), warehouse.resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"spend_deciles": result.table})
    return _result(metadata, "spend_deciles", result.table, top20_revenue_share=float(result.top20_share or 0.0))


@_asset("fct_orders", "dim_customers", "fct_interactions", "fct_opportunities")
def lifecycle_stages(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Lifecycle stage per customer and open lead: potential, interested, intent, customer, loyal, churned."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        table = segments.lifecycle_stages(
            con.execute("select * from marts.dim_customers").df(),
            paid_orders(con),
            con.execute("select * from marts.fct_interactions").df(),
            con.execute("select * from marts.fct_opportunities").df(),
            as_of,
        )
        metadata = write_tables(con, warehouse, {"lifecycle_stages": table})
    sizes = table["lifecycle_stage"].value_counts().to_dict() if not table.empty else {}
    return _result(metadata, "lifecycle_stages", table, stage_sizes=MetadataValue.json(sizes))


@_asset("dim_customers", "fct_orders", deps=(AssetKey([SCHEMA, "customer_clv"]),))
def demographic_cuts(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Customers, buyers, revenue, repeat rate and CLV by region, age band, gender and acquisition channel."""
    with warehouse.connect() as con:
        table = segments.demographic_cuts(
            con.execute("select * from marts.dim_customers").df(),
            paid_orders(con),
            con.execute(f"select customer_key, clv_12m from {SCHEMA}.customer_clv").df(),
            warehouse.resolved_as_of(con),
        )
        metadata = write_tables(con, warehouse, {"demographic_cuts": table})
    return _result(metadata, "demographic_cuts", table)


@_asset("fct_orders")
def cohort_retention(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Monthly acquisition cohorts: retention % and revenue per customer by months since the first order."""
    with warehouse.connect() as con:
        table = cohorts.monthly_cohorts(paid_orders(con), warehouse.resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"cohort_retention": table})
    return _result(metadata, "cohort_retention", table)


# ------------------------------------------------------------------------------------------- models: CLV, churn


@_asset("fct_orders")
def customer_clv(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """BG/NBD + Gamma-Gamma (pymc-marketing, maximum likelihood): probability alive, expected purchases over
    30/90/365 days, expected order value and discounted 12-month CLV per customer; holdout validation."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        result = clv.run_clv(paid_transactions(con), as_of, progress=context.log.info)
        metadata = write_tables(con, warehouse, {"customer_clv": result.scores, "clv_validation": result.validation})
        append_model_runs(con, result.runs)
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    chart = {}
    if not result.scores.empty:
        metrics |= {"clv_12m_total": float(result.scores["clv_12m"].sum()),
                    "clv_12m_median": float(result.scores["clv_12m"].median())}
        chart["clv_chart"] = MetadataValue.md(metadata_charts.bar_chart(
            clv_by_decile(result.scores["clv_12m"]), "Expected 12-month CLV by customer decile"))
    return _result(metadata, "customer_clv", result.scores, result.note,
                   **{f"metric/{k}": v for k, v in metrics.items()}, **chart)


def clv_by_decile(clv_12m: pd.Series) -> dict[str, float]:
    """Total 12-month CLV of each tenth of the customers, most valuable first ("top 10%", "10-20%", ...)."""
    ranked = clv_12m.fillna(0.0).sort_values(ascending=False, kind="stable").reset_index(drop=True)
    decile = ranked.index * 10 // max(len(ranked), 1)
    totals = ranked.groupby(decile).sum()
    return {("top 10%" if d == 0 else f"{10 * d}-{10 * d + 10}%"): float(v) for d, v in totals.items()}


@_asset("customer_360", "fct_orders", "fct_interactions", "fct_tickets", "fct_surveys", "dim_customers",
        deps=(AssetKey([SCHEMA, "customer_clv"]),))
def churn_predictions(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """LightGBM churn model (no purchase in the next 90 days) trained on past cutoffs, evaluated on a later unseen
    window next to the BG/NBD probability-alive baseline; scores, risk bands, top-3 drivers and the watchlist."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        clv_scores = con.execute(f"select customer_key, clv_12m from {SCHEMA}.customer_clv").df()
        plan = churn.cutoff_plan(as_of, churn.ChurnConfig())
        earliest = min(*plan.validation_training, plan.evaluation, *plan.production_training)
        scorer = clv.bgnbd_scorer(paid_transactions(con), earliest, progress=context.log.info)
        result = churn.run_churn(con, as_of, scorer, clv_scores, progress=context.log.info)
        metadata = write_tables(con, warehouse, {
            "churn_scores": result.scores, "churn_watchlist": result.watchlist,
            "churn_calibration": result.calibration,
        })
        append_model_runs(con, result.runs)
    metrics = {f"metric/{k}": float(v) for k, v in result.evaluation.items() if isinstance(v, (int, float))}
    bands = {band: int((result.scores["risk_band"] == band).sum()) for band in ("low", "medium", "high")} \
        if not result.scores.empty else {}
    chart = {"risk_chart": MetadataValue.md(metadata_charts.bar_chart(bands, "Customers per churn risk band"))} \
        if bands else {}
    return _result(metadata, "churn_scores", result.scores, result.note, watchlist=preview(result.watchlist),
                   risk_band_sizes=MetadataValue.json(bands), **metrics, **chart)


# churn_features computes customer_360's measures at any cutoff; these are the two it names differently.
CHURN_TO_360_COLUMNS = {"revenue_total": "revenue", "avg_satisfaction": "avg_satisfaction_365d"}


@_asset("customer_360", "fct_orders", deps=(AssetKey([SCHEMA, "customer_clv"]),))
def health_scores(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """0-100 health score from activity, value, service and engagement, weighted by how well each predicted
    churn over the 90 days after a past cutoff."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        cutoff = as_of - timedelta(days=90)
        past = churn.churn_features(con, cutoff).rename(columns=CHURN_TO_360_COLUMNS).reset_index()
        labels = churn.churn_labels(con, cutoff, 90).reindex(past["customer_key"]).fillna(False).to_numpy()
        weights = health.fit_health_weights(health.health_components(past), labels)
        current = con.execute(
            f"select c.*, v.clv_12m from marts.customer_360 c left join {SCHEMA}.customer_clv v using (customer_key)"
        ).df()
        table = health.health_scores(current, weights)
        metadata = write_tables(con, warehouse, {"health_scores": table})
    return _result(
        metadata, "health_scores", table, weights.reason if weights.fallback else None,
        weights=MetadataValue.json(weights.weights), **{"metric/weights_auc": float(weights.auc or 0.0)},
    )


# ------------------------------------------------------------------------------------------------- forecasts


def forecast_series(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Daily paid revenue and order counts: overall, per customer region and per product category."""
    return con.execute("""
        with orders as (
            select o.order_date as ds, o.net_amount, c.region
            from marts.fct_orders o join marts.dim_customers c using (customer_key)
            where o.is_paid
        ),
        lines as (
            select i.order_date as ds, i.line_amount, coalesce(p.category, 'unknown') as category
            from marts.fct_order_items i left join marts.dim_products p using (product_id)
            where i.status = 'paid'
        )
        select 'overall' as series_id, 'revenue' as metric, ds, sum(net_amount) as y from orders group by ds
        union all select 'overall', 'orders', ds, count(*) from orders group by ds
        union all select 'region:' || region, 'revenue', ds, sum(net_amount) from orders group by region, ds
        union all select 'region:' || region, 'orders', ds, count(*) from orders group by region, ds
        union all select 'category:' || category, 'revenue', ds, sum(line_amount) from lines group by category, ds
        order by 1, 2, 3
    """).df()


# Three rolling origins for the usual few dozen series; one when there are hundreds, which keeps 400 series within
# about two minutes on two cores (each Prophet fit is ~0.2 CPU-seconds).
MANY_SERIES = 120


def forecast_config(series: pd.DataFrame, holiday_country: str | None = "CN") -> forecast.ForecastConfig:
    """`holiday_country`: the Warehouse resource's ISO code, or "none" / None for a forecast without holidays."""
    n_series = series[["series_id", "metric"]].drop_duplicates().shape[0]
    country = None if not holiday_country or holiday_country.lower() == NO_HOLIDAYS else holiday_country
    return forecast.ForecastConfig(n_folds=3 if n_series <= MANY_SERIES else 1, country=country)


@_asset("fct_orders", "fct_order_items", "dim_customers", "dim_products")
def sales_forecast(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Prophet 90-day forecasts of daily revenue and orders (overall, per region, per category) with intervals and
    the public holidays of the configured country (CRM_HOLIDAY_COUNTRY, by default the reporting currency's);
    rolling-origin backtest (MAPE, sMAPE, MASE per horizon) against seasonal-naive."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        series = forecast_series(con)
        started = time.perf_counter()
        result = forecast.run_forecasts(series, as_of, forecast_config(series, warehouse.holiday_country),
                                        progress=context.log.info)
        context.log.info(f"{result.summary.shape[0]} series forecast in {time.perf_counter() - started:.1f} s")
        for warning in result.warnings:  # Prophet's and Stan's, gathered from the worker processes
            context.log.warning(f"Prophet: {warning}")
        metadata = write_tables(con, warehouse, {
            "sales_forecast": result.forecasts, "forecast_backtest": result.backtest,
            "forecast_summary": result.summary,
        })
        append_model_runs(con, result.runs)
    return _result(metadata, "sales_forecast", result.forecasts, result.note, summary=preview(result.summary),
                   holiday_country=warehouse.holiday_country, **forecast_metadata(result))


def forecast_metadata(result: forecast.ForecastResult) -> dict:
    """Backtest MASE of overall daily revenue (Prophet and the seasonal-naive baseline) and its forecast chart."""
    summary = result.summary.query("series_id == 'overall' and metric == 'revenue'")
    rows = result.forecasts.query("series_id == 'overall' and metric == 'revenue'")
    if summary.empty or rows.empty:
        return {}
    metadata = {f"metric/overall_revenue_{name}": float(summary[column].iloc[0])
                for name, column in (("mase", "prophet_mase"), ("naive_mase", "naive_mase"))
                if pd.notna(summary[column].iloc[0])}
    history, future = rows[rows["is_history"]].tail(120), rows[~rows["is_history"]]
    metadata["forecast_chart"] = MetadataValue.md(
        metadata_charts.forecast_chart(history, future, "Overall daily revenue: last 120 days and forecast"))
    return metadata


# ----------------------------------------------------------------------------------- sales, marketing, service


@_asset("fct_opportunities", "fct_opportunity_stages", "fct_orders", "dim_sales_reps")
def sales_funnel(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Funnel by stage (reached, current, conversion, time in stage), win rate and sales cycle by source,
    campaign, rep and month, and rep performance."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        stages = sales.funnel_by_stage(con, as_of)
        conversion = sales.funnel_conversion(con, as_of)
        metadata = write_tables(con, warehouse, {
            "funnel_stages": stages, "funnel_conversion": conversion,
            "rep_performance": sales.rep_performance(con, as_of),
        })
        note = _empty_note(con, "fct_opportunities")
    overall = conversion[conversion["dimension"] == "overall"]
    metrics = {"metric/win_rate": float(overall["win_rate"].iloc[0])} \
        if not overall.empty and pd.notna(overall["win_rate"].iloc[0]) else {}
    return _result(metadata, "funnel_stages", stages, note, **metrics)


@_asset("dim_campaigns", "fct_interactions", "fct_opportunities", "fct_orders", "dim_customers")
def campaign_effectiveness(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Per campaign: reach, participants, leads, conversion, attributed revenue, cost, ROI and the revenue lift of
    participants over matched non-participants."""
    with warehouse.connect() as con:
        table = sales.campaign_effectiveness(con, warehouse.resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"campaign_effectiveness": table})
        note = _empty_note(con, "dim_campaigns")
    totals = {"metric/total_cost": float(table["cost"].sum()),
              "metric/attributed_revenue": float(table["attributed_revenue"].sum())} if not table.empty else {}
    return _result(metadata, "campaign_effectiveness", table, note, **totals)


@_asset("fct_tickets", "fct_surveys")
def service_metrics(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """First-response and resolution times, resolution rate, backlog, CSAT and NPS by month, category and rep."""
    with warehouse.connect() as con:
        table = service.service_metrics(con, warehouse.resolved_as_of(con))
        metadata = write_tables(con, warehouse, {"service_metrics": table})
        note = _empty_note(con, "fct_tickets")
    overall = table[(table["dimension"] == "overall") & (table["period"] == "all")]
    metrics = {f"metric/{column}": float(overall[column].iloc[0]) for column in
               ("median_first_response_hours", "median_resolution_hours", "resolution_rate", "nps")
               if not overall.empty and pd.notna(overall[column].iloc[0])}
    return _result(metadata, "service_metrics", table, note, **metrics)


@_asset("fct_order_items", "dim_products")
def product_associations(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Products bought together (support, confidence, lift) in SQL, and "customers who bought X also buy Y"."""
    with warehouse.connect() as con:
        as_of = warehouse.resolved_as_of(con)
        pairs = baskets.product_pairs(con, as_of)
        metadata = write_tables(con, warehouse, {
            "product_pairs": pairs, "also_bought": baskets.also_bought(con, as_of),
        })
        note = _empty_note(con, "fct_order_items")
    return _result(metadata, "product_pairs", pairs, note)


ANALYTICS_ASSETS = [
    rfm_segments, cpm_states, spend_deciles, lifecycle_stages, demographic_cuts, cohort_retention,
    customer_clv, churn_predictions, health_scores, sales_forecast, sales_funnel, campaign_effectiveness,
    service_metrics, product_associations,
]
