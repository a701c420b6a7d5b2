"""The personal-data boundary: BI-facing tables and Parquet exports carry pseudonymous keys and coarse attributes
only; no personal value reaches a log, an error message, Dagster's event log, a quarantine reason, the quality page or
the report, even from an export whose personal columns are broken; the pseudonym is a keyed hash that stays put across
refreshes and follows the secret; marketing lists respect consent while totals still count everyone."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import stat
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance

from conftest import Refreshed, copy_of
from scans import (
    contents_written_since, files_under, found_in_bytes, found_in_database, found_in_exports, found_in_files,
)
from dagster_project.defs.refresh import run_refresh
from dagster_project.settings import DBT_PROJECT_DIR, Settings

pytestmark = pytest.mark.slow

BI_SCHEMAS = ("marts", "analytics", "quality")
# Rebuilds the pseudonyms and the restricted tables on an ingested warehouse without paying for the marts.
PSEUDONYM_GROUPS = ("intermediate", "restricted")

_spec = importlib.util.spec_from_file_location(
    "pseudonyms", DBT_PROJECT_DIR / "models" / "intermediate" / "int_customer_keys_pseudonymised.py")
pseudonyms = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pseudonyms)


def expected_key(secret: str, golden_customer_id: str) -> str:
    """The pseudonym by its definition, with the standard library's HMAC."""
    return hmac.new(secret.encode(), golden_customer_id.encode(), hashlib.sha256).hexdigest()[:16]


def key_map(warehouse) -> dict[str, str]:
    return dict(warehouse.query("select golden_customer_id, customer_key from restricted.customer_pii"))


def personal_values(refreshed) -> pd.DataFrame:
    """Every customer name, e-mail, phone, birth date and CRM id the warehouse knows, raw and as standardised.
    Names that are also a sales rep's are left out: staff names belong in the BI tables and cannot be told apart."""
    return pd.DataFrame(refreshed.query("""
        select distinct kind, value from (
            select kind, value from (
                unpivot (select name, email, phone, birth_date, customer_id from raw.customers)
                on name, email, phone, birth_date, customer_id into name kind value value)
            union all
            select kind, value from (
                unpivot (select customer_name as name, email, phone, cast(birth_date as varchar) as birth_date
                         from restricted.customer_pii)
                on name, email, phone, birth_date into name kind value value)
            union all
            select 'customer_id', source_customer_id from restricted.customer_ids
        )
        where nullif(trim(value), '') is not null
          and not (kind = 'name' and value in (select rep_name from marts.dim_sales_reps where rep_name is not null))
    """), columns=["kind", "value"])


def leaks(con: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]]) -> dict:
    """Per column of `relation`: how many distinct values of the view `personal` (registered on `con`) it holds, by
    kind, and how many e-mail-like values of any origin."""
    found = {}
    for column, data_type in columns:
        value = f'cast("{column}" as varchar)'
        if data_type == "DATE":  # a date column can only leak birth dates
            hits = con.execute(f"""
                select 'birth_date', count(distinct v) from (select distinct {value} as v from {relation}) as c
                where v in (select value from personal where kind = 'birth_date')""").fetchall()
        elif data_type == "VARCHAR":
            hits = con.execute(f"""
                with c as (select distinct {value} as v from {relation})
                select p.kind, count(*) from c join personal as p on c.v = p.value group by p.kind
                union all
                select 'e-mail-like', count(*) from c where regexp_matches(v, '[^@\\s]+@[^@\\s]+\\.[A-Za-z]{{2,}}')
            """).fetchall()
        else:
            continue
        hits = {kind: n for kind, n in hits if n}
        if hits:
            found[column] = hits
    return found


def test_bi_facing_tables_and_parquet_exports_hold_no_personal_data(refreshed):
    personal = personal_values(refreshed)
    with refreshed.connect() as con:  # the detector finds every kind of personal value where it is meant to be
        con.register("personal", personal)
        pii_columns = con.execute("select column_name, column_type from (describe restricted.customer_pii)").fetchall()
        detected = leaks(con, "restricted.customer_pii", pii_columns)
    assert {kind for hits in detected.values() for kind in hits} == {
        "name", "email", "e-mail-like", "phone", "birth_date", "customer_id"}
    found = {}
    with refreshed.connect_published() as con:
        con.register("personal", personal)
        schemas = {schema for (schema,) in con.execute("select distinct schema_name from duckdb_schemas()").fetchall()}
        assert not schemas & {"raw", "staging", "intermediate", "audit", "restricted"}
        tables = con.execute("""
            select table_schema, table_name, list(row(column_name, data_type) order by ordinal_position)
            from information_schema.columns where list_contains(?, table_schema) group by all""",
            [list(BI_SCHEMAS)]).fetchall()
        assert {"dim_customers", "fct_orders", "customer_360", "churn_watchlist"} <= {t for _, t, _ in tables}
        for schema, table, columns in tables:
            found |= {f"{schema}.{table}.{c}": hits
                      for c, hits in leaks(con, f'"{schema}"."{table}"', columns).items()}
        parquets = sorted((refreshed.warehouse.parent / "parquet").glob("*.parquet"))
        assert {"marts.dim_customers.parquet", "analytics.churn_watchlist.parquet"} <= {p.name for p in parquets}
        for parquet in parquets:
            relation = f"read_parquet('{parquet}')"
            columns = con.execute(f"select column_name, column_type from (describe from {relation})").fetchall()
            found |= {f"{parquet.name}.{c}": hits for c, hits in leaks(con, relation, columns).items()}
    assert found == {}


def test_marts_carry_the_keyed_pseudonym_of_the_golden_customer(refreshed):
    keys = key_map(refreshed)
    secret = os.environ[pseudonyms.SECRET_ENV]
    assert keys and all(key == expected_key(secret, golden) for golden, key in keys.items())
    for table in ("dim_customers", "fct_orders", "fct_interactions", "fct_tickets", "fct_surveys", "customer_360"):
        mart_keys = {k for (k,) in refreshed.query(f"select distinct customer_key from marts.{table}")}
        assert mart_keys and mart_keys <= set(keys.values()), table


def test_without_a_configured_secret_one_is_generated_once_and_every_key_follows_it(refreshed, tmp_path, monkeypatch):
    """The keys follow the secret. (That they stay put across refreshes under one secret is
    test_pipeline.py::test_a_second_refresh_on_the_same_drops_changes_nothing: every mart, keys included, is
    byte-identical; a generated secret is reused: test_a_missing_short_or_damaged_secret_is_handled.)"""
    copy = copy_of(refreshed, tmp_path)
    under_configured_secret = key_map(copy)
    monkeypatch.delenv(pseudonyms.SECRET_ENV)
    started = time.time()
    progress: list[str] = []
    settings = Settings(exports_dir=copy.exports, warehouse=copy.warehouse, as_of=None, schedule_timezone="UTC")
    with DagsterInstance.ephemeral() as instance:
        run_refresh(settings, instance, progress=progress.append, groups=PSEUDONYM_GROUPS)

    # One is generated beside the warehouse, readable by its owner only, and the refresh log says so.
    key_file = copy.warehouse.parent / pseudonyms.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    generated = key_file.read_text().strip()
    assert any(f"{pseudonyms.SECRET_ENV} is not set" in line for line in progress)
    keys = key_map(copy)
    assert keys == {golden: expected_key(generated, golden) for golden in under_configured_secret}
    assert not set(keys.values()) & set(under_configured_secret.values())

    # The secret is in none of the files the refresh wrote: dbt's compiled code, logs and artifacts, the warehouse.
    written = contents_written_since(DBT_PROJECT_DIR / "target", DBT_PROJECT_DIR / "logs", since=started)
    # (A successful run's compiled code and log are removed when the build ends; its parse state stays.)
    assert "partial_parse.msgpack" in {p.name for p in written}
    for path, content in [*written.items(), (copy.work, copy.work.read_bytes())]:
        assert generated.encode() not in content, path


def test_marketing_lists_leave_out_customers_without_consent_but_totals_count_them(refreshed):
    """The watchlist is exactly the consenting at-risk valuable customers. (This sample's few at-risk valuable
    customers all consent; the simulated warehouse of tests/test_churn.py has some who do not:
    test_watchlist_keeps_only_consenting_valuable_high_risk_customers.)"""
    scored = pd.DataFrame(refreshed.query("""
        select s.customer_key, s.at_risk_high_value, d.marketing_consent, p.marketing_consent as consent_on_record
        from analytics.churn_scores as s
        join marts.dim_customers as d using (customer_key)
        join restricted.customer_pii as p using (customer_key)
    """), columns=["customer_key", "at_risk_high_value", "consent", "consent_on_record"])
    assert (scored.consent == scored.consent_on_record).all()
    watchlist = {k for (k,) in refreshed.query("select customer_key from analytics.churn_watchlist")}
    assert watchlist and watchlist == set(scored.customer_key[scored.at_risk_high_value & scored.consent])

    # Totals: every paying customer is scored and counted in the spend deciles, consent or not.
    buyers = refreshed.scalar("select count(distinct customer_key) from marts.fct_orders where is_paid")
    assert len(scored) == buyers and (~scored.consent).any()
    assert refreshed.scalar("select sum(customers) from analytics.spend_deciles") == buyers


def test_a_missing_short_or_damaged_secret_is_handled(tmp_path):
    with pytest.raises(ValueError, match="at least 32 characters"):
        pseudonyms.resolve_secret({pseudonyms.SECRET_ENV: "too-short"}, tmp_path)
    configured, warning = pseudonyms.resolve_secret({pseudonyms.SECRET_ENV: "x" * 40}, tmp_path)
    assert configured == b"x" * 40 and warning is None and not (tmp_path / pseudonyms.KEY_FILE).exists()

    generated, warning = pseudonyms.resolve_secret({}, tmp_path)
    assert warning and pseudonyms.resolve_secret({}, tmp_path)[0] == generated and len(generated) == 64
    (tmp_path / pseudonyms.KEY_FILE).write_text("\n")
    with pytest.raises(ValueError, match="does not hold a usable secret"):
        pseudonyms.resolve_secret({}, tmp_path)


@pytest.mark.parametrize("secret", ["s" * 32, "a long passphrase " * 8])  # shorter and longer than SHA-256's block
def test_the_sql_hmac_equals_the_standard_library(secret):
    inner, outer = pseudonyms.hmac_keys(secret.encode())
    con = duckdb.connect()
    golden = con.sql("select * from (values ('C00000001'), ('张三-7'), ('')) as t(customer_key)")  # noqa: F841
    rows = con.sql(pseudonyms.PSEUDONYMS_SQL, params={"inner": inner, "outer": outer}).fetchall()
    assert sorted(rows) == sorted((g, expected_key(secret, g)) for g in ("C00000001", "张三-7", ""))


# ------------------------------------------------------------------------------------------------------- logs


BROKEN_DROP = "2026-11-02"
# A drop whose personal columns are broken every way an export breaks them: e-mails that are not addresses, phones
# with letters, names, e-mails and phones each in another's column, a date of birth no calendar has, a record with no
# id, one dated after its drop, a line cut off inside a quote, and a name where an order names its customer.
BROKEN_CUSTOMERS = """customer_id,name,email,phone,birth_date,city,updated_at
B0001,Brokenname Alpha,brokenname.alpha at example,138-BAD-PHONE-01,31/31/1990,Shanghai,2026-11-01
B0002,beta.swapped@example.com,Brokenname Beta,139 0000 1111,1990-02-02,Beijing,2026-11-01
B0003,+86 137 2222 3333,not-an-email-gamma,gamma.phone@example.com,1990-03-03,Shenzhen,2026-11-01
B0004,Brokenname Delta,delta.late@example.com,13344445555,1990-04-04,Hangzhou,2027-01-01
,Brokenname Epsilon,epsilon.noid@example.com,13455556666,1990-05-05,Suzhou,2026-11-01
B0006,"Brokenname Zeta,zeta.cut@example.com,13566667777,1990-06-06,Wuhan,2026-11-01
"""
BROKEN_ORDERS = """order_id,customer_id,order_date,status,amount,currency
BO-1,B0001,2026-11-01,paid,10,CNY
BO-2,B0002,2026-11-01,paid,20,CNY
BO-3,B0003,2026-11-01,paid,30,CNY
BO-4,Brokenname Orderer,2026-11-01,paid,40,CNY
"""
BROKEN_VALUES = {
    "Brokenname Alpha", "brokenname.alpha at example", "138-BAD-PHONE-01", "31/31/1990", "beta.swapped@example.com",
    "Brokenname Beta", "139 0000 1111", "+86 137 2222 3333", "not-an-email-gamma", "gamma.phone@example.com",
    "Brokenname Delta", "delta.late@example.com", "13344445555", "Brokenname Epsilon", "epsilon.noid@example.com",
    "13455556666", "Brokenname Zeta", "zeta.cut@example.com", "13566667777", "Brokenname Orderer", "B0001", "B0002",
    "B0003", "B0004", "B0006",
}


def scanned_values(refreshed: Refreshed) -> set[str]:
    """The broken values, and every e-mail, phone, CRM id and name (of 3 characters or more: shorter names are
    everyday words too) the warehouse knows; not birth dates, which are dates like any other."""
    known = personal_values(refreshed)
    known = known[(known.kind != "birth_date") & ((known.kind != "name") | (known.value.str.len() >= 3))]
    return BROKEN_VALUES | set(known.value.str.strip())


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A small export with the broken drop, refreshed twice by the CLI with its own Dagster instance: once stopped
    by the quarantine limit (the error names the reasons, with examples), once with the limit lifted."""
    from dagster_project.sample_data import generate

    root = tmp_path_factory.mktemp("broken_personal")
    started = time.time()
    summary = generate(root / "exports", customers=150, days=300, seed=13, end_date=date(2026, 10, 31))
    drop = summary.out_dir / BROKEN_DROP
    drop.mkdir()
    (drop / "customers.csv").write_text(BROKEN_CUSTOMERS)
    (drop / "orders.csv").write_text(BROKEN_ORDERS)
    warehouse = root / "warehouse" / "crm.duckdb"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k == "CRM_PSEUDONYM_KEY"}
    environment |= {"CRM_EXPORTS_DIR": str(summary.out_dir), "CRM_WAREHOUSE": str(warehouse),
                    "DAGSTER_HOME": str(root / "dagster")}
    cli = str(Path(sys.executable).parent / "crm-warehouse")
    stopped = subprocess.run([cli, "refresh"], env=environment, capture_output=True, text=True, timeout=1800)
    done = subprocess.run([cli, "refresh", "--max-quarantine-share", "1"], env=environment, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return Refreshed(summary.out_dir, summary.truth_dir, warehouse), root / "dagster", started, stopped, done


def test_no_personal_value_of_a_broken_export_reaches_a_log_or_anything_published(broken):
    refreshed, dagster_home, started, stopped, done = broken
    values = scanned_values(refreshed)
    # The refresh stopped at the quarantine limit, naming the file and its reasons.
    assert stopped.returncode == 1 and f"{BROKEN_DROP}/customers.csv" in stopped.stderr, stopped.stderr[-2000:]
    # The positive controls: the scans find every broken value in the export's files and in the working database.
    assert set().union(*found_in_files(files_under(refreshed.exports), BROKEN_VALUES).values()) == BROKEN_VALUES
    in_work = set().union(*found_in_database(refreshed.work, values).values())
    assert BROKEN_VALUES <= in_work and len(values - in_work) <= len(values) * 0.01
    assert found_in_bytes(b"".join(p.read_bytes() for p in files_under(dagster_home)), [f"{BROKEN_DROP}/orders.csv"])

    folder = refreshed.warehouse.parent
    dbt_written = files_under(DBT_PROJECT_DIR / "target", DBT_PROJECT_DIR / "logs", since=started)
    found = {
        "refresh output": {name: found_in_bytes(text.encode(), values) for name, text in (
            ("stopped stdout", stopped.stdout), ("stopped stderr", stopped.stderr), ("stdout", done.stdout),
            ("stderr", done.stderr))},
        "Dagster storage: event log, run storage, compute logs": found_in_files(files_under(dagster_home), values),
        "dbt target and logs": found_in_files(dbt_written, values),
        "published warehouse, its quarantine reasons and quality results": found_in_database(refreshed.warehouse,
                                                                                           values),
        "Parquet and CSV exports": found_in_exports(folder, values),
        "report, quality page and every other published file": found_in_files(
            [p for p in files_under(folder) if p != refreshed.work and not p.name.startswith(".pseudonym")], values),
    }
    assert {where: {k: v for k, v in hits.items() if v} for where, hits in found.items()} == {where: {} for where in found}
    # The quarantine says where and why for each broken row.
    with refreshed.connect_published() as con:
        reasons = dict(con.execute("select reason, count(*) from marts.fct_quarantined_rows "
                                   "where drop_date = ? group by reason", [date.fromisoformat(BROKEN_DROP)]).fetchall())
    assert {"missing customer_id", "updated_at after its export drop", "unterminated or stray quote"} <= set(reasons)
