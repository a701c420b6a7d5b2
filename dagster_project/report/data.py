"""What the report shows, read from the warehouse: one function per section, each returning None when the export
lacks what the section needs (a missing or empty table), so the report says so instead of failing.

Only BI-facing schemas are read (marts, analytics, quality, meta), so the same functions work on the published
warehouse and on the refresh's working database. Everything is aggregated in DuckDB: the report's size does not
grow with the number of customers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import duckdb
import numpy as np
import pandas as pd

from dagster_project.publish.publication import BUILD_SETTINGS
from dagster_project.settings import CURRENCY_LABELS, DEFAULT_REPORTING_CURRENCY
from dagster_project.sql import qualified, table_columns, table_exists

# Headline figures compare the last PERIOD_DAYS days to the PERIOD_DAYS before.
PERIOD_DAYS = 30
# A customer counts as churned at a date when the last paid order is this many days or more before it (the
# lifecycle stage "churned" and the CPM lapse threshold in docs/analytics.md use the same 365 days).
CHURN_DAYS = 365
WATCHLIST_ROWS = 20
CLV_BINS = 30
COHORT_MONTHS = 24


def has_rows(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return table_exists(con, schema, table) and con.execute(
        f"select exists (select 1 from {qualified(schema, table)})").fetchone()[0]


# ------------------------------------------------------------------------------------------------ when and what


def as_of_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """The refresh's as-of date: from the publication record, else customer_360, else the latest order."""
    if has_rows(con, "meta", "publication"):
        return con.execute("select max(as_of_date) from meta.publication").fetchone()[0]
    if has_rows(con, "marts", "customer_360"):
        return con.execute("select max(as_of_date) from marts.customer_360").fetchone()[0]
    if has_rows(con, "marts", "fct_orders"):
        return con.execute("select max(order_date) from marts.fct_orders").fetchone()[0]
    return None


@dataclass(frozen=True)
class Currency:
    """The reporting currency every amount is in: its ISO code and the label money is shown with."""

    code: str = DEFAULT_REPORTING_CURRENCY
    label: str = CURRENCY_LABELS[DEFAULT_REPORTING_CURRENCY]

    def format(self, amount: str, negative: bool = False) -> str:
        """A formatted amount with the label: "¥1,234", "$12.50", "-€3.00", "CHF 1,234" (a space after a label
        that ends in a letter or digit)."""
        space = " " if self.label[-1:].isalnum() else ""
        return f"{'-' if negative else ''}{self.label}{space}{amount}"


def currency(con: duckdb.DuckDBPyConnection) -> Currency:
    """The reporting currency recorded with the data: the published warehouse's meta.publication, else what the
    working database's marts were built with (meta.build_settings); CNY / ¥ for a warehouse published before
    currencies were recorded."""
    for schema, table in (("meta", "publication"), BUILD_SETTINGS):
        if not has_rows(con, schema, table):
            continue
        if {"reporting_currency", "currency_label"} <= table_columns(con, schema, table):
            code, label = con.execute(
                f"select reporting_currency, currency_label from {qualified(schema, table)} limit 1").fetchone()
            if code:
                return Currency(code, label or CURRENCY_LABELS.get(code, code))
    return Currency()


def refreshed_at(con: duckdb.DuckDBPyConnection) -> datetime:
    """When the warehouse was last published (meta.publication, written by the publish step); for an unpublished
    database, when its file was last written (now for one in memory)."""
    if has_rows(con, "meta", "publication"):
        return con.execute("select max(published_at) from meta.publication").fetchone()[0]
    path = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
    return datetime.fromtimestamp(os.path.getmtime(path), tz=timezone.utc) if path else datetime.now(timezone.utc)


# ------------------------------------------------------------------------------------------------------ KPIs


@dataclass(frozen=True)
class Kpi:
    key: str
    current: float | None
    previous: float | None
    # count | money | rate (0-1) | score (NPS points)
    kind: str
    higher_is_better: bool = True
    # Set when `previous` is not the previous period but the actuals of the last so many days (the forecasts).
    baseline_days: int | None = None


def kpis(con: duckdb.DuckDBPyConnection, as_of: date, period_days: int = PERIOD_DAYS) -> list[Kpi] | None:
    """Active customers, revenue, AOV, repeat rate, churn rate, NPS and the 30/90-day revenue forecast, each with
    its value for the previous period (the forecasts with the actual revenue of the last 30/90 days)."""
    if not has_rows(con, "marts", "fct_orders"):
        return None
    current_start = as_of - timedelta(days=period_days - 1)
    previous_end = current_start - timedelta(days=1)
    previous_start = previous_end - timedelta(days=period_days - 1)
    windows = [(current_start, as_of), (previous_start, previous_end)]
    forecast_windows = [(as_of - timedelta(days=days - 1), as_of) for days in (30, 90)]
    *sales, actual_30, actual_90 = _sales_windows(con, windows + forecast_windows)
    churn = _churn_rates(con, [end for _, end in windows])
    nps = [_nps(con, start, end) for start, end in windows] if has_rows(con, "marts", "fct_surveys") else [None, None]
    figures = [
        Kpi("active_customers", sales[0]["active"], sales[1]["active"], "count"),
        Kpi("revenue", sales[0]["revenue"], sales[1]["revenue"], "money"),
        Kpi("aov", sales[0]["aov"], sales[1]["aov"], "money"),
        Kpi("repeat_rate", sales[0]["repeat_rate"], sales[1]["repeat_rate"], "rate"),
        Kpi("churn_rate", churn[0], churn[1], "rate", higher_is_better=False),
        Kpi("nps", nps[0], nps[1], "score"),
    ]
    forecast = _forecast_totals(con, as_of)
    for days, actual in ((30, actual_30), (90, actual_90)):
        figures.append(Kpi(f"forecast_{days}", forecast.get(days), actual["revenue"], "money", baseline_days=days))
    return figures


def _sales_windows(con: duckdb.DuckDBPyConnection, windows: list[tuple[date, date]]) -> list[dict]:
    """Per (start, end) window: buyers, revenue, AOV and the share of buyers who had bought before it, for paid orders
    in it. One pass over the orders for every window (each customer's first paid order says who bought before)."""
    values = ", ".join(f"({n}, ?::date, ?::date)" for n in range(len(windows)))
    rows = con.execute(f"""
        with paid as (select customer_key, order_date, net_amount from marts.fct_orders where is_paid),
        windows as (select * from (values {values}) as w(n, start_date, end_date)),
        in_window as (
            select w.n, p.customer_key, p.net_amount
            from paid as p join windows as w on p.order_date between w.start_date and w.end_date
        ),
        first_orders as (select customer_key, min(order_date) as first_order from paid group by customer_key),
        buyers as (
            select b.n, count(*) as active, count(*) filter (where f.first_order < w.start_date) as returning
            from (select distinct n, customer_key from in_window) as b
            join windows as w using (n)
            left join first_orders as f using (customer_key)
            group by b.n
        ),
        orders as (select n, count(*) as orders, sum(net_amount) as revenue from in_window group by n)
        select coalesce(b.active, 0), coalesce(o.orders, 0), o.revenue, coalesce(b.returning, 0)
        from windows as w left join buyers as b using (n) left join orders as o using (n)
        order by w.n
    """, [day for window in windows for day in window]).fetchall()
    return [{
        "active": active,
        "revenue": float(revenue or 0.0),
        "aov": float(revenue) / orders if orders else None,
        "repeat_rate": returning / active if active else None,
    } for active, orders, revenue, returning in rows]


def _churn_rates(con: duckdb.DuckDBPyConnection, ats: list[date]) -> list[float | None]:
    """Per date `at`: of customers with a paid order by it, the share whose last one is CHURN_DAYS or more before it.
    One pass over the orders for every date."""
    last = ", ".join(f"max(order_date) filter (where order_date <= ?::date) as last_{n}" for n in range(len(ats)))
    counts = ", ".join(f"count(last_{n}), count(*) filter (where last_{n} <= ?::date - ?::integer)"
                       for n in range(len(ats)))
    row = con.execute(f"""
        select {counts}
        from (select {last} from marts.fct_orders where is_paid and order_date <= ?::date group by customer_key)
    """, [value for at in ats for value in (at, CHURN_DAYS)] + list(ats) + [max(ats)]).fetchone()
    return [churned / buyers if buyers else None for buyers, churned in zip(row[::2], row[1::2])]


def _nps(con: duckdb.DuckDBPyConnection, start: date, end: date) -> float | None:
    answers, score = con.execute("""
        select count(*), 100.0 * (count(*) filter (where nps_group = 'promoter')
                                  - count(*) filter (where nps_group = 'detractor')) / nullif(count(*), 0)
        from marts.fct_surveys where answered_date between ? and ?
    """, [start, end]).fetchone()
    return float(score) if answers else None


def _forecast_totals(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[int, float]:
    if not has_rows(con, "analytics", "sales_forecast"):
        return {}
    totals = con.execute("""
        select sum(yhat) filter (where ds <= ?::date + 30), sum(yhat) filter (where ds <= ?::date + 90),
               max(ds)::date
        from analytics.sales_forecast
        where series_id = 'overall' and metric = 'revenue' and not is_history and ds > ?::date
    """, [as_of, as_of, as_of]).fetchone()
    last_day = totals[2]
    # A total over a horizon the forecast does not cover would be an undercount: leave it out.
    return {days: float(total) for days, total in zip((30, 90), totals[:2])
            if total is not None and last_day is not None and last_day >= as_of + timedelta(days=days)}


# -------------------------------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class RevenueTrend:
    history: pd.DataFrame   # ds, revenue (every day of the last year, 0 when nothing sold)
    forecast: pd.DataFrame | None  # ds, yhat, yhat_lower, yhat_upper


def revenue_trend(con: duckdb.DuckDBPyConnection, as_of: date, days: int = 365) -> RevenueTrend | None:
    if not has_rows(con, "marts", "fct_orders"):
        return None
    history = con.execute("""
        select d.ds, coalesce(sum(o.net_amount), 0) as revenue
        from (select unnest(generate_series(?::date - ?::integer + 1, ?::date, interval 1 day))::date as ds) d
        left join marts.fct_orders o on o.order_date = d.ds and o.is_paid
        group by d.ds order by d.ds
    """, [as_of, days, as_of]).df()
    forecast = None
    if has_rows(con, "analytics", "sales_forecast"):
        forecast = con.execute("""
            select ds::date as ds, yhat, yhat_lower, yhat_upper from analytics.sales_forecast
            where series_id = 'overall' and metric = 'revenue' and not is_history and ds > ?::date order by ds
        """, [as_of]).df()
        forecast = forecast if not forecast.empty else None
    return RevenueTrend(history, forecast)


def segments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Customers and revenue per RFM segment, largest revenue first."""
    if not has_rows(con, "analytics", "rfm_segments"):
        return None
    return con.execute("""
        select segment, count(*) as customers, sum(monetary) as revenue from analytics.rfm_segments
        group by segment order by revenue desc, segment
    """).df()


def deciles(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    if not has_rows(con, "analytics", "spend_deciles"):
        return None
    return con.execute("""
        select decile, customers, orders, revenue, revenue_share, cumulative_share, avg_ticket
        from analytics.spend_deciles order by decile
    """).df()


def cohorts(con: duckdb.DuckDBPyConnection, months: int = COHORT_MONTHS) -> pd.DataFrame | None:
    """Retention % as a matrix: one row per first-order month (the last `months`), one column per month since."""
    if not has_rows(con, "analytics", "cohort_retention"):
        return None
    long = con.execute("""
        select strftime(cohort_month, '%Y-%m') as cohort, months_since, retention_pct
        from analytics.cohort_retention
        where cohort_month >= (select max(cohort_month) from analytics.cohort_retention) - to_months(?::integer - 1)
          and months_since <= ?
    """, [months, months]).df()
    return long.pivot(index="cohort", columns="months_since", values="retention_pct").sort_index()


@dataclass(frozen=True)
class Funnel:
    stages: pd.DataFrame  # stage, reached, conversion_to_next (open stages to won, in order)
    win_rate: float | None
    median_cycle_days: float | None


def funnel(con: duckdb.DuckDBPyConnection) -> Funnel | None:
    if not has_rows(con, "analytics", "funnel_stages"):
        return None
    stages = con.execute("""
        select stage, reached, conversion_to_next from analytics.funnel_stages
        where dimension = 'overall' and stage <> 'lost' order by stage_order
    """).df()
    if stages.empty or stages["reached"].sum() == 0:
        return None
    overall = con.execute("""
        select win_rate, median_sales_cycle_days from analytics.funnel_conversion where dimension = 'overall'
    """).fetchone() if has_rows(con, "analytics", "funnel_conversion") else None
    return Funnel(stages, *(overall or (None, None)))


def campaigns(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Campaigns with a cost (ROI is undefined without one), one row per campaign id under its label (the name,
    with the id when names repeat), best ROI first and those without attributed revenue (NULL ROI, a reason) last;
    with the matched lift where the campaign has one."""
    if not has_rows(con, "analytics", "campaign_effectiveness"):
        return None
    table = con.execute("""
        select campaign_label, channel, cost, participants, attributed_revenue, roi, roi_note, revenue_lift,
               revenue_lift_ci_low, revenue_lift_ci_high, incremental_roi, lift_note
        from analytics.campaign_effectiveness
        where cost > 0 order by roi desc nulls last, campaign_label
    """).df()
    return table if not table.empty else None


def service(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Tickets and median first-response / resolution hours per month."""
    if not has_rows(con, "analytics", "service_metrics"):
        return None
    table = con.execute("""
        select period, tickets_opened, median_first_response_hours, median_resolution_hours
        from analytics.service_metrics
        where dimension = 'overall' and regexp_full_match(period, '\\d{4}-\\d{2}') order by period
    """).df()
    return table if not table.empty else None


@dataclass(frozen=True)
class Distribution:
    bins: pd.DataFrame  # bin_start, bin_end, customers[, group]
    total: float
    median: float
    # The last bin holds everything from its start up (a long tail); it is drawn as wide as the others.
    open_ended: bool


def round_step(raw: float) -> float:
    """The smallest round number (1, 2, 2.5 or 5 times a power of ten) at least `raw` (> 0)."""
    power = 10.0 ** np.floor(np.log10(raw))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9)))


def clv_distribution(con: duckdb.DuckDBPyConnection, bins: int = CLV_BINS) -> Distribution | None:
    """Customers per 12-month-CLV bin: equal bins of a round width (at most `bins` of them) up to the 99th
    percentile, so every edge is a round number, then, if anyone is beyond, one open-ended bin for the tail
    ("5,000 and above"). Negative values (none expected) count in the first bin. The bins add up to every customer
    with a CLV."""
    if not has_rows(con, "analytics", "customer_clv"):
        return None
    total, median, top = con.execute("""
        select sum(clv_12m), median(clv_12m), quantile_cont(clv_12m, 0.99)
        from analytics.customer_clv where clv_12m is not null
    """).fetchone()
    if total is None:
        return None
    width = round_step(float(top) / bins) if top and top > 0 else 1.0
    regular = max(1, int(np.ceil(float(top) / width - 1e-9))) if top and top > 0 else 1
    table = con.execute("""
        select least(floor(greatest(clv_12m, 0) / ?)::integer, ?) as bin, count(*) as customers
        from analytics.customer_clv where clv_12m is not null group by bin order by bin
    """, [width, regular]).df()
    counts = table.set_index("bin")["customers"]
    open_ended = bool(counts.get(regular, 0))
    count = regular + 1 if open_ended else regular
    edges = np.arange(count) * width
    frame = pd.DataFrame({"bin_start": edges, "bin_end": edges + width})
    frame["customers"] = counts.reindex(range(count), fill_value=0).to_numpy()
    return Distribution(frame, float(total), float(median), open_ended=open_ended)


def churn_distribution(con: duckdb.DuckDBPyConnection, bins: int = 20) -> Distribution | None:
    """Customers per churn-probability bin (0-1) and risk band."""
    if not has_rows(con, "analytics", "churn_scores"):
        return None
    table = con.execute("""
        select least(floor(churn_probability * ?)::integer, ? - 1) as bin, risk_band, count(*) as customers
        from analytics.churn_scores where churn_probability is not null group by all order by bin, risk_band
    """, [bins, bins]).df()
    if table.empty:
        return None
    table["bin_start"] = table["bin"] / bins
    table["bin_end"] = (table["bin"] + 1) / bins
    total, median = con.execute(
        "select count(*), median(churn_probability) from analytics.churn_scores").fetchone()
    return Distribution(table.rename(columns={"risk_band": "group"}).drop(columns="bin"), float(total),
                        float(median), open_ended=False)


def watchlist(con: duckdb.DuckDBPyConnection, rows: int = WATCHLIST_ROWS) -> pd.DataFrame | None:
    """The most value at risk first. Consent is already applied by the churn asset (docs/analytics.md)."""
    if not has_rows(con, "analytics", "churn_scores"):
        return None
    if not has_rows(con, "analytics", "churn_watchlist"):
        return pd.DataFrame(columns=["customer_key", "clv_12m", "churn_probability", "value_at_risk",
                                     "main_driver", "suggested_action"])
    return con.execute("""
        select customer_key, clv_12m, churn_probability, value_at_risk, main_driver, suggested_action
        from analytics.churn_watchlist order by value_at_risk desc, customer_key limit ?
    """, [rows]).df()


# What becomes of a row read from an export file, as marts.fct_reconciliation counts it (docs/bad_input.md): every
# row has exactly one outcome, so rows read = the sum of these (unaccounted_rows must be 0).
OUTCOMES = ("rows_landed", "rows_quarantined", "rows_merged", "rows_superseded", "rows_deferred", "rows_unattributed",
            "unaccounted_rows")


@dataclass(frozen=True)
class Quality:
    totals: dict[str, int]   # rows_read and every outcome
    by_entity: pd.DataFrame  # entity, files, rows_read and every outcome
    reasons: pd.DataFrame    # entity, reason, rows
    checks: int | None       # checks recorded in the latest quality run; None when none are recorded
    failing: pd.DataFrame    # suite, expectation, severity, observed_value


def quality(con: duckdb.DuckDBPyConnection, reasons: int = 8) -> Quality | None:
    if not has_rows(con, "marts", "fct_reconciliation"):
        return None
    present = table_columns(con, "marts", "fct_reconciliation")
    # An outcome a warehouse built before it existed does not record had no rows.
    sums = ", ".join(f"coalesce(sum({c}), 0)::bigint as {c}" if c in present else f"0::bigint as {c}"
                     for c in ("rows_read", *OUTCOMES))
    totals = con.execute(f"select {sums} from marts.fct_reconciliation").df().iloc[0]
    by_entity = con.execute(f"""
        select entity, count(*) as files, {sums}
        from marts.fct_reconciliation group by entity order by rows_read desc, entity
    """).df()
    top_reasons = con.execute("""
        select entity, reason, count(*) as rows from marts.fct_quarantined_rows
        group by all order by rows desc, entity, reason limit ?
    """, [reasons]).df() if has_rows(con, "marts", "fct_quarantined_rows") else pd.DataFrame(
        columns=["entity", "reason", "rows"])
    checks, failing = _quality_results(con)
    return Quality({c: int(v) for c, v in totals.items()}, by_entity, top_reasons, checks, failing)


def _quality_results(con: duckdb.DuckDBPyConnection) -> tuple[int | None, pd.DataFrame]:
    """Expectations of the latest refresh in quality.quality_results (the Great Expectations history, appended by
    every refresh's checks, dagster_project/quality/results.py)."""
    if not has_rows(con, "quality", "quality_results"):
        return None, pd.DataFrame(columns=["suite", "expectation", "severity", "observed_value"])
    latest = con.execute("select run_id from quality.quality_results order by checked_at desc limit 1").fetchone()[0]
    checks = con.execute("select count(*) from quality.quality_results where run_id = ?", [latest]).fetchone()[0]
    failing = con.execute("""
        select suite, expectation_type || coalesce(' (' || column_name || ')', '') as expectation, severity,
               cast(observed_value as varchar) as observed_value
        from quality.quality_results where run_id = ? and not success order by suite, expectation
    """, [latest]).df()
    return checks, failing
