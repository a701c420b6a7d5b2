"""The refresh's settings: one immutable object, built once (``Settings.load``: command-line flags, then the
environment, then defaults) and passed down to the Dagster definitions and resources.

Where the exports and the warehouse are, and which date counts as today. dbt reads the working database's path from
its profile (``dbt/profiles.yml``: ``CRM_WORK_DATABASE``), the one variable the definitions export, so dbt and the
Dagster resources open the same file however the refresh is started (CLI, ``dagster asset materialize``, the daily
schedule).

Two files: the refresh writes the *working* database ``<name>.work.duckdb`` (raw, staging, intermediate, audit,
restricted personal data, marts, analytics); the *published* file ``CRM_WAREHOUSE`` holds only the BI-facing
schemas and is replaced atomically at the end of a successful refresh, so readers never wait on or see a half-built
warehouse.

Money and calendars: the reporting currency every amount is converted to, the currency of amounts that carry no
currency, the country whose public holidays the forecast models, the label money is shown with in the report, the
share of quarantined rows a refresh tolerates and the column-mapping file. And the storage format of the published
file, named by the oldest DuckDB release it is written for, so BI tools that bundle an older DuckDB still open it.
And the engine that builds the marts: DuckDB, or Spark (``dagster_project.spark``; its cluster settings are Spark's
and dbt's own, read from the environment: docs/scale_out.md).
How often the saved models are refitted (their cadences, a metric drop that forces a refit, and `--retrain` for one
refresh); between refits the saved model scores each refresh's data (dagster_project/analytics/model_store.py).
Who may read what on disk and for how long (docs/security.md): the file mode of what BI readers get (the published
warehouse, its exports, the report and the quality page; everything else is owner-only), how many days personal values
that no longer serve the warehouse are kept in the working database, and how many previous export versions stay.
Every setting has an environment variable and most a `crm-warehouse refresh` flag, which wins over it; every bad
value is a one-line `SettingsError` naming both.
"""

from __future__ import annotations

import csv
import math
import os
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from dagster_project.warehouse_files import work_database_path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"
# Folders dbt writes into its project, which no fingerprint of the project's sources may read.
DBT_GENERATED_FOLDERS = frozenset({"target", "logs", "dbt_packages"})

DEFAULT_EXPORTS_DIR = "data/exports"
DEFAULT_WAREHOUSE = "warehouse/crm.duckdb"
DEFAULT_REPORTING_CURRENCY = "CNY"
DEFAULT_MAX_QUARANTINE_SHARE = 0.05
# The mapping file a refresh uses when CRM_MAPPING is not set, if the exports folder has one.
DEFAULT_MAPPING_NAME = "mapping.yml"
# The storage format the published warehouse is written in, named by the oldest DuckDB release that must read it
# (DuckDB's ATTACH ... (STORAGE_VERSION ...)). BI tools bundle their own DuckDB (JDBC/ODBC drivers, Node and Python
# clients) and many stay on 1.x, which cannot open a file in DuckDB 2.0's own format (storage version 69). v1.0.0,
# the format of the first 1.x release, holds every type we publish: the sample warehouse written in it was read back
# identically by DuckDB 1.0.0, 1.1.3, 1.2.2, 1.3.2, 1.4.4 and 1.5.6 (docs/bi.md; 1.0.0 and 1.5.6 in every test run,
# by tests/test_bi_clients.py). A newer format compresses better (v1.2.0: about 11% smaller) but shuts out the
# clients older than it.
DEFAULT_STORAGE_VERSION = "v1.0.0"
# The oldest format a setting may name, and the releases whose format DuckDB 2.0 writes in a way those very releases
# misread: DuckDB 1.3.0 and 1.3.2 read some text columns of a v1.3 file written by 2.0 (its DICT_FSST segments) as
# NULL, without an error; a v1.2 file they read correctly.
OLDEST_STORAGE_VERSION = (1, 0, 0)
MISREAD_STORAGE_VERSIONS = {(1, 3): "v1.2.0"}
LATEST_STORAGE_VERSION = "latest"
# What builds the marts: DuckDB in this process, or Spark (docs/scale_out.md).
ENGINES = ("duckdb", "spark")
DEFAULT_ENGINE = "duckdb"
# The rate table dbt converts with: the currencies it lists are the ones a setting may name.
CURRENCY_RATES = DBT_PROJECT_DIR / "seeds" / "currency_rates.csv"

# Whose public holidays the forecast models when CRM_HOLIDAY_COUNTRY is not set: the country of the reporting
# currency. The euro has no single country; Germany, the largest euro economy, stands in. A currency not listed
# here (a rate added to the seed later) gets no holidays until CRM_HOLIDAY_COUNTRY names a country.
HOLIDAY_COUNTRY_BY_CURRENCY = {
    "CNY": "CN", "USD": "US", "GBP": "GB", "EUR": "DE", "JPY": "JP", "HKD": "HK", "TWD": "TW", "SGD": "SG",
    "KRW": "KR", "AUD": "AU", "CAD": "CA", "BRL": "BR", "MXN": "MX", "NZD": "NZ",
}
# How money is labelled in the report when CRM_CURRENCY_LABEL is not set; any other currency shows its ISO code.
CURRENCY_LABELS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
# CRM_HOLIDAY_COUNTRY=none: a forecast without public holidays.
NO_HOLIDAYS = "none"
CURRENCY_LABEL_MAX_CHARS = 12

# The variables dbt's profile reads the working database's path and DuckDB's memory limit from.
WORK_DATABASE_VARIABLE = "CRM_WORK_DATABASE"
MEMORY_LIMIT_VARIABLE = "CRM_DUCKDB_MEMORY_LIMIT"

# What each setting is read from when no flag sets it.
ENVIRONMENT_VARIABLES = {
    "exports_dir": "CRM_EXPORTS_DIR",
    "warehouse": "CRM_WAREHOUSE",
    "as_of": "CRM_AS_OF",
    "schedule_timezone": "CRM_SCHEDULE_TIMEZONE",
    "schedule_cron": "CRM_SCHEDULE_CRON",
    "reporting_currency": "CRM_REPORTING_CURRENCY",
    "default_currency": "CRM_DEFAULT_CURRENCY",
    "holiday_country": "CRM_HOLIDAY_COUNTRY",
    "currency_label": "CRM_CURRENCY_LABEL",
    "max_quarantine_share": "CRM_MAX_QUARANTINE_SHARE",
    "mapping_file": "CRM_MAPPING",
    "storage_version": "CRM_STORAGE_VERSION",
    "engine": "CRM_ENGINE",
    "retrain": "CRM_RETRAIN",
    "retrain_days": "CRM_RETRAIN_DAYS",
    "forecast_refit_days": "CRM_FORECAST_REFIT_DAYS",
    "retrain_metric_drop": "CRM_RETRAIN_METRIC_DROP",
}
DEFAULT_SCHEDULE_TIMEZONE = "Asia/Shanghai"
# When the daily schedule runs, in cron syntax (minute hour day month weekday) in the schedule's timezone.
DEFAULT_SCHEDULE_CRON = "0 6 * * *"
# Models on a cadence (dagster_project/analytics/model_store.py): churn and the health weights are refitted when their
# saved model is this many as-of days old, forecasts likewise; in between the saved model scores each refresh's data.
# 0 refits at every refresh. A churn or health model is also refitted when its ROC-AUC on the latest window with known
# outcomes falls more than DEFAULT_RETRAIN_METRIC_DROP below the out-of-sample figure it was saved with.
DEFAULT_RETRAIN_DAYS = 7
DEFAULT_FORECAST_REFIT_DAYS = 7
DEFAULT_RETRAIN_METRIC_DROP = 0.05
ENVIRONMENT_VARIABLES |= {
    "published_mode": "CRM_PUBLISHED_MODE",
    "raw_retention_days": "CRM_RAW_RETENTION_DAYS",
    "keep_previous_exports": "CRM_KEEP_PREVIOUS_EXPORTS",
    "duckdb_memory_limit": MEMORY_LIMIT_VARIABLE,
}
# What BI readers in other accounts get: the published files readable by everyone (their folders traversable); 0640
# with a group-owned, setgid warehouse folder limits them to a group. Everything else a refresh writes is owner-only.
DEFAULT_PUBLISHED_MODE = 0o644
# Days personal values that no longer serve the warehouse (replaced customer versions, rows set aside by the quarantine,
# the raw lines of quarantined rows) are kept in the working database after they were loaded, for debugging.
DEFAULT_RAW_RETENTION_DAYS = 90
# Previous Parquet / CSV export versions kept beside the current one, for readers in the middle of a scan.
DEFAULT_KEEP_PREVIOUS_EXPORTS = 1
# The most memory DuckDB may take, in dbt and in the refresh's own process (one at a time: dbt runs while the refresh
# waits); beyond it DuckDB spills to the owner-only folder beside the working database. DuckDB's own default, 80% of
# RAM, let a 1M-customer refresh grow to 20 GB.
DEFAULT_DUCKDB_MEMORY_LIMIT = "5GB"


class SettingsError(ValueError):
    """A setting from the environment or the command line is unusable."""


@dataclass(frozen=True)
class Settings:
    exports_dir: Path
    warehouse: Path
    as_of: date | None
    schedule_timezone: str
    # ISO code of the currency every amount is reported in (a row of dbt/seeds/currency_rates.csv).
    reporting_currency: str = DEFAULT_REPORTING_CURRENCY
    # Currency of amounts with neither a currency column nor a symbol; None: the reporting currency.
    default_currency: str | None = None
    # Whether the user named a currency (the reporting or the default one, by flag or environment): until one does,
    # an export whose amounts name no currency stops the refresh rather than be read as the built-in default's.
    # Settings.load finds out; settings made in code name their currency by being written.
    currency_named: bool = True
    # ISO country code of the forecast's public holidays; None: derived from the reporting currency
    # (HOLIDAY_COUNTRY_BY_CURRENCY); "none": no holidays.
    holiday_country: str | None = None
    # How the report labels money; None: derived from the reporting currency (CURRENCY_LABELS, else the code).
    currency_label: str | None = None
    # Largest share (0-1) of an export's rows that may be quarantined.
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE
    # Column-mapping file; None: <exports_dir>/mapping.yml when it exists (resolved_mapping_file).
    mapping_file: Path | None = None
    # Storage format of the published warehouse: the oldest DuckDB release that must open it ("v1.2.0"), or "latest"
    # (the running DuckDB's own format).
    storage_version: str = DEFAULT_STORAGE_VERSION
    # What builds the marts: "duckdb" or "spark".
    engine: str = DEFAULT_ENGINE
    # When the daily schedule fires (cron, in schedule_timezone).
    schedule_cron: str = DEFAULT_SCHEDULE_CRON
    # Refit every saved model at this refresh (`--retrain`), whatever its age; and the cadences above.
    retrain: bool = False
    retrain_days: int = DEFAULT_RETRAIN_DAYS
    forecast_refit_days: int = DEFAULT_FORECAST_REFIT_DAYS
    retrain_metric_drop: float = DEFAULT_RETRAIN_METRIC_DROP
    # File mode of the published warehouse, its exports, the report and the quality page (folders get the matching
    # search bits); an int (0o644) or octal text ("0640").
    published_mode: int = DEFAULT_PUBLISHED_MODE
    raw_retention_days: int = DEFAULT_RAW_RETENTION_DAYS
    keep_previous_exports: int = DEFAULT_KEEP_PREVIOUS_EXPORTS
    # DuckDB's memory_limit ("5GB", "800MB", "2GiB").
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT

    def __post_init__(self) -> None:
        """Validate and normalise (codes upper-case), however the settings were made: from the environment, in code,
        or with dataclasses.replace."""
        set_ = object.__setattr__
        set_(self, "reporting_currency",
             parse_currency(self.reporting_currency, REPORTING_CURRENCY) or DEFAULT_REPORTING_CURRENCY)
        set_(self, "default_currency", parse_currency(self.default_currency, DEFAULT_CURRENCY))
        set_(self, "holiday_country", parse_holiday_country(self.holiday_country))
        set_(self, "currency_label", parse_currency_label(self.currency_label))
        set_(self, "max_quarantine_share", parse_share(self.max_quarantine_share))
        set_(self, "storage_version", parse_storage_version(self.storage_version))
        set_(self, "engine", parse_engine(self.engine))
        set_(self, "schedule_cron", parse_cron(self.schedule_cron))
        set_(self, "schedule_timezone", parse_timezone(self.schedule_timezone))
        set_(self, "retrain", parse_flag(self.retrain, RETRAIN))
        set_(self, "retrain_days", parse_days(self.retrain_days, RETRAIN_DAYS))
        set_(self, "forecast_refit_days", parse_days(self.forecast_refit_days, FORECAST_REFIT_DAYS))
        set_(self, "retrain_metric_drop", parse_fraction(self.retrain_metric_drop, RETRAIN_METRIC_DROP))
        set_(self, "published_mode", parse_published_mode(self.published_mode))
        set_(self, "raw_retention_days", parse_count(self.raw_retention_days, RAW_RETENTION_DAYS))
        set_(self, "keep_previous_exports", parse_count(self.keep_previous_exports, KEEP_PREVIOUS_EXPORTS))
        set_(self, "duckdb_memory_limit", parse_memory_limit(self.duckdb_memory_limit))
        if self.mapping_file is not None:
            set_(self, "mapping_file", Path(self.mapping_file))
            if not self.mapping_file.is_file():
                problem = "is not a file" if self.mapping_file.exists() else "does not exist"
                raise SettingsError(f"{MAPPING}: mapping file {str(self.mapping_file)!r} {problem}")

    @classmethod
    def load(cls, flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from `flags` (field name -> value; None = not given), then the environment (blank = unset),
        then the defaults."""
        environ = os.environ if environ is None else environ
        flags = flags or {}

        def given(field: str):
            flag = flags.get(field)
            if flag is not None and str(flag).strip():
                return flag
            text = environ.get(ENVIRONMENT_VARIABLES[field], "")
            return text.strip() or None

        mapping, as_of = given("mapping_file"), given("as_of")
        return cls(
            exports_dir=Path(given("exports_dir") or DEFAULT_EXPORTS_DIR).resolve(),
            warehouse=Path(given("warehouse") or DEFAULT_WAREHOUSE).resolve(),
            as_of=as_of if isinstance(as_of, date) else parse_as_of(as_of),
            schedule_timezone=given("schedule_timezone") or DEFAULT_SCHEDULE_TIMEZONE,
            reporting_currency=given("reporting_currency") or DEFAULT_REPORTING_CURRENCY,
            default_currency=given("default_currency"),
            currency_named=bool(given("reporting_currency") or given("default_currency")),
            holiday_country=given("holiday_country"),
            currency_label=given("currency_label"),
            max_quarantine_share=given("max_quarantine_share") or DEFAULT_MAX_QUARANTINE_SHARE,
            mapping_file=Path(mapping).resolve() if mapping else None,
            storage_version=given("storage_version") or DEFAULT_STORAGE_VERSION,
            engine=given("engine") or DEFAULT_ENGINE,
            schedule_cron=given("schedule_cron") or DEFAULT_SCHEDULE_CRON,
            retrain=given("retrain") or False,
            retrain_days=given("retrain_days") or DEFAULT_RETRAIN_DAYS,
            forecast_refit_days=given("forecast_refit_days") or DEFAULT_FORECAST_REFIT_DAYS,
            retrain_metric_drop=given("retrain_metric_drop") or DEFAULT_RETRAIN_METRIC_DROP,
            published_mode=given("published_mode") or DEFAULT_PUBLISHED_MODE,
            raw_retention_days=_or(given("raw_retention_days"), DEFAULT_RAW_RETENTION_DAYS),
            keep_previous_exports=_or(given("keep_previous_exports"), DEFAULT_KEEP_PREVIOUS_EXPORTS),
            duckdb_memory_limit=given("duckdb_memory_limit") or DEFAULT_DUCKDB_MEMORY_LIMIT,
        )

    @property
    def work_database(self) -> Path:
        return work_database_path(self.warehouse)

    @property
    def resolved_default_currency(self) -> str:
        return self.default_currency or self.reporting_currency

    @property
    def resolved_holiday_country(self) -> str | None:
        """The forecast's holiday country, or None for no holidays."""
        if self.holiday_country == NO_HOLIDAYS:
            return None
        return self.holiday_country or HOLIDAY_COUNTRY_BY_CURRENCY.get(self.reporting_currency)

    @property
    def resolved_currency_label(self) -> str:
        return self.currency_label or CURRENCY_LABELS.get(self.reporting_currency, self.reporting_currency)

    @property
    def resolved_mapping_file(self) -> Path | None:
        """The mapping file the refresh uses: the configured one, else <exports_dir>/mapping.yml if it exists."""
        if self.mapping_file is not None:
            return self.mapping_file
        default = self.exports_dir / DEFAULT_MAPPING_NAME
        return default if default.is_file() else None

    def dbt_profile_environment(self) -> dict[str, str]:
        """What dbt's profile reads from the environment (the only settings that travel that way)."""
        return {WORK_DATABASE_VARIABLE: str(self.work_database), MEMORY_LIMIT_VARIABLE: self.duckdb_memory_limit}


# How each setting is named in messages: the environment variable and the `crm-warehouse refresh` flag.
REPORTING_CURRENCY = "CRM_REPORTING_CURRENCY / --currency"
DEFAULT_CURRENCY = "CRM_DEFAULT_CURRENCY / --default-currency"
HOLIDAY_COUNTRY = "CRM_HOLIDAY_COUNTRY / --holiday-country"
CURRENCY_LABEL = "CRM_CURRENCY_LABEL / --currency-label"
MAX_QUARANTINE_SHARE = "CRM_MAX_QUARANTINE_SHARE / --max-quarantine-share"
MAPPING = "CRM_MAPPING / --mapping"
STORAGE_VERSION = "CRM_STORAGE_VERSION / --storage-version"
ENGINE = "CRM_ENGINE / --engine"
SCHEDULE_CRON = "CRM_SCHEDULE_CRON"
SCHEDULE_TIMEZONE = "CRM_SCHEDULE_TIMEZONE"
RETRAIN = "CRM_RETRAIN / --retrain"
RETRAIN_DAYS = "CRM_RETRAIN_DAYS"
FORECAST_REFIT_DAYS = "CRM_FORECAST_REFIT_DAYS"
RETRAIN_METRIC_DROP = "CRM_RETRAIN_METRIC_DROP"
PUBLISHED_MODE = "CRM_PUBLISHED_MODE / --published-mode"
RAW_RETENTION_DAYS = "CRM_RAW_RETENTION_DAYS / --raw-retention-days"
KEEP_PREVIOUS_EXPORTS = "CRM_KEEP_PREVIOUS_EXPORTS / --keep-previous-exports"
DUCKDB_MEMORY_LIMIT = "CRM_DUCKDB_MEMORY_LIMIT / --memory-limit"

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?-]+")
_RELEASE = re.compile(r"v?(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


@cache
def known_currencies() -> tuple[str, ...]:
    """The currency codes of dbt/seeds/currency_rates.csv, sorted."""
    with open(CURRENCY_RATES, newline="", encoding="utf-8") as rates:
        return tuple(sorted({row["currency"].strip().upper() for row in csv.DictReader(rates)}))


def is_currency_code(text: str) -> bool:
    """Three upper-case letters: safe to write into SQL (dbt vars) and to compare with the rate table."""
    return isinstance(text, str) and _CURRENCY_CODE.fullmatch(text) is not None


def parse_currency(text: str | None, setting: str = REPORTING_CURRENCY) -> str | None:
    """The upper-case ISO code of a currency of the rate table; None for None or blank."""
    if text is None or not str(text).strip():
        return None
    code = str(text).strip().upper()
    known = known_currencies()
    if code not in known:
        raise SettingsError(f"{setting}: unknown currency {str(text).strip()!r} (known: {', '.join(known)}; "
                            f"another needs a rate in dbt/seeds/currency_rates.csv)")
    return code


def parse_holiday_country(text: str | None) -> str | None:
    """An ISO country code the `holidays` package knows (upper-case), "none", or None (derive it)."""
    if text is None or not str(text).strip():
        return None
    value = str(text).strip()
    if value.lower() == NO_HOLIDAYS:
        return NO_HOLIDAYS
    import holidays  # only when a country is named: the CLI starts without it

    code = value.upper()
    if code not in holidays.list_supported_countries():
        raise SettingsError(f"{HOLIDAY_COUNTRY}: {value!r} is not a country code the holidays package knows "
                            f"(e.g. CN, US, GB, DE), nor 'none' for no holidays")
    return code


def parse_currency_label(text: str | None) -> str | None:
    if text is None or not str(text).strip():
        return None
    label = str(text).strip()
    if len(label) > CURRENCY_LABEL_MAX_CHARS or not label.isprintable():
        raise SettingsError(f"{CURRENCY_LABEL}: {label!r} is not a label of 1-{CURRENCY_LABEL_MAX_CHARS} "
                            "printable characters")
    return label


def parse_share(value) -> float:
    """A fraction from 0 to 1 (0.05 = 5%)."""
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = math.nan
    if isinstance(value, bool) or not 0.0 <= share <= 1.0:  # NaN fails the comparison too
        raise SettingsError(f"{MAX_QUARANTINE_SHARE}: {value!r} is not a fraction from 0 to 1 (0.05 = 5%)")
    return share


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_flag(value, setting: str) -> bool:
    """True or False, from a bool or 1/true/yes/on, 0/false/no/off."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _TRUE | _FALSE:
        raise SettingsError(f"{setting}: {value!r} is not 1/true/yes/on nor 0/false/no/off")
    return text in _TRUE


def parse_days(value, setting: str) -> int:
    """A whole number of days from 0 (0: at every refresh)."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise SettingsError(f"{setting}: {value!r} is not a whole number of days from 0 (0: at every refresh)")
    return int(text)


def parse_fraction(value, setting: str) -> float:
    """A number from 0 to 1."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:
        raise SettingsError(f"{setting}: {value!r} is not a number from 0 to 1 (e.g. 0.05)")
    return number


_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def parse_memory_limit(text: str | None) -> str:
    """A DuckDB memory_limit ("5GB", "800 MB", "2GiB"), normalised without spaces; None or blank: the default. It
    reaches SQL and dbt's profile, so nothing but a number and a unit passes."""
    if text is None or not str(text).strip():
        return DEFAULT_DUCKDB_MEMORY_LIMIT
    value = str(text).strip()
    amount = _MEMORY.fullmatch(value)
    if amount is None or float(amount.group(1)) <= 0:
        raise SettingsError(f"{DUCKDB_MEMORY_LIMIT}: {value!r} is not an amount of memory such as "
                            f"{DEFAULT_DUCKDB_MEMORY_LIMIT} (the default), 800MB or 2GiB")
    return f"{amount.group(1)}{amount.group(2)}"


def parse_storage_version(text: str | None) -> str:
    """A DuckDB release ("v1.2.0"; the "v" may be left out) from v1.0.0 on that the running DuckDB can write the format
    of, or "latest"; None or blank: the default."""
    if text is None or not str(text).strip():
        return DEFAULT_STORAGE_VERSION
    value = str(text).strip()
    if value.lower() == LATEST_STORAGE_VERSION:
        return LATEST_STORAGE_VERSION
    release = _RELEASE.fullmatch(value.lower())
    if release is None or tuple(map(int, release.groups())) < OLDEST_STORAGE_VERSION:
        raise SettingsError(f"{STORAGE_VERSION}: {value!r} is not a DuckDB release from v1.0.0 on (e.g. "
                            f"{DEFAULT_STORAGE_VERSION}, the default, which DuckDB 1.0 and newer read; v1.2.0; v1.5.0) "
                            f"nor '{LATEST_STORAGE_VERSION}'")
    major, minor, patch = map(int, release.groups())
    if (major, minor) in MISREAD_STORAGE_VERSIONS:
        raise SettingsError(f"{STORAGE_VERSION}: {value!r}: DuckDB {major}.{minor} reads some text columns of a file "
                            f"this DuckDB writes in its format as NULL; use "
                            f"{MISREAD_STORAGE_VERSIONS[(major, minor)]}, which it reads correctly")
    version = f"v{major}.{minor}.{patch}"
    problem = _unwritable_storage_version(version)
    if problem:
        raise SettingsError(f"{STORAGE_VERSION}: {value!r} is not a release whose storage format this DuckDB "
                            f"writes ({problem})")
    return version


@cache
def _unwritable_storage_version(version: str) -> str | None:
    """Why the running DuckDB cannot write `version`'s storage format (a release it does not know), or None."""
    import duckdb  # only when a version is checked: the CLI starts without it

    with duckdb.connect() as con:
        try:
            con.execute(f"set storage_compatibility_version = '{version}'")  # `version` matched _RELEASE
        except duckdb.Error:
            return f"DuckDB {duckdb.__version__} knows no release {version}"
    return None


def parse_cron(text: str | None) -> str:
    """A cron schedule of five fields (minute hour day month weekday); None or blank: the default."""
    if text is None or not str(text).strip():
        return DEFAULT_SCHEDULE_CRON
    fields = str(text).split()
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
        raise SettingsError(f"{SCHEDULE_CRON}: {text!r} is not a cron schedule of five fields, minute hour day month "
                            f"weekday (e.g. {DEFAULT_SCHEDULE_CRON!r}, 06:00 every day)")
    return " ".join(fields)


def parse_timezone(text: str | None) -> str:
    """An IANA time zone name (Asia/Shanghai, UTC) the daily schedule fires in; None or blank: the default."""
    if text is None or not str(text).strip():
        return DEFAULT_SCHEDULE_TIMEZONE
    name = str(text).strip()
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{SCHEDULE_TIMEZONE}: {name!r} is not a time zone name (e.g. 'Asia/Shanghai', "
                            "'Europe/Berlin', 'UTC')") from None
    return name


def _or(value, default):
    """`value` unless it is None: a count of 0 is a value."""
    return default if value is None else value


def parse_published_mode(value) -> int:
    """A file mode for what BI readers get: octal text ("0644", "640") or an int; read and write for the owner (the
    refresh replaces the files), no execute, set-id or sticky bit."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    else:
        text = str(value).strip().lower().removeprefix("0o")
        mode = int(text, 8) if re.fullmatch(r"[0-7]{3,4}", text) else -1
    if mode < 0 or mode & ~0o666 or mode & 0o600 != 0o600:
        raise SettingsError(f"{PUBLISHED_MODE}: {value!r} is not an octal file mode with read and write for the owner "
                            "and no execute bits (e.g. 0644: everyone may read; 0640: the owner's group may read)")
    return mode


def parse_count(value, setting: str) -> int:
    """A whole number from 0 on."""
    try:
        count = int(str(value).strip()) if not isinstance(value, bool) else -1
    except ValueError:
        count = -1
    if count < 0:
        raise SettingsError(f"{setting}: {value!r} is not a whole number from 0 on")
    return count


def parse_engine(text: str | None) -> str:
    """duckdb or spark (any case); None or blank: duckdb. Spark needs the optional extra installed."""
    if text is None or not str(text).strip():
        return DEFAULT_ENGINE
    engine = str(text).strip().lower()
    if engine not in ENGINES:
        raise SettingsError(f"{ENGINE}: {str(text).strip()!r} is not an engine ({', '.join(ENGINES)})")
    if engine == "spark" and not _spark_installed():
        raise SettingsError(f"{ENGINE}: spark needs the optional Spark packages: pip install -e '.[spark]' "
                            "(and Java 17)")
    return engine


def _spark_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("pyspark", "dbt.adapters.spark"))


def parse_as_of(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise SettingsError(f"as-of date {text!r} is not a date in YYYY-MM-DD form") from None
