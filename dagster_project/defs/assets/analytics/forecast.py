"""The sales-forecast asset: the daily series it forecasts, its configuration and its metadata."""

import time
from typing import TYPE_CHECKING

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from dagster_project.as_of import resolved_as_of
from dagster_project.defs.assets.analytics.common import (
    analytics_asset, append_model_runs, asset_result, preview, record_quality, write_tables,
)
from dagster_project.report import metadata_charts
from dagster_project.defs.resources import SavedModels, Warehouse

if TYPE_CHECKING:
    from dagster_project.analytics.forecast import ForecastResult


@analytics_asset("fct_orders", "fct_order_items", "dim_customers", "dim_products")
def sales_forecast(context: AssetExecutionContext, warehouse: Warehouse, models: SavedModels) -> MaterializeResult:
    """90-day forecasts of daily revenue and orders (overall, per region, per category) with intervals. Per series,
    Prophet (overall series only; weekly and yearly seasonality, the configured country's public holidays and
    shopping events), AutoETS and the seasonal-naive baseline are backtested on rolling origins; the lowest MASE on
    the earlier folds is published and judged on the latest fold (forecast_summary, forecast_backtest). The fitted
    models are saved and forecast from the latest actuals until they are due for a refit (CRM_FORECAST_REFIT_DAYS,
    --retrain); the forecast made at the fit is scored against the actuals since, in analytics.model_runs."""
    # Model libraries: dagster_project.defs.background_imports.
    from dagster_project.analytics import forecast_cadence
    from dagster_project.analytics.forecast_inputs import forecast_config, forecast_series

    with warehouse.connect() as con:
        as_of = resolved_as_of(con)
        series = forecast_series(con)
        started = time.perf_counter()
        cadenced = forecast_cadence.run_on_cadence(
            con, series, as_of, forecast_config(series, warehouse.holiday_country), models.store,
            models.policy(models.forecast_refit_days), warehouse.reporting_currency, progress=context.log.info)
        result = cadenced.result
        in_worker = f", {result.fitted_in_worker} of them by a worker process" * bool(result.fitted_in_worker)
        context.log.info(f"{result.summary.shape[0]} series forecast in {time.perf_counter() - started:.1f} s "
                         f"({'refitted' if cadenced.refitted else 'saved models reused'}: "
                         f"{cadenced.reason}{in_worker})")
        for warning in result.warnings:  # Prophet's, Stan's and statsforecast's, with the series they concern
            context.log.warning(f"forecast: {warning}")
        metadata = write_tables(con, warehouse, {
            "sales_forecast": result.forecasts, "forecast_backtest": result.backtest,
            "forecast_summary": result.summary,
        })
        append_model_runs(con, result.runs)
        trust = record_quality(con, [result.quality])
    return asset_result(metadata, "sales_forecast", result.forecasts, result.note, summary=preview(result.summary),
                        holiday_country=warehouse.holiday_country, model_version=cadenced.version or "none",
                        refitted=cadenced.refitted, refit_reason=cadenced.reason, **forecast_metadata(result), **trust)


def forecast_metadata(result: "ForecastResult") -> dict:
    """Overall daily revenue: the published method, its evaluation-fold MASE and the baseline's, and its chart."""
    summary = result.summary.query("series_id == 'overall' and metric == 'revenue'")
    rows = result.forecasts.query("series_id == 'overall' and metric == 'revenue'")
    if summary.empty or rows.empty:
        return {}
    metadata = {f"metric/overall_revenue_{name}": float(summary[column].iloc[0])
                for name, column in (("mase", "published_mase"), ("naive_mase", "naive_mase"))
                if pd.notna(summary[column].iloc[0])}
    metadata["overall_revenue_method"] = str(summary["model"].iloc[0])
    if not result.quality.beats_baseline:
        metadata["warning"] = f"The overall revenue forecast does not beat its baseline: {result.quality.sentence()}"
    history, future = rows[rows["is_history"]].tail(120), rows[~rows["is_history"]]
    metadata["forecast_chart"] = MetadataValue.md(
        metadata_charts.forecast_chart(history, future, "Overall daily revenue: last 120 days and forecast"))
    return metadata
