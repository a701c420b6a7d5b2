"""The pseudonym key material for dbt on Spark: the same secret, and the same HMAC, as on DuckDB.

On DuckDB the Python model ``int_customer_keys_pseudonymised`` reads the secret inside dbt's process. dbt-spark's
session method runs no Python models, so on Spark the refresh resolves the secret with that model's own functions
(``resolve_secret``: CRM_PSEUDONYM_KEY, else the generated ``.pseudonym_key`` beside the warehouse) and hands dbt's
process the HMAC's inner and outer keys, as CRM_PSEUDONYM_KEY reaches dbt on DuckDB:
- with the local session, in environment variables; Spark substitutes ``${env:NAME}`` in the SQL model when it runs
  it in dbt's process (Spark settings would instead be passed on the JVM's command line, visible to every user of the
  machine);
- on a Spark server, as the session variables dbt's session opens with (``${hivevar:name}``, substituted by the
  server), through ``DBT_ENV_SECRET_`` variables that dbt scrubs from its logs.
Either way the keys never appear in compiled SQL or in dbt's logs (dbt/macros/pseudonyms.sql names the variables).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

INNER_VARIABLE = "CRM_PSEUDONYM_HMAC_INNER"
OUTER_VARIABLE = "CRM_PSEUDONYM_HMAC_OUTER"
# On a Spark server: what dbt's server targets read the keys from (dbt/profiles.yml) into the session variables
# crm_pseudonym_hmac_inner / _outer. dbt scrubs the values of DBT_ENV_SECRET_ variables from its logs.
SECRET_PREFIX = "DBT_ENV_SECRET_"


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


def server_pseudonym_environment(warehouse: Path) -> dict[str, str]:
    """The HMAC keys for a Spark server: a server substitutes ${hivevar:…} itself, from the session dbt opened, where
    dbt's environment is not visible; Spark's redaction keeps them out of its logs and plans
    (dagster_project.spark.session.SESSION_SQL_CONF)."""
    keys, _ = pseudonym_environment(warehouse)
    return {SECRET_PREFIX + name: value for name, value in keys.items()}
