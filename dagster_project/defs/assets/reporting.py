"""The manager's HTML report as a Dagster asset: rebuilt by every refresh, in every language, beside the published
warehouse (`<warehouse dir>/reports/`). The pure functions are in ``dagster_project.report``."""

import time
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.defs.assets.analytics import (
    SEGMENTATION_KEYS, campaign_effectiveness, churn_predictions, customer_clv, mart, sales_forecast, sales_funnel,
    service_metrics,
)
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.report.files import write_report
from dagster_project.warehouse_files import report_path
from dagster_project.report.i18n import LANGUAGES
from dagster_project.defs.resources import Warehouse

# What the report reads: these analytics tables and marts.
REPORT_ANALYTICS = (*(SEGMENTATION_KEYS[name] for name in ("rfm_segments", "spend_deciles", "cohort_retention")),
                    *(asset.key for asset in (customer_clv, churn_predictions, sales_forecast, sales_funnel,
                                              campaign_effectiveness, service_metrics)))
REPORT_MARTS = ("fct_orders", "fct_surveys", "customer_360", "fct_reconciliation", "fct_quarantined_rows")


@asset(key=["reporting", "report"], group_name="reporting", pool=WRITER_POOL, kinds={"python", "html"},
       deps=[*REPORT_ANALYTICS, *(mart(m) for m in REPORT_MARTS)])
def report(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """The HTML report a manager opens each morning (one self-contained file per language, English and Simplified
    Chinese): headline KPIs against the previous period, revenue trend and forecast, segments, Pareto, cohorts,
    funnel, campaign ROI, service, CLV and churn risk, the churn watchlist and data quality."""
    # Imported here, not with the definitions: plotly takes a while to import, and the refresh loads it while dbt
    # builds (dagster_project.defs.background_imports).
    from dagster_project.report.render import collect, render

    started = time.perf_counter()
    with warehouse.connect(read_only=True) as con:
        data = collect(con)
    written = {}
    for lang in LANGUAGES:
        page = render(data, lang)
        path = report_path(Path(warehouse.path), lang)
        written[lang] = (path, write_report(page.html, path, warehouse.published_mode))
    seconds = time.perf_counter() - started
    context.log.info(f"report written in {seconds:.1f} s: " + ", ".join(str(p) for p, _ in written.values()))
    metadata = {f"path/{lang}": MetadataValue.path(str(path)) for lang, (path, _) in written.items()}
    metadata.update({
        "size_bytes": written["en"][1],
        "build_seconds": round(seconds, 2),
        "as_of": str(data.as_of),
        "not_available": MetadataValue.json(page.unavailable),
    })
    return MaterializeResult(metadata=metadata)
