"""The pseudonym key material for dbt on Spark: the same secret, and the same HMAC, as on DuckDB.

On DuckDB the Python model ``int_customer_keys_pseudonymised`` reads the secret inside dbt's process. dbt-spark's
session method runs no Python models, so on Spark the refresh resolves the secret with that model's own functions
(``resolve_secret``: CRM_PSEUDONYM_KEY, else the generated ``.pseudonym_key`` beside the warehouse) and hands dbt's
process the HMAC's inner and outer keys in environment variables, as CRM_PSEUDONYM_KEY reaches dbt on DuckDB. Spark
substitutes ``${env:NAME}`` in the SQL model when it runs it: the keys never appear in compiled SQL, in dbt's logs or
on a command line (Spark settings would be passed to the JVM's command line, visible to every user of the machine).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

INNER_VARIABLE = "CRM_PSEUDONYM_HMAC_INNER"
OUTER_VARIABLE = "CRM_PSEUDONYM_HMAC_OUTER"


def _model():
    """The DuckDB Python model as a module: its secret and HMAC functions are the single source (loaded once, as the
    erasure tombstones load it: dagster_project.privacy.secret)."""
    from dagster_project.privacy.secret import pseudonym_model

    return pseudonym_model()


def pseudonym_environment(warehouse: Path,
                          environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], str | None]:
    """The environment variables that carry the HMAC keys (hex) to dbt, and the warning the DuckDB model would log
    when the secret is the generated one."""
    model = _model()
    secret, warning = model.resolve_secret(os.environ if environ is None else environ, Path(warehouse).parent)
    inner, outer = model.hmac_keys(secret)
    return {INNER_VARIABLE: inner.hex(), OUTER_VARIABLE: outer.hex()}, warning
