"""The publication gate as a blocking Dagster asset check on the orders mart: while it fails, no analytics, report
or publication runs, and yesterday's published warehouse stays (dagster_project.publish.gate says why)."""

from pathlib import Path

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue, asset_check

from dagster_project.defs.assets.checks import STOP_FAILURES
from dagster_project.defs.assets.ingest import export_mapping
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.ingest import unread_files
from dagster_project.publish.gate import publication_problems
from dagster_project.defs.resources import Warehouse

CHECK_NAME = "publishable"


@asset_check(
    asset=AssetKey(["marts", "fct_orders"]),
    name=CHECK_NAME,
    blocking=True,
    additional_deps=[AssetKey(["marts", "fct_reconciliation"]), AssetKey(["marts", "fct_quarantined_rows"])],
    pool=WRITER_POOL,
    description="Some paid order lands, and no export file loses more than the allowed share of its rows "
                "(CRM_MAX_QUARANTINE_SHARE, default 5%) to the quarantine.",
)
def publishable(warehouse: Warehouse) -> AssetCheckResult:
    exports_dir = Path(warehouse.exports_dir)
    skipped = unread_files(exports_dir, export_mapping(warehouse, exports_dir))
    with warehouse.connect(read_only=True) as con:
        problems = publication_problems(con, warehouse.max_quarantine_share, skipped)
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="\n".join(problems) or "fit to publish",
        metadata={"failed_stop": len(problems), STOP_FAILURES: MetadataValue.json(problems),
                  "max_quarantine_share": warehouse.max_quarantine_share},
    )
