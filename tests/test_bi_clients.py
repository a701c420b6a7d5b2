"""BI clients: the published warehouse read the ways docs/bi.md promises, with the client versions it names.

BI tools bundle their own DuckDB (JDBC/ODBC drivers, Node and Python clients), many of them 1.x, which cannot open a
file in DuckDB 2.0's own storage format; the refresh therefore publishes in the format of an older release
(`CRM_STORAGE_VERSION` / `--storage-version`, default v1.0.0). Here real DuckDB 1.x clients, each in its own
virtualenv, read every published table while a refresh replaces the file, and read exactly what DuckDB 2.0 reads;
SQLAlchemy with duckdb-engine lists and reads the tables; pyarrow and Polars read every Parquet export.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import copy_of, settings_at
from dagster_project.cli import build_parser, main, refresh_settings
from dagster_project.publish.publication import publish
from dagster_project.settings import DEFAULT_STORAGE_VERSION, Settings, SettingsError
from dagster_project.sql import qualified

BIN = Path(sys.executable).parent
CLI = str(BIN / "crm-warehouse")
SCHEMAS = ("marts", "analytics", "quality", "meta")
# The release the default storage format promises to serve: "v1.0.0" -> DuckDB 1.0.0.
OLDEST_CLIENT = DEFAULT_STORAGE_VERSION.removeprefix("v")

# The DuckDB 1.x clients BI tools bundle: the newest 1.x the registry serves (its Python client, its command-line
# client, and SQLAlchemy with duckdb-engine as Superset-style tools use them) and the oldest release the default storage
# format claims. DuckDB's 1.x Python client needs pytz to return TIMESTAMP WITH TIME ZONE values
# (meta.publication.published_at). SQLAlchemy 2.0.45 and newer cannot reflect columns through duckdb-engine 0.17.0
# (they query pg_catalog.pg_collation, which DuckDB lacks; docs/bi.md), so the Superset-style client has 2.0.44.
CLIENTS = {
    "newest_1x": ["duckdb<2", "duckdb-cli<2", "pytz", "duckdb-engine==0.17.0", "sqlalchemy==2.0.44"],
    "oldest": [f"duckdb=={OLDEST_CLIENT}", "pytz"],
}


@dataclass
class Client:
    name: str
    python: Path
    version: str  # of its duckdb package

    @property
    def bin(self) -> Path:
        return self.python.parent


def _install_failure(name: str, requirements: list[str], what: str) -> None:
    pytest.fail(f"cannot install the DuckDB 1.x client {name} ({' '.join(requirements)}): {what}", pytrace=False)


@pytest.fixture(scope="session")
def duckdb_1x_clients(tmp_path_factory) -> dict[str, Client]:
    """One virtualenv per client under the pytest temp root, installed from the package registry once per session.
    No client, no test: a failed install fails the tests that need it, with pip's reason."""
    root = tmp_path_factory.mktemp("duckdb_1x_clients")
    clients = {}
    for name, requirements in CLIENTS.items():
        venv = root / name
        python = venv / "bin" / "python"
        for step in ([sys.executable, "-m", "venv", str(venv)],
                     [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]):
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=900)
            except subprocess.TimeoutExpired:
                _install_failure(name, requirements, f"`{' '.join(step[:4])} ...` took more than 900 s")
            if done.returncode != 0:
                _install_failure(name, requirements, f"`{' '.join(step[:4])} ...` exited {done.returncode}: "
                                                     f"{' '.join((done.stderr or done.stdout).split())[-1500:]}")
        version = subprocess.run([str(python), "-c", "import duckdb; print(duckdb.__version__)"],
                                 capture_output=True, text=True, timeout=120).stdout.strip()
        if not version.startswith("1."):
            _install_failure(name, requirements, f"it installed DuckDB {version or 'nothing importable'}, not 1.x")
        clients[name] = Client(name, python, version)
    assert clients["oldest"].version == OLDEST_CLIENT
    return clients


def published_tables(warehouse: Path) -> dict[str, int]:
    """Rows of every table of the published file ("marts.fct_orders": n), as the project's DuckDB 2.0 reads it."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute("select schema_name, table_name from duckdb_tables() order by all").fetchall()
        return {f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables}


# A BI tool as another process with its own DuckDB 1.x: it opens the published file read-only again and again and,
# per connection, reads every table (count and the first rows) and checks that it holds exactly the expected tables and
# that their rows add up to what the publication it opened says. One more read after the stop signal.
READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import duckdb
    warehouse, stop, out, expected = sys.argv[1], Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    reads, errors, runs, formats = 0, [], [], set()
    while True:
        last = stop.exists()
        try:
            con = duckdb.connect(warehouse, read_only=True)
            try:
                run_id, total, storage = con.execute(
                    "select run_id, total_rows, storage_version from meta.publication").fetchone()
                tables = con.execute("select schema_name, table_name from duckdb_tables() order by all").fetchall()
                counted = 0
                for schema, table in tables:
                    rows = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
                    first = con.execute(f'select * from "{schema}"."{table}" limit 5').fetchall()
                    if len(first) != min(rows, 5):
                        errors.append(f"run {run_id}: {schema}.{table} has {rows} rows but gave {len(first)}")
                    counted += rows if schema != "meta" else 0
            finally:
                con.close()
            if [f"{s}.{t}" for s, t in tables] != expected:
                errors.append(f"run {run_id}: tables {[f'{s}.{t}' for s, t in tables]}")
            if counted != total:
                errors.append(f"run {run_id}: {counted} rows in its tables, {total} published")
            if not runs or runs[-1] != run_id:
                runs.append(run_id)
            formats.add(storage)
            reads += 1
        except Exception as error:
            errors.append(repr(error))
        if last:
            break
        time.sleep(0.2)
    Path(out).write_text(json.dumps({"version": duckdb.__version__, "reads": reads, "errors": errors[:20],
                                     "runs": runs, "storage_versions": sorted(formats)}))
""")

# Every value of every table, hashed per table: run by a 1.x client and by the project's DuckDB 2.0 on the same file, the
# two must agree (a format an old release misreads shows up here, not as an error). TIMESTAMP WITH TIME ZONE is
# compared as epoch microseconds, so the clients' time zone handling does not matter.
FINGERPRINT = textwrap.dedent("""
    import datetime, hashlib, json, sys
    import duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    result = {}
    for schema, table in con.execute("select schema_name, table_name from duckdb_tables() order by all").fetchall():
        columns = con.execute("select column_name, data_type from duckdb_columns() where schema_name = ? "
                              "and table_name = ? order by column_index", [schema, table]).fetchall()
        select = ", ".join(f'epoch_us("{c}")' if kind.startswith("TIMESTAMP WITH") else f'"{c}"' for c, kind in columns)
        digest, rows = hashlib.sha256(), 0
        for row in con.execute(f'select {select} from "{schema}"."{table}"').fetchall():
            values = tuple(v.isoformat() if isinstance(v, (datetime.date, datetime.datetime)) else v for v in row)
            digest.update(repr(values).encode())
            rows += 1
        result[f"{schema}.{table}"] = [rows, digest.hexdigest()]
    con.close()
    print(json.dumps(result))
""")


def fingerprint(python: Path | str, warehouse: Path) -> dict[str, list]:
    done = subprocess.run([str(python), "-c", FINGERPRINT, str(warehouse)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_duckdb_1x_clients_read_every_published_table_while_publications_replace_it(refreshed, duckdb_1x_clients,
                                                                                      tmp_path):
    copy = copy_of(refreshed, tmp_path)
    expected = list(published_tables(copy.warehouse))
    assert {name.split(".")[0] for name in expected} == set(SCHEMAS)
    with duckdb.connect(str(copy.warehouse), read_only=True) as con:
        first_run, storage = con.execute("select run_id, storage_version from meta.publication").fetchone()
        tags = con.execute("select tags from duckdb_databases() where database_name = current_database()").fetchone()[0]
    assert storage == DEFAULT_STORAGE_VERSION and tags["storage_version"] == f"{DEFAULT_STORAGE_VERSION}+"
    assert refreshed.metadata["publish/warehouse"]["storage_version"].value == DEFAULT_STORAGE_VERSION

    stop = tmp_path / "stop"
    readers = {name: (subprocess.Popen([str(client.python), "-c", READER, str(copy.warehouse), str(stop),
                                        str(tmp_path / f"{name}.json"), json.dumps(expected)]),
                      tmp_path / f"{name}.json")
               for name, client in duckdb_1x_clients.items()}
    # Publications replace the file while the clients read (the refresh's last step; tests/test_faults.py runs whole
    # refreshes beside a reader). Three in a row, each a new run, from the copy's working database.
    started = time.monotonic()
    second = subprocess.run([sys.executable, "-c", REPUBLISH, str(copy.work), str(copy.warehouse)],
                            capture_output=True, text=True, timeout=900)
    publish_seconds = time.monotonic() - started
    time.sleep(1.0)  # the readers see the last publication on their next open
    stop.touch()
    for process, _ in readers.values():
        process.wait(timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    new_runs = second.stdout.split()

    with duckdb.connect(str(copy.warehouse), read_only=True) as con:
        new_run, storage = con.execute("select run_id, storage_version from meta.publication").fetchone()
    assert new_run == new_runs[-1] != first_run and storage == DEFAULT_STORAGE_VERSION
    for name, (process, report) in readers.items():
        seen = json.loads(report.read_text())
        assert process.returncode == 0
        assert seen["version"] == duckdb_1x_clients[name].version
        assert seen["errors"] == [], f"DuckDB {seen['version']}: {seen['errors']}"
        # Whole publications only, in order: the first, some of the new ones, the last.
        assert seen["runs"][0] == first_run and seen["runs"][-1] == new_run, seen["runs"]
        assert seen["runs"] == [run for run in [first_run, *new_runs] if run in seen["runs"]], seen["runs"]
        assert seen["reads"] >= 3, f"DuckDB {seen['version']}: {seen['reads']} reads in {publish_seconds:.0f} s"
        assert seen["storage_versions"] == [DEFAULT_STORAGE_VERSION]

    # And each reads exactly what DuckDB 2.0 reads, value for value; the 1.x command-line client counts the same rows.
    reference = fingerprint(sys.executable, copy.warehouse)
    assert list(reference) == expected
    for client in duckdb_1x_clients.values():
        assert fingerprint(client.python, copy.warehouse) == reference, f"DuckDB {client.version} reads other values"
    counts = " union all ".join(f"select '{name}', count(*) from {qualified(*name.split('.'))}" for name in expected)
    shell = subprocess.run([str(duckdb_1x_clients["newest_1x"].bin / "duckdb"), "-readonly", str(copy.warehouse),
                            "-csv", "-noheader", "-c", counts], capture_output=True, text=True, timeout=300)
    assert shell.returncode == 0, shell.stderr
    assert {line.split(",")[0]: int(line.split(",")[1]) for line in shell.stdout.split()} == \
        {name: rows for name, (rows, _) in reference.items()}


REPUBLISH = """
import sys, uuid, duckdb
from pathlib import Path
from dagster_project.publish.publication import publish
work, warehouse = sys.argv[1], Path(sys.argv[2])
with duckdb.connect(work) as con:
    for _ in range(3):
        run_id = str(uuid.uuid4())
        publish(con, warehouse, run_id, None)
        print(run_id, flush=True)
"""

OPEN = "import sys, duckdb; duckdb.connect(sys.argv[1], read_only=True).execute('select * from marts.t').fetchall()"


@pytest.mark.slow
def test_in_duckdb_2_0s_own_format_the_1x_clients_could_not_open_the_file(duckdb_1x_clients, tmp_path):
    """The issue the setting solves, as BI users met it: `latest` (2.0's own format) shuts every 1.x client out."""
    with duckdb.connect(str(tmp_path / "crm.work.duckdb")) as con:
        con.execute("create schema marts")
        con.execute("create table marts.t as select 1 as one")
        for version in ("latest", DEFAULT_STORAGE_VERSION):
            publish(con, tmp_path / version / "crm.duckdb", "run", None,
                    storage_version=version)
    for client in duckdb_1x_clients.values():
        refused = subprocess.run([str(client.python), "-c", OPEN, str(tmp_path / "latest" / "crm.duckdb")],
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and "Trying to read a database file with version number" in refused.stderr
        opened = subprocess.run([str(client.python), "-c", OPEN, str(tmp_path / DEFAULT_STORAGE_VERSION / "crm.duckdb")],
                                capture_output=True, text=True, timeout=120)
        assert opened.returncode == 0, f"DuckDB {client.version}: {opened.stderr[-2000:]}"


@pytest.mark.slow
def test_superset_style_sqlalchemy_clients_list_reflect_and_read_the_tables(refreshed, duckdb_1x_clients):
    """duckdb-engine 0.17.0 under SQLAlchemy, with a DuckDB 1.x client as a BI tool bundles it: the inspector lists
    every table, reflects a table's columns (what Superset does when a dataset is added), and the rows read."""
    expected = published_tables(refreshed.warehouse)
    with duckdb.connect(str(refreshed.warehouse), read_only=True) as con:
        columns = [row[0] for row in con.execute("select column_name from duckdb_columns() where schema_name = 'marts' "
                                                 "and table_name = 'customer_360' order by column_index").fetchall()]
    script = textwrap.dedent("""
        import json, sys, warnings
        import sqlalchemy as sa
        warnings.simplefilter("ignore")  # duckdb-engine warns that it reflects no indexes
        engine = sa.create_engine(f"duckdb:///{sys.argv[1]}", connect_args={"read_only": True})
        inspector = sa.inspect(engine)
        tables = {schema: inspector.get_table_names(schema=schema) for schema in ("marts", "analytics", "quality", "meta")}
        columns = [column["name"] for column in inspector.get_columns("customer_360", schema="marts")]
        with engine.connect() as connection:
            customers = sa.Table("customer_360", sa.MetaData(), schema="marts", autoload_with=connection)
            rows = len(connection.execute(sa.select(customers)).fetchall())
        print(json.dumps({"sqlalchemy": sa.__version__, "tables": tables, "columns": columns, "rows": rows}))
    """)
    client = duckdb_1x_clients["newest_1x"]
    done = subprocess.run([str(client.python), "-c", script, str(refreshed.warehouse)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert sorted(f"{schema}.{table}" for schema, names in seen["tables"].items() for table in names) == \
        sorted(expected)
    assert seen["columns"] == columns and seen["rows"] == expected["marts.customer_360"]


@pytest.mark.slow
def test_sqlalchemy_with_duckdb_engine_lists_and_reads_the_tables_read_only(refreshed):
    """The project's own stack (DuckDB 2.0, duckdb-engine, SQLAlchemy) with the connection docs/bi.md gives."""
    import sqlalchemy as sa

    expected = published_tables(refreshed.warehouse)
    engine = sa.create_engine(f"duckdb:///{refreshed.warehouse}", connect_args={"read_only": True})
    inspector = sa.inspect(engine)
    listed = sorted(f"{schema}.{table}" for schema in SCHEMAS for table in inspector.get_table_names(schema=schema))
    assert listed == sorted(expected)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("select * from marts.customer_360")).fetchall()
        assert len(rows) == expected["marts.customer_360"]
    engine.dispose()

    # The URL of docs/bi.md (absolute path, read-only access): reads work, a write is refused.
    by_url = sa.create_engine(f"duckdb:///{refreshed.warehouse}?access_mode=read_only")
    with by_url.connect() as connection:
        assert connection.execute(sa.text("select count(*) from marts.fct_orders")).scalar() == \
            expected["marts.fct_orders"]
        with pytest.raises(sa.exc.DBAPIError, match="read-only"):
            connection.execute(sa.text("create table marts.scratch as select 1 as one"))
    by_url.dispose()


@pytest.mark.slow
def test_pyarrow_and_polars_read_every_parquet_export_with_the_rows_of_its_table(refreshed):
    import polars
    import pyarrow.parquet as pq

    parquet = refreshed.warehouse.parent / "parquet"
    expected = {name: rows for name, rows in published_tables(refreshed.warehouse).items()
                if not name.startswith("meta.")}
    assert sorted(path.name for path in parquet.glob("*.parquet")) == sorted(f"{name}.parquet" for name in expected)
    with duckdb.connect(str(refreshed.warehouse), read_only=True) as con:
        for name, rows in expected.items():
            schema, table = name.split(".")
            columns = [row[0] for row in con.execute("select column_name from duckdb_columns() where schema_name = ? "
                                                     "and table_name = ? order by column_index",
                                                     [schema, table]).fetchall()]
            arrow = pq.read_table(parquet / f"{name}.parquet")
            frame = polars.read_parquet(parquet / f"{name}.parquet")
            assert (arrow.num_rows, arrow.column_names) == (rows, columns), name
            assert (frame.height, frame.columns) == (rows, columns), name


# ---------------------------------------------------------------------------------- the storage-version setting

def test_the_storage_version_is_v1_0_0_unless_set_and_reaches_the_publish_resource(env, tmp_path):
    from dagster_project.defs.definitions import build_definitions

    assert settings_at(tmp_path).storage_version == DEFAULT_STORAGE_VERSION == "v1.0.0"
    assert Settings.load().storage_version == DEFAULT_STORAGE_VERSION
    for value, read in (("1.2.0", "v1.2.0"), (" V1.5.6 ", "v1.5.6"), ("latest", "latest"), ("", "v1.0.0")):
        env.setenv("CRM_STORAGE_VERSION", value)
        assert Settings.load().storage_version == read
    chosen = settings_at(tmp_path, storage_version="v1.4.0")
    assert build_definitions(chosen).resources["warehouse"].storage_version == "v1.4.0"


def test_the_storage_version_flag_reaches_the_refresh_s_settings(env, tmp_path, capsys):
    flags = ["refresh", "--exports", str(tmp_path / "missing"), "--storage-version", "1.2.0"]
    # The missing exports folder stops the command after the settings were made, before anything runs.
    assert main(flags) == 1
    assert "does not exist" in capsys.readouterr().err
    assert refresh_settings(build_parser().parse_args(flags)).storage_version == "v1.2.0"


@pytest.mark.parametrize(("value", "says"), [
    ("v0.10.0", "from v1.0.0 on"),   # older than any 1.x release
    ("1.2", "from v1.0.0 on"),
    ("v1.0.0'; drop table x; --", "from v1.0.0 on"),
    ("v1.6.0", "knows no release v1.6.0"),  # a release DuckDB does not know
    ("v1.3.2", "as NULL"),  # DuckDB 1.3 misreads text columns of a v1.3 file that DuckDB 2.0 writes
])
def test_a_bad_storage_version_is_a_one_line_error_naming_the_variable_and_the_flag(env, tmp_path, capsys, value,
                                                                                     says):
    env.setenv("CRM_STORAGE_VERSION", value)
    with pytest.raises(SettingsError) as error:
        Settings.load()
    message = str(error.value)
    assert "\n" not in message and "CRM_STORAGE_VERSION" in message and "--storage-version" in message
    assert says in message and repr(value) in message
    with pytest.raises(SettingsError):
        settings_at(tmp_path, storage_version=value)
    env.delenv("CRM_STORAGE_VERSION")
    assert main(["refresh", "--exports", str(tmp_path), "--storage-version", value]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--storage-version" in err and err.startswith("crm-warehouse: error: ")


def test_publish_writes_the_file_in_the_chosen_storage_format_and_records_it(tmp_path):
    """Every column type the warehouse publishes, in a file of the default format (DuckDB 1.0.0 and newer read it)
    and of DuckDB 2.0's own; meta.publication records the oldest release that opens it."""
    work = tmp_path / "crm.work.duckdb"
    with duckdb.connect(str(work)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.every_type as select 1::bigint as b, true as flag, date '2026-10-31' as d, "
                    "1.5::double as x, 2::integer as i, '{\"a\": 1}'::json as j, timestamp '2026-10-31 06:00' as ts, "
                    "timestamptz '2026-10-31 06:00+08' as tstz, 3::tinyint as t, 'Café 北京' as text "
                    "from range(3)")
        formats = {}
        for version in (DEFAULT_STORAGE_VERSION, "latest"):
            folder = tmp_path / version
            done = publish(con, folder / "crm.duckdb", "run", None, storage_version=version)
            with duckdb.connect(str(folder / "crm.duckdb"), read_only=True) as published:
                tags = published.execute("select tags from duckdb_databases() "
                                         "where database_name = current_database()").fetchone()[0]
                recorded = published.execute("select storage_version from meta.publication").fetchone()[0]
                assert published.execute("select * from marts.every_type").fetchall() == \
                    con.execute("select * from marts.every_type").fetchall()
            formats[version] = (done.storage_version, recorded, tags["storage_version"])
    assert formats[DEFAULT_STORAGE_VERSION] == ("v1.0.0", "v1.0.0", "v1.0.0+")
    latest = formats["latest"][0]
    assert latest.startswith("v2.") and formats["latest"] == (latest, latest, f"{latest}+")
