"""The refresh's own connection to Spark's catalog, beside dbt's: SQL statements only, the same on every target.

- target ``spark`` (the default): this process's local Spark session (dagster_project.spark.session);
- target ``spark_thrift``: a Spark Thrift server, through PyHive, as dbt-spark's ``thrift`` method connects;
- target ``databricks``: an all-purpose Databricks cluster over HTTP, as dbt-spark's ``http`` method connects.

Rows never travel through this connection: the refresh writes Parquet files to the storage Spark reads
(dagster_project.spark.storage) and defines tables over them, and reads the tables dbt built from their files. So
the refresh needs no Spark client and no Java on a cluster, and its memory is bounded by what it reads, as on DuckDB.

The target is ``CRM_SPARK_DBT_TARGET``: dbt and this connection always use the same one.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from dagster_project.spark.storage import Storage, read_batches, storage_root

TARGET_VARIABLE = "CRM_SPARK_DBT_TARGET"
SESSION_TARGET = "spark"
SERVER_TARGETS = ("spark_thrift", "databricks")


class CatalogError(RuntimeError):
    pass


def spark_target(environ: Mapping[str, str] | None = None) -> str:
    target = ((os.environ if environ is None else environ).get(TARGET_VARIABLE) or SESSION_TARGET).strip()
    if target not in (SESSION_TARGET, *SERVER_TARGETS):
        raise CatalogError(f"{TARGET_VARIABLE}: {target!r} is not a Spark target (spark, spark_thrift or databricks)")
    return target


def server_session_settings(session_conf: Mapping[str, str]) -> dict[str, str]:
    """A server session's configuration as HiveServer2 takes it when the session opens: SQL settings as
    ``set:hiveconf:`` (a plain key is not applied by Spark's Thrift server)."""
    return {f"set:hiveconf:{k}": str(v) for k, v in session_conf.items()}


class Catalog:
    """SQL on Spark's catalog and the storage its tables' files are in."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def rows(self, statement: str) -> list[tuple]:
        raise NotImplementedError

    def execute(self, statement: str) -> None:
        self.rows(statement)

    def close(self) -> None:
        pass

    def database_exists(self, database: str) -> bool:
        return any(row[0].lower() == database.lower() for row in self.rows("show databases"))

    def tables(self, database: str) -> list[str]:
        """The tables (not temporary views) of a database; none when it does not exist."""
        if not self.database_exists(database):
            return []
        return sorted(row[1] for row in self.rows(f"show tables in {spark_name(database)}") if not row[2])

    def describe(self, database: str, table: str) -> tuple[list[tuple[str, str]], str]:
        """A Parquet table's columns (name, Spark type) and the location of its files."""
        columns, details, in_columns = [], {}, True
        for name, kind, _ in self.rows(f"describe formatted {spark_name(database, table)}"):
            name, kind = (name or "").strip(), (kind or "").strip()
            if not name or name.startswith("#"):
                in_columns = False
            elif in_columns:
                columns.append((name, kind))
            else:
                details.setdefault(name, kind)
        provider = details.get("Provider", "").lower()
        parquet = provider == "parquet" or (provider == "hive" and "parquet" in details.get("InputFormat", "").lower())
        if "Location" not in details or not parquet:
            raise CatalogError(f"{database}.{table} is not a Parquet table with a location (provider "
                               f"{details.get('Provider')!r}): the refresh reads Parquet tables only (dbt_project.yml "
                               "sets file_format parquet on Spark)")
        return columns, details["Location"]

    def read(self, database: str, table: str) -> pa.RecordBatchReader:
        """A table's rows as a stream of Arrow batches, read from its Parquet files."""
        columns, location = self.describe(database, table)
        return read_batches(location, [name for name, _ in columns],
                            lambda: pa.schema([(name, arrow_type(kind)) for name, kind in columns]))


class SessionCatalog(Catalog):
    def __init__(self, warehouse: Path):
        super().__init__(Storage(storage_root(warehouse)))
        self.warehouse = Path(warehouse)

    def rows(self, statement: str) -> list[tuple]:
        from dagster_project.spark.session import spark_session

        return [tuple(row) for row in spark_session(self.warehouse).sql(statement).collect()]


class ServerCatalog(Catalog):
    def __init__(self, warehouse: Path, target: str, configuration: Mapping[str, str],
                 environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        if not environ.get("CRM_SPARK_STORAGE", "").strip():
            raise CatalogError(f"the {target} target needs CRM_SPARK_STORAGE: a folder or object-store URI that the "
                               "Spark server reads and this process can write (docs/scale_out.md)")
        super().__init__(Storage(storage_root(warehouse, environ)))
        self._connection = _connect(target, dict(configuration), environ)

    def rows(self, statement: str) -> list[tuple]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(statement)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        finally:
            cursor.close()

    def close(self) -> None:
        self._connection.close()


@contextmanager
def open_catalog(warehouse: Path) -> Iterator[Catalog]:
    """The catalog of the configured target (CRM_SPARK_DBT_TARGET), closed afterwards."""
    from dagster_project.spark.session import SESSION_SQL_CONF

    target = spark_target()
    catalog = (SessionCatalog(warehouse) if target == SESSION_TARGET
               else ServerCatalog(warehouse, target, server_session_settings(SESSION_SQL_CONF)))
    try:
        yield catalog
    finally:
        catalog.close()


def _connect(target: str, configuration: dict[str, str], environ: Mapping[str, str]):
    try:
        from pyhive import hive
    except ImportError:
        raise CatalogError(f"the {target} target needs PyHive: pip install -e '.[spark]'") from None
    if target == "spark_thrift":
        return hive.connect(host=environ.get("CRM_SPARK_THRIFT_HOST") or "localhost",
                            port=int(environ.get("CRM_SPARK_THRIFT_PORT") or 10000),
                            username=environ.get("CRM_SPARK_THRIFT_USER") or "crm", configuration=configuration)
    from thrift.transport import THttpClient

    host = environ.get("CRM_DATABRICKS_HOST", "")
    missing = [name for name in ("CRM_DATABRICKS_HOST", "CRM_DATABRICKS_CLUSTER", "DBT_ENV_SECRET_CRM_DATABRICKS_TOKEN")
               if not environ.get(name)]
    if missing:
        raise CatalogError(f"the databricks target needs {', '.join(missing)} (docs/scale_out.md)")
    url = (f"{host if host.startswith('https://') else 'https://' + host}:443/sql/protocolv1/o/"
           f"{environ.get('CRM_DATABRICKS_ORGANIZATION') or '0'}/{environ.get('CRM_DATABRICKS_CLUSTER', '')}")
    transport = THttpClient.THttpClient(url)
    token = base64.standard_b64encode(f"token:{environ.get('DBT_ENV_SECRET_CRM_DATABRICKS_TOKEN', '')}".encode())
    transport.setCustomHeaders({"Authorization": f"Basic {token.decode()}"})
    return hive.connect(thrift_transport=transport, configuration=configuration)


def spark_name(*parts: str) -> str:
    """A backquoted Spark identifier path; embedded backquotes are doubled."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


_SIMPLE_TYPES = {
    "string": pa.string(), "boolean": pa.bool_(), "tinyint": pa.int8(), "smallint": pa.int16(), "int": pa.int32(),
    "integer": pa.int32(), "bigint": pa.int64(), "float": pa.float32(), "double": pa.float64(), "date": pa.date32(),
    "timestamp": pa.timestamp("us"), "timestamp_ntz": pa.timestamp("us"), "binary": pa.binary(),
    "void": pa.null(),
}


def arrow_type(spark_type: str) -> pa.DataType:
    """The Arrow type of a Spark SQL type name as DESCRIBE shows it."""
    kind = spark_type.strip().lower()
    if kind in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[kind]
    if kind.startswith(("varchar", "char")):
        return pa.string()
    if kind.startswith("decimal"):
        precision, scale = (int(part) for part in kind[kind.index("(") + 1:kind.index(")")].split(","))
        return pa.decimal128(precision, scale)
    raise CatalogError(f"no Arrow type for the Spark type {spark_type!r}")
