"""The report's charts as plotly figures: pure functions from the section data to a figure, labelled in one language.

Every figure gets the same look (`_style`): the page's fonts, ending in the CJK font the page embeds (fonts.py), so
Chinese labels draw on a machine without a CJK font. plotly.js itself is inlined once per page by the renderer. Charts
of money take the currency label (`unit`, "¥", "$", or an ISO code) and name it in the axis title. Axes of counts and
hours get round ticks (`_nice_step`); dates and months are written as the language writes them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dagster_project.report import data, fonts
from dagster_project.report.i18n import DATE_HOVER_ZH, DATE_TICKS_ZH, Translator

BLUE, ORANGE, GREEN, RED, GREY = "#2563eb", "#f59e0b", "#16a34a", "#dc2626", "#94a3b8"
RISK_COLOURS = {"low": GREEN, "medium": ORANGE, "high": RED}
# The system's CJK fonts where there are any, else the embedded one.
FONT = ('system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", '
        f'"{fonts.FAMILY}", sans-serif')


def _style(figure: go.Figure, height: int = 360) -> go.Figure:
    figure.update_layout(
        template="plotly_white", height=height, margin=dict(l=60, r=20, t=30, b=50), font=dict(family=FONT, size=12),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0), hovermode="closest",
    )
    return figure


def _in(title: str, unit: str) -> str:
    return f"{title} ({unit})"


def _nice_step(raw: float, integer: bool = False) -> float:
    """The smallest round step (1, 2, 2.5 or 5 times a power of ten) at least `raw`; at least 1 for counts."""
    if not raw > 0:
        return 1.0
    step = max(data.round_step(raw), 1.0) if integer else data.round_step(raw)
    while integer and step % 1:  # 2.5 tickets: 5
        step = data.round_step(step * 1.001)
    return step


def _aligned_scales(maxima: list[float], integer: list[bool]) -> list[tuple[float, float]]:
    """(step, top) for axes that share one grid: the same number of intervals (4 to 6, the one wasting least
    space), each axis with a round step, so every tick is a round number and the grid lines meet both axes' ticks."""
    best = None
    for intervals in (4, 5, 6):
        steps = [_nice_step(m / intervals, i) for m, i in zip(maxima, integer)]
        waste = sum(1 - m / (s * intervals) for m, s in zip(maxima, steps) if m > 0)
        if best is None or waste < best[0] - 1e-9:
            best = (waste, [(s, s * intervals) for s in steps])
    return best[1]


def _dates(figure: go.Figure, t: Translator) -> None:
    """Date axes in the language: "2025年3月" in Chinese (plotly's own "Mar 2025" in English)."""
    if t.lang == "zh":
        figure.update_xaxes(tickformatstops=DATE_TICKS_ZH, hoverformat=DATE_HOVER_ZH)


def revenue_trend(trend: data.RevenueTrend, t: Translator, unit: str) -> go.Figure:
    history = trend.history
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=history["ds"], y=history["revenue"], name=t("actual"), mode="lines",
                                line=dict(color=GREY, width=1)))
    figure.add_trace(go.Scatter(x=history["ds"], y=history["revenue"].rolling(7, min_periods=1).mean(),
                                name=t("actual_7d"), mode="lines", line=dict(color=BLUE, width=2)))
    if trend.forecast is not None:
        forecast = trend.forecast
        figure.add_trace(go.Scatter(
            x=pd.concat([forecast["ds"], forecast["ds"][::-1]]),
            y=pd.concat([forecast["yhat_upper"], forecast["yhat_lower"][::-1]]),
            fill="toself", fillcolor="rgba(245,158,11,0.2)", line=dict(width=0), name=t("interval"),
            hoverinfo="skip"))
        figure.add_trace(go.Scatter(x=forecast["ds"], y=forecast["yhat"], name=t("forecast"), mode="lines",
                                    line=dict(color=ORANGE, width=2, dash="dash")))
    figure.update_xaxes(title_text=t("date"))
    _dates(figure, t)
    figure.update_yaxes(title_text=_in(t("revenue"), unit), rangemode="tozero")
    return _style(figure)


def segments(table: pd.DataFrame, t: Translator, unit: str) -> go.Figure:
    """Customers and revenue per segment side by side, in the same order (largest revenue on top)."""
    labels = [t.value("segment", s) for s in table["segment"]][::-1]
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                           subplot_titles=(t("customers"), _in(t("revenue"), unit)))
    figure.add_trace(go.Bar(y=labels, x=table["customers"][::-1], orientation="h", marker_color=BLUE,
                            name=t("customers"), text=table["customers"][::-1], textposition="auto"), 1, 1)
    figure.add_trace(go.Bar(y=labels, x=table["revenue"][::-1], orientation="h", marker_color=GREEN,
                            name=t("revenue"), texttemplate="%{x:,.0f}", textposition="auto"), 1, 2)
    figure.update_layout(showlegend=False)
    return _style(figure, height=max(320, 34 * len(table) + 80))


def pareto(deciles: pd.DataFrame, t: Translator) -> go.Figure:
    x = [0.0] + list(deciles["decile"] / len(deciles))
    y = [0.0] + list(deciles["cumulative_share"])
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=t("equal_share"),
                                line=dict(color=GREY, dash="dot")))
    figure.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=t("cumulative_share"),
                                line=dict(color=BLUE, width=2), hovertemplate="%{x:.0%} → %{y:.1%}<extra></extra>"))
    figure.update_xaxes(title_text=t("share_customers"), tickformat=".0%", range=[0, 1])
    figure.update_yaxes(title_text=t("cumulative_share"), tickformat=".0%", range=[0, 1.02])
    return _style(figure)


def cohorts(matrix: pd.DataFrame, t: Translator) -> go.Figure:
    figure = go.Figure(go.Heatmap(
        z=matrix.to_numpy(), x=[str(c) for c in matrix.columns], y=[t.month(m) for m in matrix.index],
        colorscale="Blues",
        zmin=0, zmax=100, colorbar=dict(title=dict(text="%")),
        hovertemplate=f"{t('cohort_month')} %{{y}}<br>{t('months_since')} %{{x}}<br>%{{z:.1f}}%<extra></extra>",
    ))
    figure.update_xaxes(title_text=t("months_since"), type="category")
    figure.update_yaxes(title_text=t("cohort_month"), type="category", autorange="reversed")
    return _style(figure, height=max(360, 18 * len(matrix) + 120))


def funnel(result: data.Funnel, t: Translator) -> go.Figure:
    stages = result.stages
    figure = go.Figure(go.Funnel(
        y=[t.value("stage", s) for s in stages["stage"]], x=stages["reached"], textinfo="value+percent previous",
        marker=dict(color=BLUE), name=t("reached"),
    ))
    return _style(figure)


def campaigns(table: pd.DataFrame, t: Translator, money: data.Currency) -> go.Figure:
    """ROI per campaign (one bar per campaign id, under its label); a campaign without attributed revenue has no ROI
    and says so at zero instead of drawing -100%."""
    known = table["roi"].notna()
    colours = [GREY if not ok else GREEN if roi >= 0 else RED for ok, roi in zip(known, table["roi"])]
    cost, revenue = (money.format(f"%{{customdata[{i}]:,.0f}}") for i in (0, 1))
    figure = go.Figure(go.Bar(
        x=table["roi"].where(known, 0.0), y=table["campaign_label"], orientation="h", marker_color=colours,
        text=["" if ok else t("no_attributed_revenue") for ok in known], textposition="outside",
        customdata=np.column_stack([table[["cost", "attributed_revenue", "channel"]].to_numpy(dtype=object),
                                    [f"ROI {roi:.0%}" if ok else t.value("roi_note", note)
                                     for ok, roi, note in zip(known, table["roi"], table["roi_note"])]]),
        hovertemplate=(f"%{{y}} (%{{customdata[2]}})<br>%{{customdata[3]}}<br>{t('cost')} {cost}"
                       f"<br>{t('attributed_revenue')} {revenue}<extra></extra>"),
    ))
    figure.update_xaxes(title_text=t("roi"), tickformat=".0%")
    figure.update_yaxes(autorange="reversed")
    return _style(figure, height=max(320, 26 * len(table) + 90))


def service(table: pd.DataFrame, t: Translator) -> go.Figure:
    """Median hours (left axis) and tickets opened (right axis) per month; both axes on one grid of round ticks."""
    months = [t.month(p) for p in table["period"]]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Bar(x=months, y=table["tickets_opened"], name=t("tickets"),
                            marker_color="rgba(148,163,184,0.45)"), secondary_y=True)
    figure.add_trace(go.Scatter(x=months, y=table["median_first_response_hours"], name=t("first_response"),
                                mode="lines+markers", line=dict(color=BLUE)), secondary_y=False)
    figure.add_trace(go.Scatter(x=months, y=table["median_resolution_hours"], name=t("resolution"),
                                mode="lines+markers", line=dict(color=ORANGE)), secondary_y=False)
    hours = table[["median_first_response_hours", "median_resolution_hours"]].max().max()
    tickets = table["tickets_opened"].max()
    (hour_step, hour_top), (ticket_step, ticket_top) = _aligned_scales(
        [0.0 if pd.isna(hours) else float(hours), 0.0 if pd.isna(tickets) else float(tickets)], [False, True])
    figure.update_xaxes(title_text=t("month"), type="category")
    figure.update_yaxes(title_text=t("hours"), range=[0, hour_top], tick0=0, dtick=hour_step, tickmode="linear",
                        secondary_y=False)
    figure.update_yaxes(title_text=t("tickets"), range=[0, ticket_top], tick0=0, dtick=ticket_step,
                        tickmode="linear", showgrid=False, tickformat=",d", secondary_y=True)
    return _style(figure)


def clv_distribution(result: data.Distribution, t: Translator, unit: str) -> go.Figure:
    """Customers per CLV bin on round bin edges; an open-ended last bin (the long tail) is drawn in its own colour
    and labelled on the axis ("≥5,000") and in the legend ("5,000 and above")."""
    bins = result.bins
    labels = [f"{start:,.0f}–{end:,.0f}" for start, end in zip(bins["bin_start"], bins["bin_end"])]
    regular = len(bins) - 1 if result.open_ended else len(bins)
    if result.open_ended:
        labels[-1] = t("and_above", value=f"{bins['bin_start'].iloc[-1]:,.0f}")
    middles = (bins["bin_start"] + bins["bin_end"]) / 2
    widths = bins["bin_end"] - bins["bin_start"]
    hover = f"%{{customdata}}<br>{t('customers')} %{{y:,}}<extra></extra>"
    figure = go.Figure(go.Bar(
        x=middles[:regular], y=bins["customers"][:regular], width=widths[:regular],
        marker=dict(color=BLUE, line=dict(color="white", width=1)), customdata=labels[:regular],
        name=t("customers"), hovertemplate=hover,
    ))
    edges = list(bins["bin_start"][:regular]) + [float(bins["bin_end"].iloc[regular - 1])] if regular else []
    # At most nine labelled edges, every k-th, k bins being a round amount (the bins are round: 2,000 of 500 each).
    width = float(widths.iloc[0]) if len(widths) else 1.0
    every = next((k for k in range(1, len(edges) + 1)
                  if len(edges) / k <= 9 and math.isclose(_nice_step(k * width * 0.999), k * width)),
                 max(1, len(edges)))
    tickvals = edges[::every]
    ticktext = [f"{v:,.0f}" for v in tickvals]
    if result.open_ended:
        figure.add_trace(go.Bar(
            x=middles[regular:], y=bins["customers"][regular:], width=widths[regular:],
            marker=dict(color=ORANGE, line=dict(color="white", width=1)), customdata=labels[regular:],
            name=labels[-1], hovertemplate=hover,
        ))
        # The tail's bar is labelled at its middle; an edge label under it would claim a bound the bar does not have.
        start = float(bins["bin_start"].iloc[-1])
        keep = [i for i, v in enumerate(tickvals) if v < start - 1e-9]
        tickvals = [tickvals[i] for i in keep] + [float(middles.iloc[-1])]
        ticktext = [ticktext[i] for i in keep] + [f"≥{start:,.0f}"]
    figure.update_layout(showlegend=result.open_ended, barmode="overlay")
    figure.update_xaxes(title_text=_in(t("clv_12m"), unit), tickmode="array", tickvals=tickvals, ticktext=ticktext)
    figure.update_yaxes(title_text=t("customers"))
    return _style(figure)


def churn_distribution(result: data.Distribution, t: Translator) -> go.Figure:
    figure = go.Figure()
    for band in ("low", "medium", "high"):
        rows = result.bins[result.bins["group"] == band]
        if rows.empty:
            continue
        figure.add_trace(go.Bar(
            x=(rows["bin_start"] + rows["bin_end"]) / 2, y=rows["customers"], width=rows["bin_end"] - rows["bin_start"],
            name=f"{t('risk_band')}: {t.value('risk_band', band)}", marker=dict(color=RISK_COLOURS[band]),
            hovertemplate=f"%{{x:.0%}}<br>{t('customers')} %{{y:,}}<extra></extra>",
        ))
    figure.update_layout(barmode="stack", bargap=0.05, legend=dict(traceorder="normal"))
    figure.update_xaxes(title_text=t("churn_probability"), tickformat=".0%", range=[0, 1])
    figure.update_yaxes(title_text=t("customers"))
    return _style(figure)
