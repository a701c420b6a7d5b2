"""The pseudonym key material for dbt on Spark: the same secret, and the same HMAC, as on DuckDB.

On DuckDB the Python model ``int_customer_keys_pseudonymised`` reads the secret inside dbt's process. dbt-spark runs
no Python models, so on Spark the refresh resolves the secret with that model's own functions (``resolve_secret``:
CRM_PSEUDONYM_KEY, else the generated ``.pseudonym_key`` beside the warehouse), and lands the HMAC's inner and outer
keys as the one-row table ``restricted._pseudonym_keys`` just before dbt builds; the SQL model joins it, and its files
are deleted as soon as dbt is done (the table's definition goes when the refresh next opens the catalog).

Data, not SQL: the keys appear in no statement, so in no compiled SQL, dbt log, Spark statement log, plan or event
log, on the local session and on a server alike. A Spark setting or a session variable would not do: settings reach
the JVM's command line, a server records a session's variables, values included, in its event log, and Spark's
redaction of variables named like secrets also blanks them where a query reads them. While dbt runs, the table's
file is in the Spark storage beside the raw rows and the restricted tables, with the same access.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from dagster_project.spark.catalog import Catalog, spark_name
from dagster_project.spark.storage import Storage, storage_root
from dagster_project.spark.tables import write_table

KEYS_SCHEMA, KEYS_TABLE = "restricted", "_pseudonym_keys"


def _model():
    """The DuckDB Python model as a module: its secret and HMAC functions are the single source (loaded once, as the
    erasure tombstones load it: dagster_project.privacy.secret)."""
    from dagster_project.privacy.secret import pseudonym_model

    return pseudonym_model()


def pseudonym_keys(warehouse: Path) -> tuple[bytes, bytes]:
    """The HMAC's inner and outer keys of the warehouse's pseudonym secret."""
    model = _model()
    secret, _ = model.resolve_secret(os.environ, Path(warehouse).parent)
    return model.hmac_keys(secret)


def land_keys(catalog: Catalog, warehouse: Path) -> None:
    """Write the keys as restricted._pseudonym_keys, for the dbt build that follows (keys_removed_after ends it)."""
    inner, outer = pseudonym_keys(warehouse)
    write_table(catalog, KEYS_SCHEMA, KEYS_TABLE, pa.table({"inner_key": [inner], "outer_key": [outer]}).to_reader())


@contextmanager
def keys_removed_after(warehouse: Path) -> Iterator[None]:
    """Delete the keys' files when the block ends, whether dbt succeeded or not (no catalog needed: with the local
    session, dbt's process holds the metastore meanwhile)."""
    try:
        yield
    finally:
        storage = Storage(storage_root(warehouse))
        storage.delete(f"{KEYS_SCHEMA}/{KEYS_TABLE}")


def forget_keys_table(catalog: Catalog) -> None:
    catalog.execute(f"drop table if exists {spark_name(KEYS_SCHEMA, KEYS_TABLE)}")
