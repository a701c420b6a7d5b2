"""The Great Expectations suites in ``expectations/`` as Dagster asset checks, run inside every refresh.

Two steps: the raw suites right after ingestion (before dbt reads the raw tables), the mart suites right after dbt.
Each step validates all its suites in one GE context against the working database, appends the results to
``quality.quality_results`` and rewrites the HTML report beside the published warehouse.

Every check is blocking: a failed expectation whose ``on_failure`` is ``stop`` fails its check with ERROR severity,
which keeps everything downstream of that table from running (dbt for a raw table; analytics and publishing for a
mart). ``warn`` failures fail the check with WARN severity: recorded and shown, nothing blocked.
"""

from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from dagster_project.assets.ingest import WRITER_POOL
from dagster_project.quality import check_suites
from dagster_project.quality.results import SuiteValidation
from dagster_project.quality.suites import Suite, load_suites
from dagster_project.resources import Warehouse

CHECK_NAME = "great_expectations"
# Failures listed in a check's metadata (all of them are in quality.quality_results and the report).
LISTED_FAILURES = 20


def report_path(warehouse: Warehouse) -> Path:
    """The HTML report, beside the published warehouse file."""
    return Path(warehouse.path).parent / "quality" / "index.html"


def suite_checks(name: str, suites: list[Suite], built_marts: bool, description: str):
    spec_suites = {
        AssetCheckKey(AssetKey(suite.asset_path), CHECK_NAME): (
            AssetCheckSpec(CHECK_NAME, asset=AssetKey(suite.asset_path), blocking=True,
                           description=f"Great Expectations suite expectations/{suite.name}.json "
                                       f"(on failure: {suite.on_failure} unless an expectation says otherwise)."),
            suite)
        for suite in suites
    }

    @multi_asset_check(name=name, specs=[spec for spec, _ in spec_suites.values()], can_subset=True,
                       pool=WRITER_POOL, description=description)
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse):
        selected = [suite for key, (_, suite) in spec_suites.items() if key in context.selected_asset_check_keys]
        validations = check_suites(warehouse.connect, selected, context.run.run_id, report_path(warehouse), built_marts)
        for validation in validations:
            yield check_result(validation, report_path(warehouse))
        context.log.info(f"{len(validations)} suite(s), {sum(len(v.expectations) for v in validations)} "
                         f"expectations in {sum(v.seconds for v in validations):.1f} s; "
                         f"report: {report_path(warehouse)}")

    return _check


def check_result(validation: SuiteValidation, report: Path) -> AssetCheckResult:
    failures = validation.failures
    return AssetCheckResult(
        asset_key=AssetKey(validation.suite.asset_path),
        check_name=CHECK_NAME,
        passed=not failures,
        severity=AssetCheckSeverity.ERROR if validation.stops else AssetCheckSeverity.WARN,
        description=(f"{len(failures)} of {len(validation.expectations)} expectations failed: "
                     + ", ".join(f"{e.label} [{e.severity}]" for e in failures[:LISTED_FAILURES])
                     if failures else f"all {len(validation.expectations)} expectations passed"),
        metadata={
            "suite": validation.suite.name,
            "expectations": len(validation.expectations),
            "failed_stop": sum(1 for e in failures if e.severity == "stop"),
            "failed_warn": sum(1 for e in failures if e.severity == "warn"),
            "failed": MetadataValue.json([
                {"expectation": e.label, "severity": e.severity, "observed": e.observed_value,
                 "unexpected_percent": e.unexpected_percent} for e in failures[:LISTED_FAILURES]]),
            "seconds": round(validation.seconds, 3),
            "report": MetadataValue.path(str(report)),
        },
    )


SUITES = load_suites()
raw_expectations = suite_checks(
    "raw_expectations", [s for s in SUITES if s.schema == "raw"], built_marts=False,
    description="Great Expectations suites on the raw tables, after ingestion and before dbt reads them.")
mart_expectations = suite_checks(
    "mart_expectations", [s for s in SUITES if s.schema != "raw"], built_marts=True,
    description="Great Expectations suites on the BI-facing marts, after dbt; failures block publishing.")
QUALITY_CHECKS = [raw_expectations, mart_expectations]
