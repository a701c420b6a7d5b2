"""The HTML report as a person sees it, opened in Debian's headless Chromium (driven by playwright): every chart drawn,
no script errors, nothing fetched from anywhere; in English and Chinese, with Chinese drawn as glyphs on a system
without any CJK font; for the full sample and an orders-only export. Plus the figures behind it on a hand-made order
book, and the Dagster metadata the refresh records (its charts draw Chinese too)."""

from __future__ import annotations

import base64
import io
import math
import os
import re
import subprocess
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dagster_project.cli import main
from dagster_project.report import charts, data, fonts
from dagster_project.warehouse_files import report_path
from dagster_project.report.i18n import LABELS, LANGUAGES, Translator
from dagster_project.report.metadata_charts import bar_chart, forecast_chart
from dagster_project.report.render import collect, render

CHROMIUM = Path("/usr/bin/chromium")
# Headless, offline and quiet: no sandbox (containers), no GPU, no QUIC, no first-run, background or update traffic.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ["kpis", "revenue_trend", "segments", "pareto", "cohorts", "funnel", "campaigns", "service", "clv",
            "churn_risk", "watchlist", "trust", "quality"]
CHART_SECTIONS = set(SECTIONS) - {"kpis", "watchlist", "trust", "quality"}

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


def _fc_list(*pattern: str, env: dict | None = None) -> set[str]:
    out = subprocess.run(["fc-list", *pattern, "--format", "%{file}\n"], capture_output=True, text=True, check=True,
                         env=env).stdout
    return set(out.splitlines())


def without_cjk_fonts(folder: Path) -> dict[str, str]:
    """An environment whose fontconfig sees the machine's fonts less every one with Chinese glyphs (a folder of links
    to the others): Chromium launched with it is a system without a CJK font, whatever this machine has installed."""
    (folder / "fonts").mkdir()
    for i, path in enumerate(sorted(_fc_list() - _fc_list(":lang=zh"))):
        (folder / "fonts" / f"{i}-{Path(path).name}").symlink_to(path)
    config = folder / "fonts.conf"
    config.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n'
                      f'<fontconfig><dir>{folder / "fonts"}</dir><cachedir>{folder / "cache"}</cachedir>'
                      "</fontconfig>\n")
    env = {**os.environ, "FONTCONFIG_FILE": str(config)}
    assert _fc_list(env=env) and not _fc_list(":lang=zh", env=env)
    return env


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium on a system without a CJK font (the report must bring its own glyphs)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it (see the Makefile's browser step)"
    env = without_cjk_fonts(tmp_path_factory.mktemp("fontconfig"))
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900}, env=env)
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


# The element's Chinese characters (up to four distinct ones), each drawn alone on a canvas in the element's own font
# (family list, weight): with a glyph per character the pictures differ; drawn as "tofu" (the missing-glyph box)
# they are all the same picture.
GLYPHS_JS = r"""async (selector) => {
    await document.fonts.ready;
    const element = document.querySelector(selector), style = getComputedStyle(element);
    const chars = [...new Set([...element.textContent].filter(c => /\p{Script=Han}/u.test(c)))].slice(0, 4);
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 64;
    const context = canvas.getContext('2d');
    context.font = `${style.fontWeight} 40px ${style.fontFamily}`;
    return {family: style.fontFamily, chars: chars, pictures: chars.map(c => {
        context.clearRect(0, 0, 64, 64);
        context.fillText(c, 8, 48);
        return canvas.toDataURL();
    })};
}"""
# Take the embedded font out of the open page: its @font-face rule and the face the page's script registers.
REMOVE_FONT_JS = f"""() => {{
    document.getElementById('cjk-font').remove();
    [...document.fonts].filter(f => f.family.replace(/"/g, '') === '{fonts.FAMILY}')
        .forEach(f => document.fonts.delete(f));
}}"""
# Text elements of the page and its charts: the title, a KPI label, a chart's axis title and date tick labels.
CHINESE_ELEMENTS = ("header h1", '[data-kpi="active_customers"] .label', "#chart-revenue_trend .g-ytitle text",
                    "#chart-revenue_trend .xtick text", "#chart-churn_risk .legendtext")


def distinct_glyphs(page, selector: str) -> tuple[int, int]:
    """(Chinese characters of the element, distinct pictures they draw)."""
    drawn = page.evaluate(GLYPHS_JS, selector)
    return len(drawn["chars"]), len(set(drawn["pictures"]))


# ---------------------------------------------------------------------------------------------- in Chromium


def test_the_refresh_writes_a_report_in_each_language_that_draws_every_chart(refreshed, browser):
    english = open_report(browser, report_path(refreshed.warehouse, "en"))
    assert_renders(english, report_path(refreshed.warehouse, "en"))
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

    chinese = open_report(browser, report_path(refreshed.warehouse, "zh"))
    assert_renders(chinese, report_path(refreshed.warehouse, "zh"))
    t = Translator("zh")
    assert chinese.lang == "zh-CN"
    for key in ("title", *SECTIONS):
        assert t(key) in chinese.text, key
        assert LABELS[key][0] not in chinese.text, key
    assert chinese.kpis == english.kpis


def test_chinese_is_drawn_as_glyphs_on_a_system_without_a_cjk_font(refreshed, browser):
    """The browser sees no font with Chinese glyphs (without_cjk_fonts): the Chinese report, its charts included,
    draws every Chinese character as its own glyph, from the font subset it embeds; without that font the same
    characters are all one box (the check can tell tofu from glyphs on this machine)."""
    path = report_path(refreshed.warehouse, "zh")
    page = browser.new_page()
    page.goto(path.as_uri(), wait_until="load")
    for selector in CHINESE_ELEMENTS:
        characters, pictures = distinct_glyphs(page, selector)
        assert characters >= 2 and pictures == characters, selector
    # The embedded faces (the @font-face rule's, the one its script registers) are loaded; charts use the family.
    assert page.evaluate(f"""[...document.fonts].filter(f => f.family.replace(/"/g, '') === '{fonts.FAMILY}')
                             .map(f => f.status)""") == ["loaded", "loaded"]
    assert fonts.FAMILY in page.evaluate("getComputedStyle(document.querySelector('#chart-revenue_trend "
                                         ".g-ytitle text')).fontFamily")
    title, axis = page.locator("header h1"), page.locator("#chart-revenue_trend .g-ytitle")
    shots = (title.screenshot(), axis.screenshot())

    page.evaluate(REMOVE_FONT_JS)
    for selector in CHINESE_ELEMENTS:
        characters, pictures = distinct_glyphs(page, selector)
        assert characters >= 2 and pictures == 1, selector  # tofu: every character the same box
    assert title.screenshot() != shots[0] and axis.screenshot() != shots[1]
    page.close()


def test_the_report_s_numbers_agree_and_read_in_its_language(refreshed, browser):
    """Date axes in the language; round ticks; the CLV tail bar labelled; the two churn figures explained where each
    is shown; data quality's outcomes add up to the rows read, in total and per entity."""
    with refreshed.connect_published() as con:
        read, landed = con.execute("select sum(rows_read), sum(rows_landed) from marts.fct_reconciliation").fetchone()
    for lang in LANGUAGES:
        t = Translator(lang)
        page = browser.new_page()
        page.goto(report_path(refreshed.warehouse, lang).as_uri(), wait_until="load")

        def texts(selector: str) -> list[str]:
            return page.evaluate(f"[...document.querySelectorAll('{selector}')].map(e => e.textContent)")

        months = texts("#chart-revenue_trend .xtick text") + texts("#chart-service .xtick text")
        pattern = r"\d{4}年\d{1,2}月" if lang == "zh" else r"[A-Z][a-z]{2} \d{4}"
        assert len(months) > 5 and all(re.fullmatch(pattern, m) for m in months), (lang, months)

        for axis in ("ytick", "y2tick"):
            ticks = [float(v.replace(",", "")) for v in texts(f"#chart-service .{axis} text")]
            steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
            assert ticks[0] == 0 and len(steps) == 1 and is_round(steps.pop()), (axis, ticks)
        clv = texts("#chart-clv .xtick text")  # bin edges at a round step, then the tail's bar: "≥12,000"
        assert re.fullmatch(r"≥[\d,]+", clv[-1]) and all(re.fullmatch(r"[\d,]+", v) for v in clv[:-1]), clv
        edges = [float(v.replace(",", "")) for v in clv[:-1]]
        steps = {b - a for a, b in zip(edges, edges[1:])}
        assert edges[0] == 0 and len(steps) == 1 and is_round(steps.pop()), clv

        for section in ("kpis", "churn_risk"):
            assert t("churn_definitions") in page.inner_text(f"#{section}"), (lang, section)

        counts = page.evaluate("Object.fromEntries([...document.querySelectorAll('#quality [data-count]')]"
                               ".map(e => [e.dataset.count, +e.querySelector('b').textContent.replace(/,/g, '')]))")
        assert list(counts) == ["rows_read", *data.OUTCOMES]
        assert counts["rows_read"] == read and counts["rows_landed"] == landed
        assert counts["rows_read"] == sum(counts[o] for o in data.OUTCOMES) and counts["unaccounted_rows"] == 0
        rows = page.evaluate("[...document.querySelectorAll('#quality table.reconciliation tbody tr')].map(r => "
                             "[...r.querySelectorAll('td')].slice(2).map(c => +c.textContent.replace(/,/g, '')))")
        assert rows and all(row[0] == sum(row[1:]) for row in rows), rows
        assert [sum(column) for column in zip(*rows)] == [counts[c] for c in counts]
        page.close()


def is_round(value: float) -> bool:
    """1, 2, 2.5 or 5 times a power of ten."""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))


def test_an_orders_only_export_gets_a_report_that_says_what_it_lacks(orders_only, browser):
    path = report_path(orders_only.warehouse, "en")
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
    from dagster_project.publish.publication import record_build_settings

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
    # A warehouse built before superseded, deferred and unattributed rows were counted: none of them.
    assert quality.totals["rows_superseded"] == quality.totals["rows_unattributed"] == 0
    assert quality.failing.to_dict("records") == [{
        "suite": "marts_fct_orders", "expectation": "expect_column_mean_to_be_between (amount)", "severity": "warn",
        "observed_value": "512.5"}]
    page = render(collect(order_book), "zh").html
    assert "expect_column_mean_to_be_between (amount)" in page and "警告" in page


def test_data_quality_shows_every_outcome_of_a_row_and_they_add_up(order_book):
    order_book.execute("""create table marts.fct_reconciliation as select * from (values
        ('orders', 'd1/orders.csv', 100, 80, 5, 3, 7, 4, 1, 0),
        ('orders', 'd2/orders.csv', 50, 45, 1, 0, 4, 0, 0, 0),
        ('order_items', 'd1/sales.csv', 30, 20, 2, 0, 0, 0, 8, 0))
        t(entity, source_file, rows_read, rows_landed, rows_quarantined, rows_merged, rows_superseded, rows_deferred,
          rows_unattributed, unaccounted_rows)""")
    for lang in LANGUAGES:
        page = render(collect(order_book), lang).html
        counts = {k: int(v.replace(",", "")) for k, v in
                  re.findall(r'data-count="(\w+)"><span>[^<]*</span><b>([\d,]+)</b>', page)}
        assert counts == {"rows_read": 180, "rows_landed": 145, "rows_quarantined": 8, "rows_merged": 3,
                          "rows_superseded": 11, "rows_deferred": 4, "rows_unattributed": 9, "unaccounted_rows": 0}
        assert counts["rows_read"] == sum(counts[o] for o in data.OUTCOMES)
        table = re.search(r'<table class="reconciliation">(.*?)</table>', page)[1]
        rows = [[int(c.replace(",", "")) for c in re.findall(r"<td>([\d,]+)</td>", row)[1:]]
                for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])]
        assert rows == [[150, 125, 6, 3, 11, 4, 1, 0], [30, 20, 2, 0, 0, 0, 8, 0]]  # orders, order lines
        for key in ("rows_superseded", "rows_deferred", "rows_unattributed", "reconciliation_note"):
            assert Translator(lang)(key) in page, (lang, key)


def test_clv_bins_have_round_edges_and_the_tail_bar_is_labelled(order_book):
    order_book.execute("create schema analytics")
    order_book.execute("create table analytics.customer_clv as select i * 10.0 as clv_12m from range(100) t(i)")
    spread = data.clv_distribution(order_book)  # 0..990: bins of 50 up to 1,000, nobody beyond
    assert not spread.open_ended and spread.bins["customers"].sum() == 100
    assert (spread.bins["bin_end"] - spread.bins["bin_start"] == 50).all() and spread.bins["bin_end"].max() == 1000

    order_book.execute("insert into analytics.customer_clv values (5000), (20000)")
    tail = data.clv_distribution(order_book)  # the 99th percentile is ~4,960: bins of 200, then 5,000 and above
    assert tail.open_ended and tail.bins["customers"].sum() == 102
    assert tail.bins.iloc[-1][["bin_start", "customers"]].tolist() == [5000, 2]
    figure = charts.clv_distribution(tail, Translator("en"), "¥")
    assert figure.layout.xaxis.ticktext[-1] == "≥5,000" and figure.data[-1].name == "5,000 and above"
    assert figure.layout.xaxis.ticktext[:-1] == ("0", "1,000", "2,000", "3,000", "4,000")
    assert "every customer with a predicted 12-month CLV of ¥5,000 or more (2)" in render(collect(order_book)).html


def test_service_axes_have_round_ticks_on_one_grid_and_months_in_the_language():
    table = pd.DataFrame({"period": ["2025-01", "2025-02", "2025-03"], "tickets_opened": [131, 40, 12],
                          "median_first_response_hours": [3.5, 47.5, 10.0], "median_resolution_hours": [20.0, 30, 8]})
    for lang, months in (("en", ("Jan 2025", "Feb 2025", "Mar 2025")), ("zh", ("2025年1月", "2025年2月", "2025年3月"))):
        figure = charts.service(table, Translator(lang))
        hours, tickets = figure.layout.yaxis, figure.layout.yaxis2
        assert figure.data[0].x == months
        assert is_round(hours.dtick) and is_round(tickets.dtick) and tickets.dtick == int(tickets.dtick)
        assert hours.range[0] == tickets.range[0] == 0 and hours.range[1] >= 47.5 and tickets.range[1] >= 131
        intervals = hours.range[1] / hours.dtick
        assert intervals == int(intervals) == tickets.range[1] / tickets.dtick  # the grid meets both axes' ticks


def test_date_axes_write_months_as_the_language_does():
    history = pd.DataFrame({"ds": pd.date_range("2025-01-01", periods=200), "revenue": 1.0})
    chinese = charts.revenue_trend(data.RevenueTrend(history, None), Translator("zh"), "¥").layout.xaxis
    assert {s.value for s in chinese.tickformatstops} >= {"%Y年%-m月"} and chinese.hoverformat == "%Y年%-m月%-d日"
    english = charts.revenue_trend(data.RevenueTrend(history, None), Translator("en"), "$").layout.xaxis
    assert not english.tickformatstops  # plotly's own: "Mar 2025"
    assert Translator("zh").month("2025-03") == "2025年3月" and Translator("en").month("2025-03-01") == "Mar 2025"


def test_the_page_embeds_exactly_the_glyphs_it_uses(order_book):
    from fontTools.ttLib import TTFont
    from plotly.offline import get_plotlyjs

    page = render(collect(order_book), "zh").html
    woff = re.search(r'<style id="cjk-font">@font-face \{[^}]*url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)', page)[1]
    embedded = set(TTFont(io.BytesIO(base64.b64decode(woff))).getBestCmap())
    with TTFont(fonts.font_path(), fontNumber=0, lazy=True) as full:
        available = set(full.getBestCmap())
    used = {ord(c) for c in fonts.page_characters(page.replace(get_plotlyjs(), ""))}
    assert embedded == used & available
    assert {ord(c) for c in "客户分析报告年月销售额"} <= embedded and not any(c < 0x80 for c in embedded)


def test_a_process_cuts_the_font_once_per_set_of_characters_and_each_page_gets_its_own():
    from fontTools.ttLib import TTFont

    def glyphs(woff: bytes) -> set[int]:
        return set(TTFont(io.BytesIO(woff)).getBestCmap())

    first, other = fonts.subset("客户分析"), fonts.subset("销售额报告")
    assert glyphs(first) == {ord(c) for c in "客户分析"} and glyphs(other) == {ord(c) for c in "销售额报告"}
    hits = fonts._subset.cache_info().hits
    # Characters the font lacks do not make another cut; other characters do.
    assert fonts.subset("客户分析\U0001F600") == first and fonts._subset.cache_info().hits == hits + 1
    assert glyphs(fonts.subset("客户")) == {ord(c) for c in "客户"}


def test_a_missing_cjk_font_is_said_how_to_install_and_does_not_stop_the_report(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv(fonts.ENVIRONMENT, raising=False)
    monkeypatch.setattr(fonts, "FONT_DIR", tmp_path)
    with pytest.raises(fonts.FontMissing, match="make setup"):
        fonts.font_path()
    # Publishing does not wait on a font: the page is written without the embedded subset, and the log says why.
    with caplog.at_level("WARNING"):
        page = render(collect(duckdb.connect()), "zh")
    assert "data:font/woff" not in page.html and "<html" in page.html and "make setup" in caplog.text
    monkeypatch.setenv(fonts.ENVIRONMENT, str(tmp_path / "nowhere.ttf"))
    with pytest.raises(fonts.FontMissing, match="CRM_CJK_FONT names .*nowhere.ttf"):
        fonts.font_path()


def _model_quality(con, *rows) -> None:
    con.execute("create schema if not exists analytics")
    con.execute("create or replace table analytics.model_quality (model varchar, question varchar, metric varchar, "
                "higher_is_better boolean, published varchar, published_value double, baseline varchar, "
                "baseline_value double, beats_baseline boolean, n_eval bigint, evaluation varchar, note varchar)")
    con.executemany("insert into analytics.model_quality values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def test_how_far_to_trust_says_each_model_s_unseen_metric_next_to_its_baseline(order_book):
    _model_quality(
        order_book,
        ("churn", "who stops buying in the next 90 days", "ROC-AUC", True, "lightgbm", 0.8412, "days since the last "
         "purchase", 0.7951, True, 1200, "customers with a purchase by 2026-01-01, next 90 days", None),
        ("forecast", "daily revenue over the next 90 days", "MASE", False, "prophet", 1.31, "same weekday last week",
         1.22, False, 270, "3 folds of 90 days", None),
    )
    report = render(collect(order_book), "en")
    trust = report.html.split('<section id="trust"')[1].split("</section>")[0]
    assert ("who stops buying in the next 90 days: better than days since the last purchase (ROC-AUC 0.84 vs 0.80)"
            in trust)
    assert "daily revenue over the next 90 days: NOT better than same weekday last week (MASE 1.31 vs 1.22)" in trust
    assert "trust" not in report.unavailable
    # The forecast's sections carry the warning; churn's do not (it beat its baseline).
    for section in ("kpis", "revenue_trend"):
        body = report.html.split(f'<section id="{section}"')[1].split("</section>")[0]
        assert 'class="warning" data-model="forecast"' in body
    assert 'data-model="churn"' not in report.html.split('<section id="trust"')[0]
    # In Chinese the verdict reads in Chinese too.
    assert "未能优于" in render(collect(order_book), "zh").html


def test_a_model_that_was_not_evaluated_is_flagged_not_trusted(order_book):
    _model_quality(order_book, ("forecast", "daily revenue over the next 90 days", "MASE", False, "prophet", None,
                                "same weekday last week", None, False, 0, "", "history shorter than one fold"))
    page = render(collect(order_book), "en").html
    assert "daily revenue over the next 90 days: not evaluated on unseen data" in page
    assert 'class="warning" data-model="forecast"' in page.split('<section id="revenue_trend"')[1]


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


def test_metadata_charts_draw_chinese_labels_as_glyphs():
    """matplotlib warns "Glyph ... missing from font(s)" for every character it draws as a box: none may be."""
    history = pd.DataFrame({"ds": pd.date_range("2026-01-01", periods=30), "y": range(30)})
    forecast = pd.DataFrame({"ds": pd.date_range("2026-01-31", periods=10), "yhat": 30.0, "yhat_lower": 25.0,
                             "yhat_upper": 35.0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts_md = [bar_chart({"华东": 3, "华南": 1, "region:西北": 2}, "各区域客户数 (customers per region)"),
                     forecast_chart(history, forecast, "销售额预测 (revenue forecast)")]
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert all(_png(md).startswith(b"\x89PNG") for md in charts_md)


def test_every_asset_has_a_description_and_a_group(tmp_path):
    from dagster_project.defs.definitions import build_definitions
    from dagster_project.settings import Settings

    graph = build_definitions(Settings(exports_dir=tmp_path, warehouse=tmp_path / "w.duckdb", as_of=None,
                                       schedule_timezone="UTC")).resolve_asset_graph()
    nodes = [graph.get(key) for key in graph.get_all_asset_keys()]
    assert {"ingest", "staging", "marts", "analytics", "reporting"} <= {node.group_name for node in nodes}
    for node in nodes:
        assert (node.description or "").strip(), node.key.to_user_string()
