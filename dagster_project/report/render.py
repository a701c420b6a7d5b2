"""The report as one self-contained HTML page: the sections' data and charts, plotly.js inlined once, the glyphs of
its non-ASCII characters embedded as a font subset (fonts.py: Chinese reads on a machine without a CJK font), no
fetches."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import partial

import duckdb
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from dagster_project.report import charts, data, fonts, trust
from dagster_project.report.i18n import Translator

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    # None: the export lacks what the section needs; `missing` then names what.
    body: str | None
    missing: str = ""


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, read once and rendered in each language."""

    as_of: date | None
    refreshed: datetime
    kpis: list[data.Kpi] | None
    revenue_trend: data.RevenueTrend | None
    segments: pd.DataFrame | None
    deciles: pd.DataFrame | None
    cohorts: pd.DataFrame | None
    funnel: data.Funnel | None
    campaigns: pd.DataFrame | None
    service: pd.DataFrame | None
    clv: data.Distribution | None
    churn: data.Distribution | None
    watchlist: pd.DataFrame | None
    quality: data.Quality | None
    # analytics.model_quality: each model's metric on unseen data next to its baseline.
    trust: pd.DataFrame | None = None
    # What every amount is in (named at the top of the page; money is shown with its label).
    currency: data.Currency = data.Currency()


@dataclass(frozen=True)
class Report:
    html: str
    # Ids of the sections this export cannot fill (they say so on the page).
    unavailable: list[str]


def collect(con: duckdb.DuckDBPyConnection, currency: data.Currency | None = None) -> ReportData:
    """Read every section's data from the warehouse behind `con` (marts, analytics, quality, meta). The currency is
    the one recorded in the warehouse unless given."""
    as_of = data.as_of_date(con)
    return ReportData(
        as_of=as_of, refreshed=data.refreshed_at(con), currency=currency or data.currency(con),
        kpis=data.kpis(con, as_of) if as_of else None,
        revenue_trend=data.revenue_trend(con, as_of) if as_of else None,
        segments=data.segments(con), deciles=data.deciles(con), cohorts=data.cohorts(con), funnel=data.funnel(con),
        campaigns=data.campaigns(con), service=data.service(con), clv=data.clv_distribution(con),
        churn=data.churn_distribution(con), watchlist=data.watchlist(con), quality=data.quality(con),
        trust=trust.model_quality(con),
    )


def render(report: ReportData, lang: str = "en", generated: datetime | None = None) -> Report:
    """The page in `lang` ("en" or "zh"); `generated` is its time stamp (default now)."""
    t = Translator(lang)
    money = report.currency
    sections = [
        _kpi_section(report.kpis, report.as_of, t, money),
        _chart_section("revenue_trend", "what_orders", report.revenue_trend, t,
                       partial(charts.revenue_trend, unit=money.label)),
        _chart_section("segments", "what_segments", report.segments, t, partial(charts.segments, unit=money.label)),
        _pareto_section(report.deciles, t, money),
        _chart_section("cohorts", "what_cohorts", report.cohorts, t, charts.cohorts),
        _funnel_section(report.funnel, t),
        _campaigns_section(report.campaigns, t, money),
        _chart_section("service", "what_tickets", report.service, t, charts.service),
        _clv_section(report.clv, t, money),
        _chart_section("churn_risk", "what_churn", report.churn, t, charts.churn_distribution,
                       [t("churn_definitions")]),
        _watchlist_section(report.watchlist, t, money),
        _trust_section(report.trust, t),
        _quality_section(report.quality, report.refreshed, t),
    ]
    sections = [_with_warning(s, report.trust, t) for s in sections]
    page = _page(sections, t, report.as_of, report.refreshed, generated or datetime.now(timezone.utc), money)
    return Report(page, [s.id for s in sections if s.body is None])


def build_report(con: duckdb.DuckDBPyConnection, lang: str = "en") -> Report:
    return render(collect(con), lang)


# ------------------------------------------------------------------------------------------------- sections


def _chart_section(key: str, missing: str, value, t: Translator, chart: Callable, notes: Sequence[str] = ()) -> Section:
    if value is None:
        return Section(key, t(key), None, missing)
    return Section(key, t(key), _figure(chart(value, t), key) + _notes(notes))


def _kpi_section(figures: list[data.Kpi] | None, as_of: date | None, t: Translator, money: data.Currency
                 ) -> Section:
    if figures is None:
        return Section("kpis", t("kpis"), None, "what_orders")
    cards = "".join(_kpi_card(k, t, money) for k in figures)
    notes = [t("period_note", days=data.PERIOD_DAYS, as_of=as_of.isoformat())]
    if any(k.key == "churn_rate" and k.current is not None for k in figures):
        notes.append(t("churn_definitions"))
    return Section("kpis", t("kpis"), f'<div class="kpis">{cards}</div>' + _notes(notes))


def _notes(notes: Sequence[str]) -> str:
    return "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)


def _kpi_card(kpi: data.Kpi, t: Translator, money: data.Currency) -> str:
    value = _format(kpi.current, kpi.kind, money)
    delta, tone = _delta(kpi, t) if kpi.current is not None else ("", "neutral")
    compared = t("vs_last_days", days=kpi.baseline_days) if kpi.baseline_days else t("vs_previous")
    change = (f'<div class="delta {tone}">{html.escape(delta)} <span>{html.escape(compared)}</span></div>'
              if delta else "")
    return (f'<div class="kpi" data-kpi="{kpi.key}"><div class="label">{html.escape(t(kpi.key))}</div>'
            f'<div class="value">{html.escape(value)}</div>{change}</div>')


def _delta(kpi: data.Kpi, t: Translator) -> tuple[str, str]:
    """The change as text (% for amounts and counts, points for rates and NPS) and whether it is good news."""
    if kpi.previous is None:
        return "", "neutral"
    difference = kpi.current - kpi.previous
    if kpi.kind in ("rate", "score"):
        text = (f"{difference * 100:+.1f} {t('percentage_points')}" if kpi.kind == "rate"
                else f"{difference:+.1f} {t('points')}")
    elif kpi.previous:
        text = f"{difference / abs(kpi.previous):+.1%}"
    else:
        return "", "neutral"
    arrow = "▲" if difference > 0 else "▼" if difference < 0 else "■"
    tone = "neutral" if difference == 0 else "good" if (difference > 0) == kpi.higher_is_better else "bad"
    return f"{arrow} {text}", tone


def _pareto_section(deciles: pd.DataFrame | None, t: Translator, money: data.Currency) -> Section:
    if deciles is None:
        return Section("pareto", t("pareto"), None, "what_deciles")
    top20 = deciles.loc[deciles["decile"] == 2, "cumulative_share"]
    note = t("top20_share", share=f"{top20.iloc[0]:.0%}") if len(deciles) == 10 and not top20.empty else ""
    table = _table(deciles, t, {
        "decile": ("decile", str), "customers": ("customers", _int), "orders": ("orders", _int),
        "revenue": ("revenue", _money), "revenue_share": ("revenue_share", _pct),
        "cumulative_share": ("cumulative_share", _pct), "avg_ticket": ("avg_ticket", _money),
    }, money=money)
    body = f'<div class="two">{_figure(charts.pareto(deciles, t), "pareto")}<div>{table}</div></div>'
    if note:
        body += f'<p class="note">{html.escape(note)}</p>'
    return Section("pareto", t("pareto"), body)


def _funnel_section(funnel: data.Funnel | None, t: Translator) -> Section:
    if funnel is None:
        return Section("funnel", t("funnel"), None, "what_opportunities")
    notes = []
    if funnel.win_rate is not None and funnel.median_cycle_days is not None:
        notes.append(t("win_rate", rate=f"{funnel.win_rate:.1%}", days=f"{funnel.median_cycle_days:.0f}"))
    table = _table(funnel.stages.assign(stage=[t.value("stage", s) for s in funnel.stages["stage"]]), t, {
        "stage": ("stage", str), "reached": ("reached", _int), "conversion_to_next": ("conversion_to_next", _pct),
    })
    body = f'<div class="two">{_figure(charts.funnel(funnel, t), "funnel")}<div>{table}</div></div>'
    body += "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return Section("funnel", t("funnel"), body)


def _campaigns_section(table: pd.DataFrame | None, t: Translator, money: data.Currency) -> Section:
    """ROI per campaign, and what each campaign caused: the extra revenue per participant over matched customers it
    reached, with its 95% interval; a campaign without one says why (no reach data, too few to compare)."""
    if table is None:
        return Section("campaigns", t("campaigns"), None, "what_campaigns")
    shown = table.assign(
        roi_shown=[_pct(roi) if pd.notna(roi) else t.value("roi_note", note)
                   for roi, note in zip(table["roi"], table["roi_note"])],
        lift_shown=[f"{_money_text(lift, money)} ({_money(low)} – {_money(high)})" if pd.notna(lift)
                    else t.value("lift_note", note)
                    for lift, low, high, note in zip(table["revenue_lift"], table["revenue_lift_ci_low"],
                                                     table["revenue_lift_ci_high"], table["lift_note"])])
    body = _figure(charts.campaigns(table, t, money), "campaigns") + _table(shown, t, {
        "campaign_label": ("campaign", str), "channel": ("channel", str), "cost": ("cost", _money),
        "attributed_revenue": ("attributed_revenue", _money), "roi_shown": ("roi_short", str),
        "participants": ("participants", _int), "lift_shown": ("revenue_lift", str),
        "incremental_roi": ("incremental_roi", _pct),
    }, css="campaigns", money=money)
    return Section("campaigns", t("campaigns"), body + _notes([t("campaigns_note")]))


def _clv_section(distribution: data.Distribution | None, t: Translator, money: data.Currency) -> Section:
    notes = [t("clv_total", total=_money_text(distribution.total, money),
               median=_money_text(distribution.median, money))] if distribution else []
    if distribution is not None and distribution.open_ended:
        tail = distribution.bins.iloc[-1]
        notes.append(t("clv_overflow", value=_money_text(tail["bin_start"], money),
                       customers=_int(tail["customers"])))
    return _chart_section("clv", "what_clv", distribution, t, partial(charts.clv_distribution, unit=money.label),
                          notes)


def _watchlist_section(watchlist: pd.DataFrame | None, t: Translator, money: data.Currency) -> Section:
    if watchlist is None:
        return Section("watchlist", t("watchlist"), None, "what_churn")
    note = f'<p class="note">{html.escape(t("watchlist_note"))}</p>'
    if watchlist.empty:
        return Section("watchlist", t("watchlist"), note + f'<p>{html.escape(t("watchlist_empty"))}</p>')
    shown = watchlist.assign(suggested_action=[t.value("action", a) for a in watchlist["suggested_action"]])
    return Section("watchlist", t("watchlist"), note + _table(shown, t, {
        "customer_key": ("customer_key", str), "clv_12m": ("clv_12m", _money),
        "churn_probability": ("churn_probability", _pct), "value_at_risk": ("value_at_risk", _money),
        "main_driver": ("main_driver", str), "suggested_action": ("suggested_action", str),
    }, money=money))


def _trust_section(quality: pd.DataFrame | None, t: Translator) -> Section:
    if quality is None:
        return Section("trust", t("trust"), None, "what_models")
    return Section("trust", t("trust"), trust.trust_body(quality, t))


def _with_warning(section: Section, quality: pd.DataFrame | None, t: Translator) -> Section:
    """A section drawing a model that did not beat its baseline opens with a visible warning."""
    banner = trust.warning(quality, section.id, t) if section.body is not None else ""
    return Section(section.id, section.title, banner + section.body, section.missing) if banner else section


def _quality_section(quality: data.Quality | None, refreshed: datetime, t: Translator) -> Section:
    if quality is None:
        return Section("quality", t("quality"), None, "what_reconciliation")
    totals = quality.totals
    # Rows read, then every outcome a row can have: they add up ("read = loaded + quarantined + ...").
    outcomes = "".join(
        f'<span class="op">{"=" if i == 0 else "+"}</span><div data-count="{c}"><span>{html.escape(t(c))}</span>'
        f"<b>{_int(totals[c])}</b></div>" for i, c in enumerate(data.OUTCOMES))
    body = (f'<div class="stats"><div><span>{html.escape(t("refreshed"))}</span><b>{html.escape(_when(refreshed))}'
            f'</b></div></div><div class="stats sum"><div data-count="rows_read"><span>{html.escape(t("rows_read"))}'
            f'</span><b>{_int(totals["rows_read"])}</b></div>{outcomes}</div>'
            f'<p class="note">{html.escape(t("reconciliation_note"))}</p>')
    by_entity = quality.by_entity.assign(entity=[t.value("entity", e) for e in quality.by_entity["entity"]])
    body += _table(by_entity, t, {
        "entity": ("entity", str), "files": ("files", _int), "rows_read": ("rows_read", _int),
        **{c: (c, _int) for c in data.OUTCOMES},
    }, css="reconciliation")
    if not quality.reasons.empty:
        reasons = quality.reasons.assign(entity=[t.value("entity", e) for e in quality.reasons["entity"]])
        body += f"<h3>{html.escape(t('quarantine_reasons'))}</h3>" + _table(reasons, t, {
            "entity": ("entity", str), "reason": ("reason", str), "rows": ("rows", _int)})
    body += f"<h3>{html.escape(t('failing_checks'))}</h3>"
    if quality.checks is None:
        body += f'<p class="checks none">{html.escape(t("no_checks"))}</p>'
    elif quality.failing.empty:
        body += f'<p class="checks ok">{html.escape(t("no_failing_checks", count=quality.checks))}</p>'
    else:
        failing = quality.failing.assign(severity=[t.value("severity", v) for v in quality.failing["severity"]])
        body += _table(failing, t, {"suite": ("suite", str), "expectation": ("expectation", str),
                                    "severity": ("severity", str), "observed_value": ("observed", str)},
                       css="checks failing")
    return Section("quality", t("quality"), body)


# ------------------------------------------------------------------------------------------------ rendering


def _figure(figure: go.Figure, key: str) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{key}", config=PLOTLY_CONFIG)


def _table(frame: pd.DataFrame, t: Translator, columns: dict[str, tuple[str, Callable]], css: str = "",
           money: data.Currency | None = None) -> str:
    """An HTML table of the given columns: {column: (label key, formatter)}; every cell escaped, text (formatter
    `str`) left-aligned and numbers right-aligned; money (formatter `_money`) headed with the currency label."""
    align = {c: ' class="text"' if fmt is str else "" for c, (_, fmt) in columns.items()}
    head = "".join(f"<th{align[c]}>{html.escape(_heading(t(label), fmt, money))}</th>"
                   for c, (label, fmt) in columns.items())
    cells = {c: ["" if pd.isna(v) else html.escape(fmt(v)) for v in frame[c].tolist()]
             for c, (_, fmt) in columns.items()}
    rows = "".join("<tr>" + "".join(f"<td{align[c]}>{cells[c][i]}</td>" for c in columns) + "</tr>"
                   for i in range(len(frame)))
    # Wide tables scroll inside their box instead of widening the page.
    return (f'<div class="table-wrap"><table class="{css}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _heading(text: str, formatter: Callable, money: data.Currency | None) -> str:
    return f"{text} ({money.label})" if formatter is _money and money is not None else text


def _int(value) -> str:
    return f"{int(value):,}"


def _money(value) -> str:
    """An amount without its currency (table cells, under a heading that names it)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _money_text(value, money: data.Currency) -> str:
    """An amount on its own, with the currency label: "¥1,234", "-$12.50"."""
    return money.format(_money(abs(value)), negative=value < 0)


def _pct(value) -> str:
    return f"{value:.1%}"


def _format(value, kind: str, money: data.Currency) -> str:
    if value is None:
        return "–"
    return {"count": _int, "money": partial(_money_text, money=money), "rate": _pct,
            "score": lambda v: f"{v:+.0f}"}[kind](value)


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _page(sections: list[Section], t: Translator, as_of: date | None, refreshed: datetime,
          generated: datetime, money: data.Currency) -> str:
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.id}" class="{"" if s.body is not None else "not-available"}">'
        f"<h2>{html.escape(s.title)}</h2>"
        + (s.body if s.body is not None else f'<p class="na">{html.escape(t("not_available", what=t(s.missing)))}</p>')
        + "</section>"
        for s in sections)
    facts = [(t("as_of"), as_of.isoformat() if as_of else "–"), (t("refreshed"), _when(refreshed)),
             (t("generated"), _when(generated))]
    header = " · ".join(f"{html.escape(k)}: <b>{html.escape(v)}</b>" for k, v in facts)
    # The one place the page names the currency; every amount below is in it.
    label = f" ({html.escape(money.label)})" if money.label != money.code else ""
    header += (f' · <span class="currency" data-currency="{html.escape(money.code)}">'
               f"{html.escape(t('amounts_in'))} <b>{html.escape(money.code)}</b>{label}</span>")
    lang = "zh-CN" if t.lang == "zh" else "en"
    page = f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(t("title"))}</title>
<style>{CSS}</style>
<style id="cjk-font">{FONT_FACE}</style>
<script>{FONT_LOADER}</script>
<script type="text/javascript">{PLOTLY_JS}</script>
</head>
<body>
<header><h1>{html.escape(t("title"))}</h1><p>{header}</p>
<nav aria-label="{html.escape(t("contents"))}">{nav}</nav></header>
<main>{body}</main>
<footer><p>{html.escape(t("money_note"))}</p></footer>
</body>
</html>
"""
    # The font subset holds exactly the characters of the page as written so far (plotly.js, added last, draws
    # none of its own but the minus sign, fonts.PLOTLY_TEXT).
    try:
        font_face = fonts.font_face_css(page)
    except fonts.FontMissing as error:
        # Publishing does not wait on a font: the page is written, its Chinese drawn by whatever the reader's
        # machine has, and the refresh's log says why.
        logging.getLogger(__name__).warning("%s; the report is written without it", error)
        font_face = ""
    return page.replace(FONT_FACE, font_face, 1).replace(PLOTLY_JS, get_plotlyjs(), 1)


# The embedded font, registered again from script before anything is laid out: Chromium lays out text (and plotly
# measures its labels) while a data: URL @font-face is still loading, and some of that text then stays drawn as boxes;
# a FontFace made from bytes is ready at once. The @font-face rule stays the declarative source (and the bytes').
FONT_LOADER = """(function () {
  var family = "@FAMILY@", rule = document.getElementById("cjk-font").textContent;
  var found = /base64,([A-Za-z0-9+\\/=]+)/.exec(rule);
  if (!found || !window.FontFace || !document.fonts) return;
  var raw = atob(found[1]), bytes = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  document.fonts.add(new FontFace(family, bytes.buffer));
  document.fonts.load('1em "' + family + '"');  // the @font-face rule's face too, so that every face is loaded
})();""".replace("@FAMILY@", fonts.FAMILY)

# Placeholders in the page template, replaced when the page is otherwise complete.
FONT_FACE = "/*cjk-font-face*/"
PLOTLY_JS = "/*plotly.js*/"


CSS = """
body { margin: 0; background: #f8fafc; color: #0f172a; font: 14px/1.5 """ + charts.FONT + """; }
header { background: #0f172a; color: #f8fafc; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0 0 8px; color: #cbd5e1; }
nav { display: flex; flex-wrap: wrap; gap: 2px 14px; }
nav a { color: #93c5fd; text-decoration: none; white-space: nowrap; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 24px 24px; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; margin: 16px 0; padding: 12px 16px; }
section h2 { margin: 0 0 8px; font-size: 17px; }
section h3 { margin: 12px 0 6px; font-size: 14px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
.kpi { border: 1px solid #e2e8f0; border-radius: 6px; padding: 10px 12px; }
.kpi .label { color: #475569; font-size: 12px; }
.kpi .value { font-size: 24px; font-weight: 600; }
.delta { font-size: 12px; }
.delta span { color: #64748b; }
.good { color: #15803d; } .bad { color: #b91c1c; } .neutral { color: #475569; }
.two { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; align-items: start; }
@media (max-width: 900px) { .two { grid-template-columns: 1fr; } }
.stats { display: flex; flex-wrap: wrap; gap: 10px 24px; margin-bottom: 8px; }
.stats span { display: block; color: #475569; font-size: 12px; }
.stats.sum { align-items: flex-end; gap: 10px 12px; }
.stats .op { display: inline; font-size: 18px; color: #94a3b8; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e2e8f0; text-align: right; }
th.text, td.text { text-align: left; }
th { color: #475569; font-weight: 600; }
.note, .na { color: #475569; }
.na { font-style: italic; }
.warning { background: #fef3c7; border-left: 4px solid #d97706; color: #78350f; padding: 6px 10px;
  margin: 0 0 8px; }
ul.trust { margin: 4px 0; padding-left: 18px; } ul.trust li { margin: 6px 0; }
ul.trust li.good b { color: #15803d; } ul.trust li.bad b { color: #b91c1c; }
.checks.ok { color: #15803d; } .checks.failing td { color: #b91c1c; }
footer { color: #64748b; text-align: center; padding: 8px; }
"""
