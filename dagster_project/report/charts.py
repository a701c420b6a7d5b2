"""The report's charts as plotly figures: pure functions from the section data to a figure, labelled in one language.

Every figure gets the same look (`_style`); plotly.js itself is inlined once per page by the renderer. Charts of money
take the currency label (`unit`, "¥", "$", or an ISO code) and name it in the axis title.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dagster_project.report import data
from dagster_project.report.i18n import Translator

BLUE, ORANGE, GREEN, RED, GREY = "#2563eb", "#f59e0b", "#16a34a", "#dc2626", "#94a3b8"
RISK_COLOURS = {"low": GREEN, "medium": ORANGE, "high": RED}
FONT = 'system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif'


def _style(figure: go.Figure, height: int = 360) -> go.Figure:
    figure.update_layout(
        template="plotly_white", height=height, margin=dict(l=60, r=20, t=30, b=50), font=dict(family=FONT, size=12),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0), hovermode="closest",
    )
    return figure


def _in(title: str, unit: str) -> str:
    return f"{title} ({unit})"


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
        z=matrix.to_numpy(), x=[str(c) for c in matrix.columns], y=list(matrix.index), colorscale="Blues",
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
    colours = [GREEN if roi >= 0 else RED for roi in table["roi"]]
    cost, revenue = (money.format(f"%{{customdata[{i}]:,.0f}}") for i in (0, 1))
    figure = go.Figure(go.Bar(
        x=table["roi"], y=table["campaign_name"], orientation="h", marker_color=colours,
        customdata=table[["cost", "attributed_revenue", "channel"]].to_numpy(),
        hovertemplate=(f"%{{y}} (%{{customdata[2]}})<br>ROI %{{x:.0%}}<br>{t('cost')} {cost}"
                       f"<br>{t('attributed_revenue')} {revenue}<extra></extra>"),
    ))
    figure.update_xaxes(title_text=t("roi"), tickformat=".0%")
    figure.update_yaxes(autorange="reversed")
    return _style(figure, height=max(320, 26 * len(table) + 90))


def service(table: pd.DataFrame, t: Translator) -> go.Figure:
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Bar(x=table["period"], y=table["tickets_opened"], name=t("tickets"),
                            marker_color="rgba(148,163,184,0.45)"), secondary_y=True)
    figure.add_trace(go.Scatter(x=table["period"], y=table["median_first_response_hours"], name=t("first_response"),
                                mode="lines+markers", line=dict(color=BLUE)), secondary_y=False)
    figure.add_trace(go.Scatter(x=table["period"], y=table["median_resolution_hours"], name=t("resolution"),
                                mode="lines+markers", line=dict(color=ORANGE)), secondary_y=False)
    figure.update_xaxes(title_text=t("month"), type="category")
    figure.update_yaxes(title_text=t("hours"), rangemode="tozero", secondary_y=False)
    figure.update_yaxes(title_text=t("tickets"), rangemode="tozero", showgrid=False, tickformat=",d", secondary_y=True)
    return _style(figure)


def clv_distribution(result: data.Distribution, t: Translator, unit: str) -> go.Figure:
    bins = result.bins
    labels = [f"{start:,.0f}–{end:,.0f}" for start, end in zip(bins["bin_start"], bins["bin_end"])]
    if result.open_ended:
        labels[-1] = t("and_above", value=f"{bins['bin_start'].iloc[-1]:,.0f}")
    figure = go.Figure(go.Bar(
        x=(bins["bin_start"] + bins["bin_end"]) / 2, y=bins["customers"], width=bins["bin_end"] - bins["bin_start"],
        marker=dict(color=BLUE, line=dict(color="white", width=1)), customdata=labels, name=t("customers"),
        hovertemplate=f"%{{customdata}}<br>{t('customers')} %{{y:,}}<extra></extra>",
    ))
    figure.update_xaxes(title_text=_in(t("clv_12m"), unit))
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
