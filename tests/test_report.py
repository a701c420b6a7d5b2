"""The HTML report as a person sees it, opened in Debian's headless Chromium (driven by playwright): every chart drawn,
no script errors, nothing fetched from anywhere; in English and Chinese; for the full sample and an orders-only
export. Plus the figures behind it on a hand-made order book, and the Dagster metadata the refresh records."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from dagster_project.cli import main
from dagster_project.report import data
from dagster_project.report.files import default_report_path
from dagster_project.report.i18n import LABELS, LANGUAGES, Translator
from dagster_project.report.metadata_charts import bar_chart
from dagster_project.report.render import collect, render

CHROMIUM = Path("/usr/bin/chromium")
# Headless, offline and quiet: no sandbox (containers), no GPU, no QUIC, no first-run, background or update traffic.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ["kpis", "revenue_trend", "segments", "pareto", "cohorts", "funnel", "campaigns", "service", "clv",
            "churn_risk", "watchlist", "quality"]
CHART_SECTIONS = set(SECTIONS) - {"kpis", "watchlist", "quality"}

# Per section: is it marked unavailable, and for each plotly chart in it: main SVGs, plotted traces, and drawn marks
# (bar and line paths, heatmap images) -- zero marks means the chart is empty even if plotly ran.
SECTIONS_JS = """() => Object.fromEntries([...document.querySelectorAll('main section')].map(s => [s.id, {
    unavailable: s.classList.contains('not-available'),
    charts: [...s.querySelectorAll('.plotly-graph-div')].map(d => ({
        svgs: d.querySelectorAll('svg.main-svg').length,
        traces: (d._fullData || []).length,
        marks: d.querySelectorAll('g.trace path, g.trace rect, .heatmaplayer image').length,
    })),
}]))"""


@dataclass
class Opened:
    sections: dict[str, dict]
    errors: list[str]
    requests: list[str]
    text: str
    lang: str
    kpis: dict[str, str]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it (see the Makefile's browser step)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


def open_report(browser, path: Path) -> Opened:
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    opened = Opened(
        sections=page.evaluate(SECTIONS_JS), errors=errors, requests=requests, text=page.inner_text("body"),
        lang=page.evaluate("document.documentElement.lang"),
        kpis={k: page.inner_text(f'[data-kpi="{k}"] .value') for k in
              page.evaluate("[...document.querySelectorAll('[data-kpi]')].map(e => e.dataset.kpi)")},
    )
    page.close()
    return opened


def assert_renders(opened: Opened, path: Path) -> None:
    """No script error, no request but the file itself, every section there, every available chart drawn."""
    assert opened.errors == []
    assert opened.requests == [path.as_uri()]
    assert list(opened.sections) == SECTIONS
    for section, state in opened.sections.items():
        if state["unavailable"] or section not in CHART_SECTIONS:
            assert state["charts"] == [], section
            continue
        assert len(state["charts"]) == 1, section
        chart = state["charts"][0]
        assert chart["svgs"] >= 1 and chart["traces"] >= 1 and chart["marks"] >= 1, (section, chart)
    assert not re.search(r"\b(nan|NaN|None|undefined)\b", opened.text)


def unavailable(opened: Opened) -> set[str]:
    return {section for section, state in opened.sections.items() if state["unavailable"]}


# ---------------------------------------------------------------------------------------------- in Chromium


def test_the_refresh_writes_a_report_in_each_language_that_draws_every_chart(refreshed, browser):
    english = open_report(browser, default_report_path(refreshed.warehouse, "en"))
    assert_renders(english, default_report_path(refreshed.warehouse, "en"))
    assert english.lang == "en" and unavailable(english) == set()  # the sample has every entity

    with refreshed.connect_published() as con:
        as_of = con.execute("select max(as_of_date) from marts.customer_360").fetchone()[0]
        revenue = con.execute("select sum(net_amount) from marts.fct_orders where is_paid and order_date between ? "
                              "and ?", [as_of - timedelta(days=29), as_of]).fetchone()[0]
        watchlist = con.execute("select count(*) from analytics.churn_watchlist").fetchone()[0]
        shown = con.execute("select customer_key, marketing_consent from analytics.churn_watchlist "
                            "join marts.dim_customers using (customer_key) order by value_at_risk desc limit 20"
                            ).fetchall()
        quarantined = con.execute("select sum(rows_quarantined) from marts.fct_reconciliation").fetchone()[0]
    assert english.kpis["revenue"] == f"¥{revenue:,.0f}"  # the sample is reported in yuan, the default
    assert set(english.kpis) == {"active_customers", "revenue", "aov", "repeat_rate", "churn_rate", "nps",
                                 "forecast_30", "forecast_90"}
    assert all(value != "–" for value in english.kpis.values()), english.kpis
    assert watchlist > 0 and all(consent for _, consent in shown)
    assert all(key in english.text for key, _ in shown)
    assert f"{quarantined:,}" in english.text

    chinese = open_report(browser, default_report_path(refreshed.warehouse, "zh"))
    assert_renders(chinese, default_report_path(refreshed.warehouse, "zh"))
    t = Translator("zh")
    assert chinese.lang == "zh-CN"
    for key in ("title", *SECTIONS):
        assert t(key) in chinese.text, key
        assert LABELS[key][0] not in chinese.text, key
    assert chinese.kpis == english.kpis


def test_an_orders_only_export_gets_a_report_that_says_what_it_lacks(orders_only, browser):
    path = default_report_path(orders_only.warehouse, "en")
    opened = open_report(browser, path)
    assert_renders(opened, path)
    assert unavailable(opened) == {"funnel", "campaigns", "service"}
    t = Translator("en")
    for missing in ("what_opportunities", "what_campaigns", "what_tickets"):
        assert t("not_available", what=t(missing)) in opened.text
    assert opened.kpis["nps"] == "–"  # no surveys in the export
    # Nobody gave marketing consent in an orders-only export, so nobody may be on the watchlist.
    assert t("watchlist_empty") in opened.text


# --------------------------------------------------------------------------------------------------- the CLI


def test_the_report_command_writes_the_chosen_language_whole(refreshed, tmp_path, capsys):
    out = tmp_path / "reports" / "today.html"
    assert main(["report", "--warehouse", str(refreshed.warehouse), "--out", str(out), "--lang", "zh"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page and Translator("zh")("title") in page
    assert page.count("Plotly.newPlot(") == len(CHART_SECTIONS) and "<script src" not in page
    assert sorted(p.name for p in out.parent.iterdir()) == ["today.html"]  # no temporary file left behind

    assert main(["report", "--warehouse", str(tmp_path / "missing.duckdb")]) == 1
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- the figures, by hand


@pytest.fixture
def order_book():
    """Four customers around an as-of date of 2026-03-31 (current period 03-02..03-31, previous 01-31..03-01)."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.fct_orders (customer_key varchar, order_date date, net_amount double, "
                "is_paid boolean)")
    con.execute("""insert into marts.fct_orders values
        ('A', '2025-01-10', 100, true), ('A', '2026-03-10', 50, true),   -- returning buyer this period
        ('B', '2026-03-15', 30, true), ('B', '2026-03-20', 0, false),    -- new buyer; a cancelled order
        ('C', '2026-02-15', 200, true),                                  -- bought in the previous period only
        ('D', '2024-12-01', 80, true)                                    -- churned long ago""")
    yield con
    con.close()


def test_headline_figures_follow_their_definitions(order_book):
    figures = {k.key: k for k in data.kpis(order_book, date(2026, 3, 31))}
    assert (figures["active_customers"].current, figures["active_customers"].previous) == (2, 1)
    assert (figures["revenue"].current, figures["revenue"].previous) == (80, 200)
    assert (figures["aov"].current, figures["aov"].previous) == (40, 200)
    assert (figures["repeat_rate"].current, figures["repeat_rate"].previous) == (0.5, 0.0)
    # At 03-31, D is the one of four buyers without an order in 365 days; at 03-01, A (last order 2025-01-10) and D
    # are two of the three who had bought by then.
    assert figures["churn_rate"].current == pytest.approx(1 / 4)
    assert figures["churn_rate"].previous == pytest.approx(2 / 3)
    assert not figures["churn_rate"].higher_is_better
    assert figures["nps"].current is None  # no survey table
    assert figures["forecast_30"].current is None and figures["forecast_30"].previous == 80  # no forecast


def test_a_warehouse_with_only_orders_renders_every_other_section_as_not_available(order_book):
    report = render(collect(order_book), "en", generated=datetime(2026, 4, 1))
    assert set(report.unavailable) == set(SECTIONS) - {"kpis", "revenue_trend"}
    assert report.html.count("Plotly.newPlot(") == 1


def test_money_is_labelled_with_the_currency_the_warehouse_records(order_book):
    order_book.execute("create schema meta")
    # A warehouse published before currencies were recorded: yuan, as every refresh then reported in.
    order_book.execute("create table meta.publication as select 'r1' as run_id, now() as published_at, "
                       "date '2026-03-31' as as_of_date, 1 as tables, 5 as total_rows")
    assert data.currency(order_book) == data.Currency("CNY", "¥")
    page = render(collect(order_book), "en").html
    assert "Amounts in <b>CNY</b> (¥)" in page and 'data-kpi="revenue"' in page and ">¥80.00<" in page

    order_book.execute("create or replace table meta.publication as select 'r2' as run_id, now() as published_at, "
                       "date '2026-03-31' as as_of_date, 1 as tables, 5 as total_rows, "
                       "'USD' as reporting_currency, '$' as currency_label")
    assert data.currency(order_book) == data.Currency("USD", "$")
    for lang in LANGUAGES:
        page = render(collect(order_book), lang).html
        assert page.count('data-currency="USD"') == 1 and ">$80.00<" in page and ">$40.00<" in page, lang
        assert "Revenue ($)" in page or "销售额 ($)" in page, lang  # the revenue chart's axis
        assert not re.search("¥|元|yuan", page), lang

    # A currency without a symbol of its own is shown with its code, and a label set by hand wins.
    swiss = render(collect(order_book, data.Currency("CHF", "CHF")), "en").html
    assert "Amounts in <b>CHF</b><" in swiss and ">CHF 80.00<" in swiss
    assert data.Currency("EUR", "€").format("3.00", negative=True) == "-€3.00"


def test_the_working_database_tells_the_report_the_currency_its_marts_were_built_in(order_book):
    from dagster_project.publish import record_build_settings

    record_build_settings(order_book, "GBP", "GBP", "£")
    assert data.currency(order_book) == data.Currency("GBP", "£")
    assert "Amounts in <b>GBP</b> (£)" in render(collect(order_book), "en").html


def test_data_quality_shows_the_failures_of_the_latest_quality_run_only(order_book):
    order_book.execute("create table marts.fct_reconciliation as select 'orders' as entity, 6 as rows_read, "
                       "5 as rows_landed, 1 as rows_quarantined, 0 as rows_merged, 0 as unaccounted_rows")
    order_book.execute("create schema quality")
    order_book.execute("create table quality.quality_results (run_id varchar, checked_at timestamp, suite varchar, "
                       "expectation_type varchar, column_name varchar, observed_value json, success boolean, "
                       "severity varchar)")
    order_book.execute("""insert into quality.quality_results values
        ('old', '2026-03-30 06:00', 'marts_fct_orders', 'expect_column_values_to_not_be_null', 'order_id', '3', false,
         'stop'),
        ('new', '2026-03-31 06:00', 'marts_fct_orders', 'expect_column_values_to_not_be_null', 'order_id', '0', true,
         'stop'),
        ('new', '2026-03-31 06:00', 'marts_fct_orders', 'expect_column_mean_to_be_between', 'amount', '512.5', false,
         'warn')""")
    quality = data.quality(order_book)
    assert quality.totals["rows_quarantined"] == 1 and quality.checks == 2
    assert quality.failing.to_dict("records") == [{
        "suite": "marts_fct_orders", "expectation": "expect_column_mean_to_be_between (amount)", "severity": "warn",
        "observed_value": "512.5"}]
    page = render(collect(order_book), "zh").html
    assert "expect_column_mean_to_be_between (amount)" in page and "警告" in page


def test_every_label_has_both_languages_with_the_same_placeholders():
    assert LANGUAGES == ("en", "zh")
    for key, (english, chinese) in LABELS.items():
        assert english and chinese and english != chinese, key
        assert re.search(r"[\u4e00-\u9fff]", chinese), key
        assert set(re.findall(r"{(\w+)}", english)) == set(re.findall(r"{(\w+)}", chinese)), key


# ------------------------------------------------------------------------------------------ Dagster metadata


def _png(markdown: str) -> bytes:
    return base64.b64decode(re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)[1])


def test_assets_record_counts_previews_key_metrics_and_charts(refreshed):
    metadata = refreshed.metadata
    with refreshed.connect() as con:
        def count(table: str) -> int:
            return con.execute(f"select count(*) from {table}").fetchone()[0]

        # dbt table models carry their row count; views (staging) do not, counting one would run its query.
        for mart in ("fct_orders", "dim_customers", "customer_360", "fct_reconciliation"):
            assert metadata[f"marts/{mart}"]["dagster/row_count"].value == count(f"marts.{mart}"), mart
        assert "dagster/row_count" not in metadata["staging/stg_crm__orders"]
        clv_total = con.execute("select sum(clv_12m) from analytics.customer_clv").fetchone()[0]
        for name in ("rfm_segments", "cpm_states", "spend_deciles", "cohort_retention", "customer_clv",
                     "churn_predictions", "health_scores", "sales_forecast", "sales_funnel",
                     "campaign_effectiveness", "service_metrics", "product_associations", "lifecycle_stages",
                     "demographic_cuts"):
            entry = metadata[f"analytics/{name}"]
            assert entry["dagster/row_count"].value > 0 and entry["preview"].md_str.startswith("| "), name
    assert metadata["analytics/customer_clv"]["metric/clv_12m_total"].value == pytest.approx(clv_total)
    assert 0.5 < metadata["analytics/churn_predictions"]["metric/auc"].value <= 1
    assert metadata["analytics/sales_forecast"]["metric/overall_revenue_mase"].value > 0
    for asset, chart in (("analytics/rfm_segments", "segment_chart"), ("analytics/sales_forecast", "forecast_chart")):
        assert _png(metadata[asset][chart].md_str).startswith(b"\x89PNG"), asset
    assert metadata["reporting/report"]["not_available"].data == []


def test_metadata_bar_chart_is_a_png_in_markdown():
    png = _png(bar_chart({"champions": 3, "lost": 1}, "Customers per RFM segment"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_every_asset_has_a_description_and_a_group(tmp_path):
    from dagster_project.definitions import build_definitions
    from dagster_project.settings import Settings

    graph = build_definitions(Settings(exports_dir=tmp_path, warehouse=tmp_path / "w.duckdb", as_of=None,
                                       schedule_timezone="UTC")).resolve_asset_graph()
    nodes = [graph.get(key) for key in graph.get_all_asset_keys()]
    assert {"ingest", "staging", "marts", "analytics", "reporting"} <= {node.group_name for node in nodes}
    for node in nodes:
        assert (node.description or "").strip(), node.key.to_user_string()
