"""Small charts for Dagster asset metadata: a PNG inside Markdown (`![..](data:image/png;base64,..)`), which the
Dagster UI renders in the asset's materialisation view (its Markdown sanitiser allows data: images).

Labels may be Chinese (a region, a campaign name): matplotlib falls back to the CJK font of fonts.py for characters its
default font (DejaVu Sans) lacks, so they are drawn as glyphs, not boxes, on a machine without a CJK font."""

from __future__ import annotations

import base64
import io
import logging

import pandas as pd

BLUE, ORANGE, GREY = "#2563eb", "#f59e0b", "#94a3b8"


def _figure(width: float, height: float):
    # Imported here: matplotlib is slow to import, and the Dagster definitions should load fast. A Figure without
    # pyplot has no global state and needs no display backend.
    from matplotlib.figure import Figure

    from dagster_project.report.fonts import FontMissing, use_in_matplotlib

    try:
        use_in_matplotlib()
    except FontMissing as error:
        # A chart in the Dagster UI is no reason to stop a refresh: drawn without Chinese glyphs, and said so.
        logging.getLogger(__name__).warning("%s; Chinese labels in metadata charts show as boxes", error)
    return Figure(figsize=(width, height))


def _markdown(figure, title: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return f"![{title}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def bar_chart(sizes: dict[str, float], title: str) -> str:
    """Horizontal bars, largest on top, as Markdown."""
    ordered = sorted(sizes.items(), key=lambda item: item[1])
    figure = _figure(6, 0.28 * len(ordered) + 0.8)
    axes = figure.subplots()
    axes.barh([label for label, _ in ordered], [value for _, value in ordered], color=BLUE)
    axes.set_title(title, fontsize=10)
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return _markdown(figure, title)


def forecast_chart(history: pd.DataFrame, forecast: pd.DataFrame, title: str) -> str:
    """Actuals (ds, y) with the forecast (ds, yhat, yhat_lower, yhat_upper) and its interval, as Markdown."""
    figure = _figure(6, 2.4)
    axes = figure.subplots()
    axes.plot(history["ds"], history["y"], color=GREY, linewidth=0.8, label="actual")
    axes.fill_between(forecast["ds"], forecast["yhat_lower"], forecast["yhat_upper"], color=ORANGE, alpha=0.25,
                      linewidth=0, label="interval")
    axes.plot(forecast["ds"], forecast["yhat"], color=ORANGE, linewidth=1.2, label="forecast")
    axes.set_title(title, fontsize=10)
    axes.tick_params(labelsize=8)
    axes.legend(fontsize=7, frameon=False, loc="upper left")
    axes.spines[["top", "right"]].set_visible(False)
    figure.autofmt_xdate()
    return _markdown(figure, title)
