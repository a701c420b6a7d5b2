"""Spark as the second engine: the same export refreshed on DuckDB and on a local Spark session (the Dagster job, dbt
on Spark through dbt-spark's session method, analytics written back as Spark tables) gives the same marts and
analytics tables, row for row.

The Spark side is read from Spark itself (its metastore tables, as Arrow), the DuckDB side from the DuckDB build's
working database. Rows are compared as multisets (EXCEPT ALL both ways) after rounding: money to the cent,
other figures (probabilities, rates, scores) to 1e-6, columns that say when or how long a run took left out; a row
left over on each side is the same row when it differs only by one unit of that rounding (a sum of doubles
straddling a rounding boundary: the campaign-lift panel is read in no fixed order, on either engine). Both
refreshes succeeding means dbt's data and unit tests and the blocking expectation suites passed on both; the suites'
recorded outcomes are compared too.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import SAMPLE_END, refresh
from scans import contents_written_since
from dagster_project.warehouse_files import spark_dir, work_database_path

pytestmark = pytest.mark.slow

# Small: Spark's cost here is per query, not per row, and the test must stay within minutes on two cores.
SPARK_SAMPLE_CUSTOMERS = 300
# Columns that record when or how long a computation ran, or with which run / library: they differ between any two
# refreshes, on one engine too. By table: marts.fct_opportunities.created_at is data and is compared.
VOLATILE = {"analytics.model_runs": {"run_id", "created_at", "fit_seconds", "library_versions", "model_version"}}
# When the Spark refresh started, by its warehouse: the files it wrote are those changed since.
SPARK_WRITTEN_FROM: dict[Path, float] = {}
# Money columns, compared to the cent (every other float, rates, lifts, ROI and shares among them, to 1e-6).
MONEY = re.compile(r"amount|revenue(?!_share)|clv|cost|price|spend|monetary|ticket|order_value|value_at_risk|"
                   r"^discount$")


@dataclass
class Builds:
    exports: Path
    duckdb: Path  # the DuckDB build's published warehouse
    spark: Path  # the Spark build's
    erased_id: str  # the CRM customer id both builds were asked to erase between their first and second refresh
    kept_id: str  # another customer of their own, not erased (the control)


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> Builds:
    """The same export refreshed on DuckDB and on Spark. On each engine, first the ingestion alone (on Spark the raw
    tables land as Parquet in the metastore), then an erasure request for one customer, then the whole refresh: it
    removes the person's rows already landed and builds every model without them. The comparison then covers the
    erasure too, and one Spark refresh of the models is enough."""
    from dagster_project.privacy import erasure
    from dagster_project.sample_data import generate

    root = tmp_path_factory.mktemp("spark_engine")
    exports = generate(root / "exports", customers=SPARK_SAMPLE_CUSTOMERS, days=730, seed=11,
                       end_date=SAMPLE_END).out_dir
    duck, spark = root / "duckdb" / "crm.duckdb", root / "spark" / "crm.duckdb"
    engines = {duck: {}, spark: {"engine": "spark"}}
    SPARK_WRITTEN_FROM[spark] = time.time()
    for warehouse, overrides in engines.items():
        refresh(exports, warehouse, groups=("ingest",), settings_overrides=overrides)
    erased_id, kept_id = _customers_of_their_own(work_database_path(spark))
    landed = _spark_rows_of(spark, erased_id)
    assert landed == {"raw.customers": 1, "raw.orders": landed["raw.orders"]} and landed["raw.orders"] > 0, landed
    for warehouse in engines:
        with duckdb.connect(str(work_database_path(warehouse))) as con:
            erasure.request(con, source_id=erased_id, reason="GDPR art. 17, ticket 4711")
    timings = {}
    for warehouse, overrides in engines.items():
        started = time.perf_counter()
        refresh(exports, warehouse, settings_overrides=overrides)
        timings[overrides.get("engine", "duckdb")] = time.perf_counter() - started
    print(f"refresh of {SPARK_SAMPLE_CUSTOMERS} customers after the ingestion: "
          + ", ".join(f"{engine} {seconds:.1f} s" for engine, seconds in timings.items()))
    return Builds(exports, duck, spark, erased_id, kept_id)


def _customers_of_their_own(work: Path) -> list[str]:
    """Two CRM customer ids, each delivered once, with orders, whose e-mail and phone no other record has: identity
    resolution merges no other id into them, so erasing such an id erases the whole person, and their customer_key is
    the keyed hash of the id itself."""
    with duckdb.connect(str(work), read_only=True) as con:
        ids = [customer_id for (customer_id,) in con.execute("""
            with customers as (select trim(customer_id) as id, lower(trim(email)) as email,
                                      regexp_replace(phone, '[^0-9]', '', 'g') as phone from raw.customers)
            select id from customers c
            where id in (select trim(customer_id) from raw.orders)
              and (select count(*) from customers o where o.id = c.id or o.email = c.email or o.phone = c.phone) = 1
            order by id limit 2""").fetchall()]
    assert len(ids) == 2, ids
    return ids


def _spark_rows_of(warehouse: Path, customer_id: str) -> dict[str, int]:
    """The rows of a CRM customer id, and of its customer_key, in each Spark table that holds people: raw,
    restricted, marts and the published marts BI tools read (the tables a refresh has built so far)."""
    from dagster_project.privacy.secret import keyed_hash, pseudonym_model
    from dagster_project.spark.session import spark_session

    key = keyed_hash(warehouse).of(customer_id)[:pseudonym_model().PSEUDONYM_HEX_CHARS]
    queries = {
        ("raw", "customers"): f"trim(customer_id) = '{customer_id}'",
        ("raw", "orders"): f"trim(customer_id) = '{customer_id}'",
        ("restricted", "customer_ids"): f"source_customer_id = '{customer_id}' or customer_key = '{key}'",
        ("restricted", "customer_pii"): f"customer_key = '{key}'",
        ("marts", "dim_customers"): f"customer_key = '{key}'",
        ("marts", "fct_orders"): f"customer_key = '{key}'",
        ("published_marts", "fct_orders"): f"customer_key = '{key}'",
    }
    session = spark_session(warehouse)
    return {f"{schema}.{table}": session.sql(f"select count(*) as n from {schema}.{table} where {condition}")
            .collect()[0]["n"] for (schema, table), condition in queries.items()
            if session.catalog.tableExists(table, schema)}


@pytest.fixture(scope="module")
def spark(builds):
    from dagster_project.spark.session import spark_session, stop_session

    yield spark_session(builds.spark)
    stop_session()


def _compared_columns(con: duckdb.DuckDBPyConnection, relation: str, table: str) -> list[tuple[str, int | str | None]]:
    """The columns of `relation` (the table `table`, "schema.name") to compare, as SQL expressions, each with the
    decimals a float is rounded to ("json" for a JSON document, None otherwise); volatile columns left out."""
    columns = []
    for name, kind in con.execute(f"select column_name, column_type from (describe {relation})").fetchall():
        if name in VOLATILE.get(table, ()):
            continue
        quoted = '"' + name + '"'
        if kind in ("DOUBLE", "FLOAT") or kind.startswith("DECIMAL"):
            digits = 2 if MONEY.search(name) else 6
            # + 0.0 turns -0.0 into 0.0; NaN compares equal to NaN in DuckDB.
            columns.append((f"round({quoted}, {digits}) + 0.0 as {quoted}", digits))
        else:
            columns.append((quoted, "json" if kind == "JSON" else None))
    return columns


def _differences(con: duckdb.DuckDBPyConnection, left: str, right: str, table: str) -> tuple[list, list]:
    """Rows only in left and rows only in right (EXCEPT ALL both ways, after rounding), less the pairs that differ
    only by one unit of the rounding: a sum of doubles depends on the order it adds them in (a parallel scan's, on
    either engine), so the same figure can fall either side of a rounding boundary. Such a pair must agree on every
    other column."""
    columns = _compared_columns(con, left, table)
    select = ", ".join(expression for expression, _ in columns)
    only_left = con.execute(f"select {select} from {left} except all select {select} from {right}").fetchall()
    only_right = con.execute(f"select {select} from {right} except all select {select} from {left}").fetchall()
    floats = {i: 1.000001 * 10 ** -digits for i, (_, digits) in enumerate(columns) if isinstance(digits, int)}
    # Model runs' metrics are JSON documents of unrounded doubles: those compare by value, to 1e-9 relative.
    documents = [i for i, (_, digits) in enumerate(columns) if digits == "json"]

    def key(row: tuple) -> tuple:
        return tuple(value for i, value in enumerate(row) if i not in floats and i not in documents)

    def same_document(a, b) -> bool:
        if a is None or b is None:
            return a is b
        return _close_values(json.loads(a), json.loads(b))

    def close(a: tuple, b: tuple) -> bool:
        return all(a[i] == b[i] or (a[i] is not None and b[i] is not None
                                    and (abs(a[i] - b[i]) <= unit or a[i] != a[i] and b[i] != b[i]))
                   for i, unit in floats.items()) and all(same_document(a[i], b[i]) for i in documents)

    waiting: dict[tuple, list[tuple]] = {}
    for row in only_right:
        waiting.setdefault(key(row), []).append(row)
    unpaired_left = []
    for row in only_left:
        candidates = waiting.get(key(row), [])
        match = next((i for i, other in enumerate(candidates) if close(row, other)), None)
        if match is None:
            unpaired_left.append(row)
        else:
            candidates.pop(match)
    return unpaired_left, [row for rows in waiting.values() for row in rows]


def _close_values(a, b) -> bool:
    """Two parsed JSON values equal but for doubles within 1e-9 of each other (relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close_values(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close_values(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)) or isinstance(b, float) and isinstance(a, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def test_every_mart_and_analytics_table_is_the_same_on_both_engines(builds, spark):
    compared = assert_same_tables(
        builds.duckdb, lambda schema: {t.name for t in spark.catalog.listTables(schema) if not t.isTemporary},
        lambda schema, table: spark.table(f"`{schema}`.`{table}`").toArrow())
    assert len(compared) > 30 and compared["marts.fct_orders"] > 1000, compared
    print(f"{len(compared)} tables equal on both engines: {compared}")


def assert_same_tables(duck: Path, spark_tables, read_spark) -> dict[str, int]:
    """Every marts and analytics table of the DuckDB build's working database has the same rows in Spark (the tables
    `spark_tables(schema)` names, read as Arrow by `read_spark(schema, table)`); returns the rows compared per table."""
    con = duckdb.connect()
    con.execute(f"attach '{work_database_path(duck)}' as duck (read_only)")
    compared = {}
    for schema in ("marts", "analytics"):
        duck_tables = {name for (name,) in con.execute(
            "select table_name from duckdb_tables() where database_name = 'duck' and schema_name = ?",
            [schema]).fetchall()}
        assert set(spark_tables(schema)) == duck_tables, schema
        for table in sorted(duck_tables):
            con.register("spark_table", read_spark(schema, table))
            con.execute(f'create or replace table "{schema}__{table}" as select * from spark_table')
            con.unregister("spark_table")
            left, right = f'duck."{schema}"."{table}"', f'"{schema}__{table}"'
            counts = con.execute(f"select (select count(*) from {left}), (select count(*) from {right})").fetchone()
            assert counts[0] == counts[1], f"{schema}.{table}: {counts[0]} rows on DuckDB, {counts[1]} on Spark"
            only_duckdb, only_spark = _differences(con, left, right, f"{schema}.{table}")
            assert (len(only_duckdb), len(only_spark)) == (0, 0), (
                f"{schema}.{table}: {len(only_duckdb)} rows only on DuckDB, {len(only_spark)} only on Spark, "
                f"e.g. {only_duckdb[:2]} on DuckDB, {only_spark[:2]} on Spark")
            compared[f"{schema}.{table}"] = counts[0]
    return compared


def test_the_expectation_suites_pass_alike_on_both_engines(builds):
    outcomes = []
    for warehouse in (builds.duckdb, builds.spark):
        with duckdb.connect(str(work_database_path(warehouse)), read_only=True) as con:
            outcomes.append(sorted(con.execute(
                "select suite, asset_key, expectation_type, column_name, success, unexpected_count "
                "from quality.quality_results").fetchall(), key=str))
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0]) > 50


def test_spark_publishes_metastore_tables_over_the_same_parquet_layout(builds, spark):
    duck, spark_warehouse = builds.duckdb, builds.spark
    exports = {p.name for p in (duck.parent / "parquet").iterdir()}
    assert {p.name for p in (spark_warehouse.parent / "parquet").iterdir()} == exports
    assert "marts.fct_orders.parquet" in exports and all(name.endswith(".parquet") for name in exports)
    orders = spark.sql("select count(*) as n from published_marts.fct_orders").collect()[0]["n"]
    assert orders == spark.sql("select count(*) as n from marts.fct_orders").collect()[0]["n"] > 0
    assert spark.catalog.tableExists("customer_clv", "published_analytics")


def test_the_pseudonym_secret_stays_out_of_compiled_sql_logs_and_the_spark_warehouse(builds):
    from dagster_project.settings import DBT_PROJECT_DIR
    from dagster_project.spark.pseudonyms import KEYS_SCHEMA, KEYS_TABLE, pseudonym_keys

    spark_warehouse = builds.spark
    secrets = secret_forms(os.environ["CRM_PSEUDONYM_KEY"], pseudonym_keys(spark_warehouse))
    # The keys were data of the build (the model joins restricted._pseudonym_keys), and their files are gone.
    assert not (spark_dir(spark_warehouse) / KEYS_SCHEMA / KEYS_TABLE).exists()
    # No file the Spark refresh wrote holds the secret or a key: the metastore, the tables, and what dbt keeps (dbt's
    # per-build folder of compiled SQL and dbt.log is removed after a successful build). Files another test worker's
    # dbt removes meanwhile are skipped.
    written = contents_written_since(DBT_PROJECT_DIR / "target", DBT_PROJECT_DIR / "logs", spark_dir(spark_warehouse),
                                     since=SPARK_WRITTEN_FROM[spark_warehouse])
    assert any(p.suffix == ".parquet" for p in written) and any("metastore" in p.parts for p in written)
    for path, content in written.items():
        assert not any(secret in content for secret in secrets), path
    # Nor are the keys left in the refresh's environment for later child processes.
    assert not any(secret in "\0".join(f"{k}={v}" for k, v in os.environ.items()).encode() for secret in secrets[2:])


def secret_forms(secret: str, keys: tuple[bytes, bytes]) -> list[bytes]:
    """The pseudonym secret and each HMAC key, as bytes and as hex text (upper and lower case)."""
    return [secret.encode(), *keys, *(key.hex().encode() for key in keys), *(key.hex().upper().encode() for key in keys)]


def test_spark_customer_keys_are_the_duckdb_keys(builds, spark):
    with duckdb.connect(str(work_database_path(builds.duckdb)), read_only=True) as con:
        expected = set(con.execute("select source_customer_id, customer_key from restricted.customer_ids").fetchall())
    found = {(r[0], r[1]) for r in spark.sql("select source_customer_id, customer_key from restricted.customer_ids")
             .collect()}
    assert found == expected and len(found) >= SPARK_SAMPLE_CUSTOMERS


def test_the_engine_setting_comes_from_the_flag_then_the_environment_then_the_default(tmp_path):
    from dagster_project.settings import Settings, SettingsError

    assert Settings.load({"exports_dir": tmp_path}, environ={}).engine == "duckdb"
    assert Settings.load({"exports_dir": tmp_path}, environ={"CRM_ENGINE": " Spark "}).engine == "spark"
    flag_wins = Settings.load({"exports_dir": tmp_path, "engine": "duckdb"}, environ={"CRM_ENGINE": "spark"})
    assert flag_wins.engine == "duckdb"
    with pytest.raises(SettingsError, match="CRM_ENGINE / --engine: 'flink' is not an engine"):
        Settings.load({"exports_dir": tmp_path}, environ={"CRM_ENGINE": "flink"})


def test_dbt_and_the_refresh_configure_the_same_spark(tmp_path, monkeypatch):
    """dbt's `spark` target reads its whole Spark configuration from the variable the refresh sets."""
    import json

    import yaml

    from dagster_project.settings import DBT_PROJECT_DIR
    from dagster_project.spark.catalog import server_session_settings
    from dagster_project.spark.session import DBT_CONF_VARIABLE, SESSION_SQL_CONF, dbt_environment, spark_conf

    monkeypatch.setenv("CRM_SPARK_CONF", '{"spark.sql.warehouse.dir": "s3a://bucket/crm/tables"}')
    warehouse = tmp_path / "crm.duckdb"
    (variable, value), = dbt_environment(warehouse).items()
    assert variable == DBT_CONF_VARIABLE and json.loads(value) == spark_conf(warehouse)
    assert spark_conf(warehouse)["spark.sql.warehouse.dir"] == "s3a://bucket/crm/tables"
    outputs = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["crm"]["outputs"]
    assert outputs["spark"]["method"] == "session" and DBT_CONF_VARIABLE in outputs["spark"]["server_side_parameters"]
    # A server's session opens with the same SQL settings.
    for target in ("spark_thrift", "databricks"):
        assert outputs[target]["server_side_parameters"] == server_session_settings(SESSION_SQL_CONF), target
    # The JVM and SQL settings for a local session's short-lived JVMs reach neither a cluster's driver nor its queries.
    local, cluster = spark_conf(warehouse, {}), spark_conf(warehouse, {"CRM_SPARK_MASTER": "spark://head:7077"})
    assert "-XX:TieredStopAtLevel=1" in local["spark.driver.extraJavaOptions"]
    assert local["spark.sql.adaptive.enabled"] == "false"
    assert cluster["spark.driver.extraJavaOptions"] == f"-Dderby.system.home={spark_dir(warehouse)}"
    assert "spark.sql.adaptive.enabled" not in cluster


def test_nothing_new_on_spark_runs_nothing_and_another_engine_is_a_change(builds):
    """A refresh of the Spark build with no new drop skips every step after ingestion (dbt does not run, the
    publication stays); the same warehouse asked for on DuckDB is a change, so it would be rebuilt in full."""
    from dataclasses import replace

    from dagster import DagsterEventType, DagsterInstance

    from dagster_project import refresh_state
    from dagster_project.defs.refresh import run_refresh
    from dagster_project.settings import Settings

    def published_run() -> str:
        with duckdb.connect(str(builds.spark), read_only=True) as con:
            return con.execute("select run_id from meta.publication").fetchone()[0]

    settings = Settings(exports_dir=builds.exports, warehouse=builds.spark, as_of=None, schedule_timezone="UTC",
                        engine="spark")
    run = published_run()
    assert refresh_state.nothing_changed(settings).run_id == run
    assert refresh_state.nothing_changed(replace(settings, engine="duckdb")) is None
    with DagsterInstance.ephemeral() as instance:
        result = run_refresh(settings, instance)
        skipped = {event.step_key for event in instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_SKIPPED)}
    assert not result.published and {"crm_dbt_models", "publish__warehouse"} <= skipped
    assert published_run() == run


def test_an_erasure_on_spark_removes_the_landed_person_from_every_spark_table(builds, spark):
    """The person asked to be erased after their rows had landed in Spark (the fixture checks they had) is in no
    Spark table the refresh left: their raw rows went at ingestion, and with them the raw Parquet Spark reads; the
    models and the published tables were built without them. Another customer of their own is in every one of them
    (the control: their key is the keyed hash of their id, as the erased one's would be)."""
    from dagster_project.privacy import erasure

    erased = _spark_rows_of(builds.spark, builds.erased_id)
    kept = _spark_rows_of(builds.spark, builds.kept_id)
    assert erased.keys() == kept.keys() and len(kept) == 7, kept
    assert erased == dict.fromkeys(kept, 0), erased
    assert all(rows > 0 for rows in kept.values()), kept
    with duckdb.connect(str(work_database_path(builds.spark)), read_only=True) as con:
        assert not erasure.awaiting_publication(con)


def test_a_server_target_without_storage_stops_with_what_to_set(tmp_path):
    from dagster_project.spark.catalog import CatalogError, ServerCatalog

    with pytest.raises(CatalogError, match="needs CRM_SPARK_STORAGE: a folder or object-store URI"):
        ServerCatalog(tmp_path / "crm.duckdb", "spark_thrift", {}, environ={})


def test_the_spark_storage_names_folders_as_spark_does_and_reads_a_table_without_files(tmp_path):
    """Spark takes a location as written (it does not decode %20) and writes `file:/path`; a root may be set either
    way, or as a plain folder. A table whose folder is empty or missing (an object store has no empty folders) reads
    as no rows of its described schema."""
    import pyarrow as pa

    from dagster_project.spark.storage import Storage, read_batches, storage_root

    warehouse = tmp_path / "数据 folder" / "crm.duckdb"
    assert storage_root(warehouse, {}) == f"file:{warehouse.parent / 'spark'}"
    for configured in ("file:/mnt/lake", "file:///mnt/lake/", "/mnt/lake"):
        assert storage_root(warehouse, {"CRM_SPARK_STORAGE": configured}) == "file:/mnt/lake", configured
    assert storage_root(warehouse, {"CRM_SPARK_STORAGE": "s3a://bucket/crm/"}) == "s3a://bucket/crm"
    storage = Storage(storage_root(warehouse, {}))
    rows = pa.table({"customer_key": ["a", "b"], "revenue": [1.5, 2.0]})
    storage.write_parquet("analytics/t/v1/part-0.parquet", rows.to_reader())
    assert (warehouse.parent / "spark" / "analytics" / "t" / "v1" / "part-0.parquet").is_file()
    assert read_batches(storage.uri("analytics", "t", "v1"), ["revenue"], lambda: None).read_all() == rows.select(
        ["revenue"])
    schema = pa.schema([("customer_key", pa.string())])
    (tmp_path / "empty").mkdir()
    for location in (f"file:{tmp_path / 'empty'}", f"file:{tmp_path / 'missing'}"):
        assert read_batches(location, ["customer_key"], lambda: schema).read_all() == schema.empty_table()
    assert storage.folders("analytics/t") == ["v1"] and storage.folders("analytics/none") == []
