"""Settings: every setting from the environment and the `crm-warehouse refresh` flags, what is derived when one is
unset, one-line errors naming the variable and the flag; and one refresh in US dollars, from the export to the
published warehouse and the report."""

from __future__ import annotations

import math
import os
import re
from datetime import date

import duckdb
import pytest

from dagster_project.cli import build_parser, main, refresh_settings
from dagster_project.settings import (
    CURRENCY_LABELS, HOLIDAY_COUNTRY_BY_CURRENCY, Settings, SettingsError, known_currencies,
)

from conftest import refresh, settings_at, settings_variables, write_orders_only_export

# ------------------------------------------------------------------------------------------------- defaults


def test_nothing_set_means_yuan_chinese_holidays_and_five_percent(tmp_path):
    plain = settings_at(tmp_path)
    assert (plain.reporting_currency, plain.default_currency, plain.holiday_country, plain.currency_label) == \
        ("CNY", None, None, None)
    assert plain.resolved_default_currency == "CNY"
    assert plain.resolved_holiday_country == "CN" and plain.resolved_currency_label == "¥"
    assert plain.max_quarantine_share == 0.05 and plain.mapping_file is None and plain.resolved_mapping_file is None


@pytest.mark.parametrize(("currency", "country", "label"), [
    ("USD", "US", "$"), ("GBP", "GB", "£"), ("EUR", "DE", "€"), ("JPY", "JP", "¥"), ("KRW", "KR", "KRW"),
])
def test_the_holiday_country_and_label_follow_the_reporting_currency(tmp_path, currency, country, label):
    derived = settings_at(tmp_path, reporting_currency=currency)
    assert derived.resolved_default_currency == currency
    assert derived.resolved_holiday_country == country and derived.resolved_currency_label == label


def test_every_currency_of_the_rate_table_has_a_holiday_country_and_every_label_a_rate():
    assert set(HOLIDAY_COUNTRY_BY_CURRENCY) == set(known_currencies())
    assert set(CURRENCY_LABELS) <= set(known_currencies())


def test_set_values_win_over_derived_ones_and_none_switches_holidays_off(tmp_path):
    chosen = settings_at(tmp_path, reporting_currency="usd", default_currency="cny", holiday_country="gb",
                      currency_label="US$")
    assert (chosen.reporting_currency, chosen.resolved_default_currency) == ("USD", "CNY")
    assert chosen.resolved_holiday_country == "GB" and chosen.resolved_currency_label == "US$"
    assert settings_at(tmp_path, holiday_country="None").resolved_holiday_country is None


def test_the_mapping_file_is_the_set_one_else_mapping_yml_in_the_exports_folder(tmp_path):
    assert settings_at(tmp_path).resolved_mapping_file is None
    (tmp_path / "mapping.yml").write_text("{}\n")
    assert settings_at(tmp_path).resolved_mapping_file == tmp_path / "mapping.yml"
    own = tmp_path / "own.yml"
    own.write_text("{}\n")
    assert settings_at(tmp_path, mapping_file=own).resolved_mapping_file == own


# ------------------------------------------------------------------------------------------- the environment


def test_every_setting_is_read_from_the_environment_and_a_flag_wins_over_it(env, tmp_path):
    mapping = tmp_path / "m.yml"
    mapping.write_text("{}\n")
    for key, value in {"CRM_EXPORTS_DIR": str(tmp_path), "CRM_WAREHOUSE": str(tmp_path / "w.duckdb"),
                       "CRM_REPORTING_CURRENCY": "usd", "CRM_DEFAULT_CURRENCY": "EUR", "CRM_HOLIDAY_COUNTRY": "none",
                       "CRM_CURRENCY_LABEL": "US$", "CRM_MAX_QUARANTINE_SHARE": "0.2",
                       "CRM_MAPPING": str(mapping)}.items():
        env.setenv(key, value)
    read = Settings.load()
    assert (read.reporting_currency, read.default_currency, read.holiday_country, read.currency_label,
            read.max_quarantine_share, read.mapping_file) == ("USD", "EUR", "none", "US$", 0.2, mapping)
    # A flag wins; a flag not given (None) leaves the variable's value.
    flagged = Settings.load({"reporting_currency": "eur", "max_quarantine_share": "0.3", "currency_label": None})
    assert (flagged.reporting_currency, flagged.max_quarantine_share, flagged.currency_label) == ("EUR", 0.3, "US$")
    assert Settings.load(environ={}) == Settings.load(environ={"CRM_REPORTING_CURRENCY": " "})  # blank is unset


def test_the_settings_travel_as_one_object_and_only_what_dbt_s_profile_reads_goes_through_the_environment(env, tmp_path):
    from dagster_project.defs.definitions import build_definitions

    before = settings_variables()
    settings = settings_at(tmp_path, reporting_currency="USD", as_of=date(2026, 1, 31))
    warehouse = build_definitions(settings).resources["warehouse"]
    assert (warehouse.reporting_currency, warehouse.as_of) == ("USD", "2026-01-31")
    assert settings_variables() - before == {"CRM_WORK_DATABASE", "CRM_DUCKDB_MEMORY_LIMIT"}
    assert os.environ["CRM_WORK_DATABASE"] == str(settings.work_database)
    assert os.environ["CRM_DUCKDB_MEMORY_LIMIT"] == warehouse.memory_limit == "5GB"


def test_empty_variables_are_unset(env):
    for key in ("CRM_REPORTING_CURRENCY", "CRM_DEFAULT_CURRENCY", "CRM_HOLIDAY_COUNTRY", "CRM_CURRENCY_LABEL",
                "CRM_MAX_QUARANTINE_SHARE", "CRM_MAPPING"):
        env.setenv(key, "")
    read = Settings.load()
    assert (read.reporting_currency, read.default_currency, read.holiday_country, read.currency_label,
            read.max_quarantine_share, read.mapping_file) == ("CNY", None, None, None, 0.05, None)
    assert not read.currency_named  # CNY is the built-in default, which nobody chose


@pytest.mark.parametrize(("flags", "environ"), [
    ({"reporting_currency": "USD"}, {}), ({"default_currency": "USD"}, {}), ({}, {"CRM_REPORTING_CURRENCY": "CNY"}),
    ({}, {"CRM_DEFAULT_CURRENCY": "EUR"}),
])
def test_a_currency_is_named_by_either_currency_setting_by_flag_or_environment(flags, environ):
    assert Settings.load(flags, environ).currency_named
    assert not Settings.load({"currency_label": "US$"}, {"CRM_HOLIDAY_COUNTRY": "US"}).currency_named


@pytest.mark.parametrize(("key", "value", "names"), [
    ("CRM_REPORTING_CURRENCY", "XYZ", ["CRM_REPORTING_CURRENCY", "--currency", "'XYZ'", "CNY, EUR, GBP"]),
    ("CRM_REPORTING_CURRENCY", "US'; drop", ["CRM_REPORTING_CURRENCY", "--currency", "USD"]),
    ("CRM_DEFAULT_CURRENCY", "$", ["CRM_DEFAULT_CURRENCY", "--default-currency", "'$'", "USD"]),
    ("CRM_HOLIDAY_COUNTRY", "XX", ["CRM_HOLIDAY_COUNTRY", "--holiday-country", "'XX'", "none"]),
    ("CRM_CURRENCY_LABEL", "a very long currency label", ["CRM_CURRENCY_LABEL", "--currency-label"]),
    ("CRM_MAX_QUARANTINE_SHARE", "1.5", ["CRM_MAX_QUARANTINE_SHARE", "--max-quarantine-share", "'1.5'"]),
    ("CRM_MAX_QUARANTINE_SHARE", "-0.1", ["CRM_MAX_QUARANTINE_SHARE", "--max-quarantine-share"]),
    ("CRM_MAX_QUARANTINE_SHARE", "five percent", ["CRM_MAX_QUARANTINE_SHARE", "'five percent'"]),
    ("CRM_MAX_QUARANTINE_SHARE", "nan", ["CRM_MAX_QUARANTINE_SHARE", "--max-quarantine-share"]),
    ("CRM_MAPPING", "no-such-mapping.yml", ["CRM_MAPPING", "--mapping", "no-such-mapping.yml", "does not exist"]),
    ("CRM_DUCKDB_MEMORY_LIMIT", "5GB'; drop", ["CRM_DUCKDB_MEMORY_LIMIT", "--memory-limit", "800MB"]),
    ("CRM_DUCKDB_MEMORY_LIMIT", "0GB", ["CRM_DUCKDB_MEMORY_LIMIT", "--memory-limit", "'0GB'"]),
    ("CRM_SCHEDULE_TIMEZONE", "Asia/Shangai", ["CRM_SCHEDULE_TIMEZONE", "'Asia/Shangai'", "Asia/Shanghai"]),
    ("CRM_SCHEDULE_CRON", "every day", ["CRM_SCHEDULE_CRON", "'every day'", "five fields"]),
])
def test_a_bad_value_is_a_one_line_error_naming_the_variable_and_the_flag(env, key, value, names):
    env.setenv(key, value)
    with pytest.raises(SettingsError) as error:
        Settings.load()
    message = str(error.value)
    assert "\n" not in message
    for name in names:
        assert name in message


def test_settings_made_in_code_are_validated_too(tmp_path):
    for fields in ({"reporting_currency": "EURO"}, {"max_quarantine_share": math.inf}, {"currency_label": "a\nb"},
                   {"holiday_country": "Narnia"}, {"mapping_file": tmp_path}):
        with pytest.raises(SettingsError):
            settings_at(tmp_path, **fields)
    assert settings_at(tmp_path, max_quarantine_share=0).max_quarantine_share == 0.0
    assert settings_at(tmp_path, max_quarantine_share="1").max_quarantine_share == 1.0


# ---------------------------------------------------------------------------------------------------- the CLI


def test_the_refresh_flags_make_the_settings_the_refresh_runs_with(env, tmp_path, capsys):
    mapping = tmp_path / "m.yml"
    mapping.write_text("{}\n")
    flags = ["refresh", "--exports", str(tmp_path / "missing"), "--currency", "usd", "--default-currency", "cny",
             "--holiday-country", "us", "--currency-label", "US$", "--max-quarantine-share", "0.1",
             "--mapping", str(mapping), "--memory-limit", "1.5 gib"]
    # The missing exports folder stops the command after the settings were made, before anything runs.
    assert main(flags) == 1
    assert str(tmp_path / "missing") in capsys.readouterr().err
    assert not settings_variables()  # the flags are not written into the environment
    read = refresh_settings(build_parser().parse_args(flags))
    assert (read.reporting_currency, read.default_currency, read.holiday_country, read.currency_label,
            read.max_quarantine_share, read.mapping_file) == ("USD", "CNY", "US", "US$", 0.1, mapping)
    assert read.duckdb_memory_limit == "1.5gib"


@pytest.mark.parametrize(("flag", "value"), [
    ("--currency", "XYZ"), ("--default-currency", "yen"), ("--holiday-country", "XX"),
    ("--currency-label", "x" * 40), ("--max-quarantine-share", "2"), ("--mapping", "nowhere.yml"),
    ("--memory-limit", "lots"),
])
def test_a_bad_flag_is_one_line_on_stderr_naming_it(env, tmp_path, capsys, flag, value):
    assert main(["refresh", "--exports", str(tmp_path), flag, value]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and flag in err and err.startswith("crm-warehouse: error: ")


# ------------------------------------------------------------------------------------------ resources and dbt


def test_the_resource_carries_the_resolved_settings_and_dbt_gets_the_currencies(env, tmp_path):
    from dagster_project.defs.assets.dbt import DEFAULT_VARS, build_vars
    from dagster_project.defs.definitions import build_definitions
    from dagster_project.defs.resources import Warehouse

    # ensure_manifest's `dbt parse` state serves a default refresh only when it parsed with the same vars
    assert build_vars(Warehouse(path="w", work_path="w.work", exports_dir=str(tmp_path))) == DEFAULT_VARS

    (tmp_path / "mapping.yml").write_text("{}\n")
    warehouse = build_definitions(settings_at(tmp_path, reporting_currency="USD", max_quarantine_share=0.1)
                                  ).resources["warehouse"]
    assert (warehouse.reporting_currency, warehouse.default_currency, warehouse.holiday_country,
            warehouse.currency_label, warehouse.max_quarantine_share, warehouse.mapping_file) == \
        ("USD", "USD", "US", "$", 0.1, str(tmp_path / "mapping.yml"))
    assert build_vars(warehouse) == {"reporting_currency": "USD", "default_currency": "USD"}
    assert build_definitions(settings_at(tmp_path, holiday_country="none")).resources["warehouse"].holiday_country \
        == "none"
    # Resource config is user input that dbt writes into SQL: only codes of the rate table pass.
    for bad in ("usd", "US'", "XYZ"):
        with pytest.raises(SettingsError):
            build_vars(warehouse.model_copy(update={"reporting_currency": bad}))


def test_the_memory_limit_bounds_the_refresh_s_own_duckdb_connections(env, tmp_path):
    from dagster_project.defs.definitions import build_definitions

    warehouse = build_definitions(settings_at(tmp_path, duckdb_memory_limit="300MB")).resources["warehouse"]
    with warehouse.connect() as con:  # DuckDB reports it in MiB
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "286.1 MiB"
    assert os.environ["CRM_DUCKDB_MEMORY_LIMIT"] == "300MB"  # and dbt's profile reads the same


# ------------------------------------------------------------------------------------- a refresh in dollars


@pytest.fixture(scope="module")
def in_dollars(tmp_path_factory):
    """An orders-only export with one order in dollars and one in yuan, refreshed (every asset, so the report is
    written) with USD as the reporting currency; the environment the refresh exported is restored afterwards."""
    saved = {key: os.environ[key] for key in settings_variables()}
    root = tmp_path_factory.mktemp("in_dollars")
    write_orders_only_export(root / "exports")
    orders = root / "exports" / "2026-06-30" / "orders.csv"
    orders.write_text(orders.read_text() + "C900,2025/6/15,$12\nC901,2025/6/16,¥100\n")
    warehouse = root / "warehouse" / "crm.duckdb"
    try:
        metadata = refresh(root / "exports", warehouse, settings_overrides={"reporting_currency": "USD"})
    finally:
        for key in settings_variables() - set(saved):
            del os.environ[key]
        os.environ.update(saved)
    return warehouse, metadata


@pytest.mark.slow
def test_a_refresh_in_dollars_converts_publishes_and_reports_dollars(in_dollars, tmp_path, capsys):
    from dagster_project.warehouse_files import report_path

    warehouse, metadata = in_dollars
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select reporting_currency, currency_label from meta.publication").fetchone() == \
            ("USD", "$")
        amounts = dict(con.execute("select currency, amount from marts.fct_orders where currency <> 'USD' "
                                   "or amount_original = 12").fetchall())
        unmarked = con.execute("select count(*) from marts.fct_orders where amount <> amount_original").fetchone()[0]
    assert amounts == {"USD": 12.00, "CNY": 13.89}  # $12 as it is; ¥100 at the rate table's 0.1389 USD per CNY
    assert unmarked == 1  # only the yuan order: unmarked amounts are in the default currency, here USD too
    assert metadata["analytics/sales_forecast"]["holiday_country"].value == "US"

    for lang in ("en", "zh"):  # written by the refresh
        page = report_path(warehouse, lang).read_text(encoding="utf-8")
        assert 'data-currency="USD"' in page and "¥" not in page, lang
        assert re.search(r'data-kpi="revenue"><div class="label">[^<]*</div><div class="value">\$[\d,.]+<', page)
    assert "Amounts in <b>USD</b> ($)" in report_path(warehouse, "en").read_text(encoding="utf-8")

    out = tmp_path / "report.html"  # and on demand, from the published warehouse
    assert main(["report", "--warehouse", str(warehouse), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "USD" in page and "¥" not in page
