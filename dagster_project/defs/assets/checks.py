"""The Great Expectations suites in ``expectations/`` as Dagster asset checks, run inside every refresh.

Two steps: the raw suites right after ingestion (before dbt reads the raw tables), the mart suites right after dbt.
Each step validates all its suites in one GE context against the working database, appends the results to
``quality.quality_results`` and rewrites the HTML report beside the published warehouse.

Every check is blocking: a failed expectation whose ``on_failure`` is ``stop`` fails its check with ERROR severity,
which keeps everything downstream of that table from running (dbt for a raw table; analytics and publishing for a
mart). ``warn`` failures fail the check with WARN severity: recorded and shown, nothing blocked. Rules on columns the
export never delivered are *not applicable*: listed, but neither failures nor warnings.

A failed check says what failed, one line per expectation (``dagster_project.quality.messages``): suite, rule,
column, failing rows of rows checked and example values (personal values withheld). The lines of the ``stop``
failures are also in the metadata entry ``stop_failures``, which the refresh's error message is made of
(``dagster_project.defs.refresh.failure_reason``).
"""

from functools import cache
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetChecksDefinition,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from dagster_project import refresh_state
from dagster_project.defs.instance import WRITER_POOL
from dagster_project.quality import check_suites
from dagster_project.quality.messages import failure_line, result_text, rule_text
from dagster_project.quality.results import SuiteValidation
from dagster_project.quality.suites import Suite, load_suites
from dagster_project.defs.resources import Warehouse
from dagster_project.warehouse_files import quality_page_path

CHECK_NAME = "great_expectations"
# Failures listed in a check's metadata (all of them are in quality.quality_results and the report).
LISTED_FAILURES = 20
# Metadata entry of a failed check: the one-line messages of its failed `stop` expectations (a JSON list).
STOP_FAILURES = "stop_failures"


def report_path(warehouse: Warehouse) -> Path:
    """The data-quality page, beside the published warehouse file."""
    return quality_page_path(Path(warehouse.path))


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
        # The raw suites' row-by-row rules check the rows of new loads only (dagster_project.quality.new_loads).
        validations, scopes = check_suites(
            warehouse.connect, selected, context.run.run_id, report_path(warehouse), built_marts,
            warehouse.published_mode, code_version=None if built_marts else refresh_state.code_version(),
            every_row=refresh_state.full_refresh_asked(context.run.tags))
        for validation in validations:
            yield check_result(validation, report_path(warehouse))
        partial = sum(1 for scope in scopes.values() if scope.unchecked is not None)
        context.log.info(f"{len(validations)} suite(s), {sum(len(v.expectations) for v in validations)} "
                         f"expectations in {sum(v.seconds for v in validations):.1f} s"
                         + (f"; row-by-row rules on new loads only ({partial} of {len(validations)} tables)"
                            if partial else "") + f"; report: {report_path(warehouse)}")

    return _check


def check_result(validation: SuiteValidation, report: Path) -> AssetCheckResult:
    suite = validation.suite.name
    # Stop failures first: they are why a check blocks.
    failures = sorted(validation.failures, key=lambda e: e.severity != "stop")
    not_applicable = validation.not_applicable
    applicable = len(validation.expectations) - len(not_applicable)
    skipped = f"; {len(not_applicable)} not applicable (column not delivered)" if not_applicable else ""
    if failures:
        listed = failures[:LISTED_FAILURES]
        description = "\n".join(
            [f"{len(failures)} of {applicable} expectations failed{skipped}:"]
            + [f"[{e.severity}] {failure_line(suite, e)}" for e in listed]
            + ([f"and {len(failures) - len(listed)} more (see the report)"] if len(failures) > len(listed) else []))
    else:
        description = f"all {applicable} expectations passed{skipped}"
    return AssetCheckResult(
        asset_key=AssetKey(validation.suite.asset_path),
        check_name=CHECK_NAME,
        passed=not failures,
        severity=AssetCheckSeverity.ERROR if validation.stops else AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "suite": suite,
            "expectations": len(validation.expectations),
            "failed_stop": sum(1 for e in failures if e.severity == "stop"),
            "failed_warn": sum(1 for e in failures if e.severity == "warn"),
            "not_applicable": len(not_applicable),
            "failed": MetadataValue.json([
                {"expectation": e.label, "rule": rule_text(e), "column": e.column, "severity": e.severity,
                 "unexpected_count": e.unexpected_count, "element_count": e.element_count,
                 "unexpected_percent": e.unexpected_percent, "observed": e.observed_value,
                 "message": result_text(e)} for e in failures[:LISTED_FAILURES]]),
            STOP_FAILURES: MetadataValue.json(
                [failure_line(suite, e) for e in failures if e.severity == "stop"][:LISTED_FAILURES]),
            "not_applicable_rules": MetadataValue.json([
                {"expectation": e.label, "column": e.column, "reason": e.not_applicable} for e in not_applicable]),
            "seconds": round(validation.seconds, 3),
            "report": MetadataValue.path(str(report)),
        },
    )


@cache
def quality_checks() -> list[AssetChecksDefinition]:
    """The suites of expectations/ as two multi-checks, built once, when the definitions are (reading the suites
    is file work that no import should do)."""
    suites = load_suites()
    raw_expectations = suite_checks(
        "raw_expectations", [s for s in suites if s.schema == "raw"], built_marts=False,
        description="Great Expectations suites on the raw tables, after ingestion and before dbt reads them.")
    mart_expectations = suite_checks(
        "mart_expectations", [s for s in suites if s.schema != "raw"], built_marts=True,
        description="Great Expectations suites on the BI-facing marts, after dbt; failures block publishing.")
    return [raw_expectations, mart_expectations]
