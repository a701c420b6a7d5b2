"""`crm-warehouse`: generate a sample export, refresh the warehouse (by materialising the Dagster assets), write
the HTML report, take a request to erase a customer."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dagster_project.report.i18n import LANGUAGES
from dagster_project.process_environment import prepare_process
from dagster_project.refresh_state import nothing_changed
from dagster_project.settings import (
    DEFAULT_EXPORTS_DIR, ENGINES, Settings, SettingsError,
)
from dagster_project.warehouse_files import work_database_path

PROG = "crm-warehouse"


class CliError(Exception):
    """A failure to report to the user as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    prepare_process()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (CliError, SettingsError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="CRM analytics warehouse.")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a realistic, messy sample CRM export")
    generate.add_argument("--out", required=True, type=Path, help="exports folder to write the drops into")
    generate.add_argument("--customers", type=int, default=10_000, help="number of customers (default 10000)")
    generate.add_argument("--days", type=int, default=1095, help="days of history (default 1095)")
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument("--truth", type=Path, default=None,
                          help="folder for the ground truth (default: <out>_truth beside the exports)")
    generate.set_defaults(handler=_generate)

    refresh = commands.add_parser("refresh", help="ingest new export drops and update every table (only what changed)")
    refresh.add_argument("--exports", type=Path, default=None,
                         help=f"exports folder (default $CRM_EXPORTS_DIR, else {DEFAULT_EXPORTS_DIR})")
    refresh.add_argument("--warehouse", type=Path, default=None,
                         help="DuckDB file (default $CRM_WAREHOUSE, else warehouse/crm.duckdb)")
    refresh.add_argument("--as-of", default=None,
                         help="treat this date (YYYY-MM-DD) as today (default $CRM_AS_OF, else the latest order date)")
    refresh.add_argument("--currency", metavar="CODE", default=None,
                         help="ISO code of the currency every amount is reported in, one of dbt/seeds/"
                              "currency_rates.csv (default $CRM_REPORTING_CURRENCY, else CNY)")
    refresh.add_argument("--default-currency", metavar="CODE", default=None,
                         help="currency of amounts with neither a currency column nor a symbol "
                              "(default $CRM_DEFAULT_CURRENCY, else the reporting currency)")
    refresh.add_argument("--holiday-country", metavar="CC", default=None,
                         help="ISO country code of the public holidays the forecast models, or 'none' (default "
                              "$CRM_HOLIDAY_COUNTRY, else the reporting currency's country: CNY CN, USD US, ...)")
    refresh.add_argument("--currency-label", metavar="TEXT", default=None,
                         help="how the report labels money (default $CRM_CURRENCY_LABEL, else the currency's "
                              "symbol: ¥ $ € £, or its code)")
    refresh.add_argument("--max-quarantine-share", metavar="FRACTION", default=None,
                         help="largest share (0-1) of the rows that may be quarantined "
                              "(default $CRM_MAX_QUARANTINE_SHARE, else 0.05)")
    refresh.add_argument("--mapping", metavar="FILE", type=Path, default=None,
                         help="column-mapping file (default $CRM_MAPPING, else mapping.yml in the exports folder "
                              "when there is one)")
    refresh.add_argument("--storage-version", metavar="VERSION", default=None,
                         help="oldest DuckDB release that must open the published warehouse (BI tools bundle their "
                              "own DuckDB), e.g. v1.2.0, or 'latest' (default $CRM_STORAGE_VERSION, else v1.0.0)")
    refresh.add_argument("--engine", choices=ENGINES, default=None,
                         help="what builds the marts: duckdb on this machine, or spark (local session, or the cluster "
                              "docs/scale_out.md configures; needs pip install -e '.[spark]') (default $CRM_ENGINE, "
                              "else duckdb)")
    refresh.add_argument("--full-refresh", action="store_true",
                         help="rebuild every model and table from the raw data and publish every table, even when "
                              "nothing changed (default: only what new or changed drops touch)")
    refresh.add_argument("--retrain", action="store_true", default=None,
                         help="refit the saved models (churn, health weights, forecasts) now instead of when their "
                              "cadence is due (default $CRM_RETRAIN, else no)")
    refresh.add_argument("--published-mode", metavar="MODE", default=None,
                         help="octal file mode of the published warehouse, its exports, the report and the quality "
                              "page, e.g. 0640 for a group of BI readers (default $CRM_PUBLISHED_MODE, else 0644); "
                              "everything else is owner-only")
    refresh.add_argument("--raw-retention-days", metavar="DAYS", default=None,
                         help="days after loading that replaced customer versions, quarantined rows and their raw "
                              "lines keep their personal values (default $CRM_RAW_RETENTION_DAYS, else 90)")
    refresh.add_argument("--keep-previous-exports", metavar="N", default=None,
                         help="previous Parquet/CSV export versions kept for readers in the middle of a scan "
                              "(default $CRM_KEEP_PREVIOUS_EXPORTS, else 1)")
    refresh.add_argument("--memory-limit", metavar="AMOUNT", default=None,
                         help="most memory DuckDB may take before it spills to disk, e.g. 2GB (default "
                              "$CRM_DUCKDB_MEMORY_LIMIT, else 5GB)")
    refresh.set_defaults(handler=_refresh)

    report = commands.add_parser("report", help="write the HTML report (KPIs, charts, watchlist, data quality)")
    report.add_argument("--warehouse", type=Path, default=None,
                        help="published DuckDB file (default $CRM_WAREHOUSE, else warehouse/crm.duckdb)")
    report.add_argument("--out", type=Path, default=None,
                        help="HTML file to write (default <warehouse dir>/reports/crm_report.html, "
                             "crm_report.zh.html with --lang zh)")
    report.add_argument("--lang", choices=LANGUAGES, default="en", help="language of the labels (default en)")
    report.set_defaults(handler=_report)

    forget = commands.add_parser(
        "forget", help="erase a customer from every layer at the next refresh (right to erasure; docs/security.md)")
    who = forget.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="SOURCE_ID",
                     help="a CRM customer id of the person (every id merged into the same customer is erased); '-' "
                          "reads it from standard input, out of the shell history and the process list")
    who.add_argument("--customer-key", metavar="KEY", help="the person's pseudonymous customer_key, as in the marts")
    forget.add_argument("--reason", default=None,
                        help="why, for the audit table (no personal data: e.g. 'GDPR art. 17, ticket 4711')")
    forget.add_argument("--warehouse", type=Path, default=None,
                        help="published DuckDB file (default $CRM_WAREHOUSE, else warehouse/crm.duckdb)")
    forget.set_defaults(handler=_forget)
    return parser


def _generate(args: argparse.Namespace) -> int:
    from dagster_project.sample_data import generate

    if args.customers < 1 or args.days < 30:
        raise CliError("--customers must be at least 1 and --days at least 30")
    summary = generate(
        args.out, customers=args.customers, days=args.days, seed=args.seed, truth_dir=args.truth,
        progress=lambda message: print(f"  {message}", flush=True),
    )
    for line in summary.lines():
        print(line)
    return 0


def refresh_settings(args: argparse.Namespace) -> Settings:
    """The refresh's settings: its flags, then the environment, then the defaults."""
    return Settings.load({
        "exports_dir": args.exports, "warehouse": args.warehouse, "as_of": args.as_of,
        "reporting_currency": args.currency, "default_currency": args.default_currency,
        "holiday_country": args.holiday_country, "currency_label": args.currency_label,
        "max_quarantine_share": args.max_quarantine_share, "mapping_file": args.mapping,
        "storage_version": args.storage_version, "engine": args.engine, "retrain": args.retrain,
        "published_mode": args.published_mode,
        "raw_retention_days": args.raw_retention_days, "keep_previous_exports": args.keep_previous_exports,
        "duckdb_memory_limit": args.memory_limit,
    })


def _refresh(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    settings = refresh_settings(args)
    if not settings.exports_dir.is_dir():
        raise CliError(
            f"exports folder {settings.exports_dir} does not exist: point --exports (or CRM_EXPORTS_DIR) at the "
            f"folder of your CRM's dated export drops (README.md, section \"Use it with your own exports\"); "
            f"to try the sample export instead: `{PROG} generate --out {DEFAULT_EXPORTS_DIR}` then `{PROG} refresh`"
        )
    # Before Dagster loads, which takes a while: a second refresh is refused at once, and no failed run is left in the UI.
    refuse_if_refreshing(settings.warehouse)
    # Also before Dagster loads: with no new drop, setting or code, the answer takes a moment, not a refresh.
    if not (args.full_refresh or settings.retrain) and (current := nothing_changed(settings)) is not None:
        print(unchanged_line(settings.warehouse, current.run_id, current.recorded_at,
                             time.perf_counter() - started))
        return 0
    _print_progress("preparing dbt project and Dagster definitions")
    from dagster import DagsterInstance

    from dagster_project.defs.instance import ensure_dagster_home
    from dagster_project.defs.refresh import RefreshError, run_refresh

    dagster_home = ensure_dagster_home()
    with DagsterInstance.get() as instance:
        try:
            done = run_refresh(settings, instance, progress=_print_progress, full_refresh=args.full_refresh)
        except RefreshError as error:
            raise CliError(str(error)) from None
    if not done.published:  # found unchanged by the run itself (files changed back while Dagster loaded)
        print(unchanged_line(settings.warehouse, None, None, time.perf_counter() - started))
        return 0
    for line in summary_lines(settings.warehouse, time.perf_counter() - started, dagster_home):
        print(line)
    for line in _unread_lines(settings):
        print(line)
    return 0


def _unread_lines(settings: Settings) -> list[str]:
    """What the drops hold that the refresh did not read (its warnings scrolled by in the progress): a real
    system's export name (hubspot-crm-exports-all-deals-2024-03-31.csv) is no entity's until mapping.yml says so."""
    from dagster_project.ingest import MappingError, load_mapping, unread_files

    try:
        skipped = unread_files(settings.exports_dir, load_mapping(settings.resolved_mapping_file))
    except (MappingError, OSError):
        return []
    return [f"not read ({len(skipped)}):", *(f"  {warning}" for warning in skipped)] if skipped else []


def unchanged_line(warehouse: Path, run_id: str | None, published_at, elapsed_seconds: float) -> str:
    """The one line of a refresh that found nothing to do."""
    since = f" since the refresh published at {published_at:%Y-%m-%d %H:%M} UTC (run {run_id})" if run_id else ""
    return (f"nothing changed{since}: no new or changed export file, setting or code; {warehouse} is unchanged "
            f"({elapsed_seconds:.1f} s; --full-refresh rebuilds everything anyway)")


def _report(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    import duckdb

    from dagster_project.report.files import write_report
    from dagster_project.warehouse_files import report_path
    from dagster_project.report.render import build_report

    settings = Settings.load({"warehouse": args.warehouse})
    warehouse = settings.warehouse
    if not warehouse.is_file():
        raise CliError(f"warehouse {warehouse} does not exist (build it with `{PROG} refresh`)")
    out = args.out or report_path(warehouse, args.lang)
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            report = build_report(con, args.lang)
    except duckdb.Error as error:
        raise CliError(f"cannot read {warehouse}: {' '.join(str(error).split())}") from None
    try:
        size = write_report(report.html, out, settings.published_mode)
    except OSError as error:
        raise CliError(f"cannot write {out}: {error.strerror or error}") from None
    print(f"wrote {out} ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
    if report.unavailable:
        print(f"not available for this export: {', '.join(report.unavailable)}")
    return 0


def _forget(args: argparse.Namespace) -> int:
    """Record an erasure request in the working database; the next refresh applies it (dagster_project.privacy)."""
    import fcntl

    import duckdb

    from dagster_project.privacy import erasure
    from dagster_project.warehouse_files import lock_path

    warehouse = Settings.load({"warehouse": args.warehouse}).warehouse
    work = work_database_path(warehouse)
    if not work.is_file():
        raise CliError(f"no working database {work}: nothing to erase yet (build it with `{PROG} refresh`)")
    source_id = sys.stdin.readline().strip() if args.customer == "-" else args.customer
    with open(lock_path(warehouse), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # refreshes hold it while they write the database
        except BlockingIOError:
            raise CliError(f"a refresh is writing {warehouse}; try again when it has finished") from None
        try:
            with duckdb.connect(str(work)) as con:
                receipt = erasure.request(con, source_id=source_id, customer_key=args.customer_key,
                                          reason=args.reason, via="cli")
        except erasure.ErasureError as error:
            raise CliError(str(error)) from None
        except duckdb.Error as error:
            raise CliError(f"cannot record the request in {work}: {' '.join(str(error).split())}") from None
    known = (f"{receipt.known_ids} CRM customer id(s) of this person in the last refresh" if receipt.known_ids
             else "not in the warehouse yet: any drop that delivers it will be quarantined as erased")
    print(f"erasure request {receipt.request_id} recorded ({known}); the next `{PROG} refresh` removes the person "
          "from every layer and its publication completes it (privacy.erasure_requests in the working database)")
    return 0


def _print_progress(message: str) -> None:
    print(f"  {message}", file=sys.__stdout__, flush=True)


def refuse_if_refreshing(warehouse: Path) -> None:
    """Raise CliError when a refresh holds the warehouse's lock (`<warehouse>.lock`, which the Warehouse resource of
    dagster_project/defs/resources.py holds for a whole run). Only a probe: the lock is released at once, and the run
    takes it again when its resources start (a refresh starting in between is refused there, as before)."""
    import fcntl

    from dagster_project.warehouse_files import lock_path

    lock_file = lock_path(warehouse)
    if not lock_file.exists():
        return
    with open(lock_file, "r") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock.read().strip() or "another process"
            raise CliError(f"another refresh ({holder}) is already writing {warehouse}; "
                           "try again when it has finished") from None
        fcntl.flock(lock, fcntl.LOCK_UN)


def summary_lines(warehouse: Path, elapsed_seconds: float, dagster_home: Path | None = None) -> list[str]:
    """Tables published with their row counts, rows quarantined and reconciliation, read back from the warehouse;
    then where to look next (the reports, the Dagster UI, a query)."""
    import duckdb

    from dagster_project.publish.publication import PUBLISHED_SCHEMAS
    from dagster_project.sql import qualified

    with duckdb.connect(str(warehouse), read_only=True) as con:
        # The tables the publish step copied (its "published N tables" line counts the same set).
        tables = con.execute(
            "select schema_name, table_name, estimated_size from duckdb_tables() "
            f"where schema_name in ({', '.join('?' for _ in PUBLISHED_SCHEMAS)}) order by schema_name, table_name",
            list(PUBLISHED_SCHEMAS),
        ).fetchall()
        counts = {
            (schema, name): con.execute(f"select count(*) from {qualified(schema, name)}").fetchone()[0]
            for schema, name, _ in tables
        }
        read, quarantined, unattributed, unaccounted = con.execute(
            "select sum(rows_read), sum(rows_quarantined), sum(rows_unattributed), sum(unaccounted_rows) "
            "from marts.fct_reconciliation"
        ).fetchone()
        # The ingest step's progress line counted the rows the reader rejected; the models reject the rest.
        at_ingest = con.execute("select count(*) from marts.fct_quarantined_rows where stage = 'ingest'").fetchone()[0]
        as_of = con.execute("select as_of_date from meta.publication").fetchone()[0]
        deferred = deferred_line(con, as_of)
    lines = [f"published {warehouse} as of {as_of} in {elapsed_seconds:.1f} s "
             f"(working database with raw, staging and restricted data: {work_database_path(warehouse).name})",
             f"{len(tables)} tables built and published (schemas {', '.join(PUBLISHED_SCHEMAS)}):"]
    lines += [f"  {schema + '.' + name:<42} {counts[(schema, name)]:>12,} rows" for schema, name, _ in tables]
    unattributed_text = f", unattributed (no customer id) {unattributed:,}" if unattributed else ""
    lines.append(f"rows read {read or 0:,}, quarantined {quarantined or 0:,} ({at_ingest:,} at ingest, "
                 f"{(quarantined or 0) - at_ingest:,} by the models; see marts.fct_quarantined_rows)"
                 f"{unattributed_text}, unaccounted {unaccounted or 0:,}")
    return lines + ([deferred] if deferred else []) + next_steps(warehouse, dagster_home)


def deferred_line(con, as_of) -> str | None:
    """The rows dated after the as-of date, by entity, if any. The as-of date defaults to the last order's, so a CRM
    export's deals or tickets dated after it wait for a later one: said, not only counted in the reconciliation."""
    deferred = con.execute("select entity, sum(rows_deferred) from marts.fct_reconciliation group by entity "
                           "having sum(rows_deferred) > 0 order by entity").fetchall()
    if not deferred:
        return None
    return (f"deferred {sum(n for _, n in deferred):,} row(s) dated after the as-of date {as_of} "
            f"({', '.join(f'{entity} {n:,}' for entity, n in deferred)}): a later --as-of counts them")


def next_steps(warehouse: Path, dagster_home: Path | None = None) -> list[str]:
    """A few lines on where to look after a refresh: the report, the quality page, the Dagster UI, a query."""
    from dagster_project.warehouse_files import quality_page_path, report_path

    lines = ["next:"]
    report, report_zh = report_path(warehouse, "en"), report_path(warehouse, "zh")
    if report.is_file():
        lines.append(f"  {'report':<14} {_typed(report)}"
                     + (f" (Chinese: {report_zh.name})" if report_zh.is_file() else ""))
    quality = quality_page_path(warehouse)
    if quality.is_file():
        lines.append(f"  {'data quality':<14} {_typed(quality)}")
    make_dev = "make dev"  # whose instance is the repository's .dagster_home unless DAGSTER_HOME says otherwise
    if dagster_home is not None and Path(dagster_home) != Path.cwd() / ".dagster_home":
        make_dev = f"DAGSTER_HOME={shlex.quote(os.path.abspath(dagster_home))} make dev"
    lines.append(f"  {'Dagster UI':<14} `{make_dev}` in the repository, then http://localhost:3000 "
                 "(runs, asset graph, metadata)")
    code = (f"import duckdb; print(duckdb.connect({json.dumps(_typed(warehouse))}, read_only=True)"
            '.sql("select * from marts.customer_360 limit 5"))')
    lines.append(f"  {'query':<14} {shlex.quote(_typed(Path(sys.executable)))} -c {shlex.quote(code)}")
    return lines


def _typed(path: Path) -> str:
    """A path as short as the user can type it from here: relative when inside the working directory."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


if __name__ == "__main__":
    sys.exit(main())
