"""What the sales forecast is fitted on: the daily series read from the marts, and its configuration."""

from __future__ import annotations

import duckdb
import pandas as pd

from dagster_project.analytics.forecast import ForecastConfig
from dagster_project.settings import NO_HOLIDAYS
from dagster_project.sql import money_sum


def forecast_series(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Daily paid revenue and order counts: overall, per customer region and per product category, in a fixed order."""
    return con.execute(f"""
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
        select 'overall' as series_id, 'revenue' as metric, ds, {money_sum('net_amount')} as y from orders group by ds
        union all select 'overall', 'orders', ds, count(*) from orders group by ds
        union all select 'region:' || region, 'revenue', ds, {money_sum('net_amount')} from orders group by region, ds
        union all select 'region:' || region, 'orders', ds, count(*) from orders group by region, ds
        union all select 'category:' || category, 'revenue', ds, {money_sum('line_amount')} from lines
            group by category, ds
        order by 1, 2, 3
    """).df()


def forecast_config(series: pd.DataFrame, holiday_country: str | None = "CN") -> ForecastConfig:
    """`holiday_country`: the Warehouse resource's ISO code, or "none" / None for a forecast without holidays (its
    public holidays and shopping events, forecast_events.SHOPPING_EVENTS, are Prophet's event terms)."""
    country = None if not holiday_country or holiday_country.lower() == NO_HOLIDAYS else holiday_country
    return ForecastConfig(country=country)
