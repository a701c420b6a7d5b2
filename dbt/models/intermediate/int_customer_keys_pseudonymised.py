"""The pseudonymous customer key every BI-facing table carries instead of a CRM id.

customer_key = HMAC-SHA256(secret, golden customer id), hex, first 16 characters (64 bits). Without the secret a
key cannot be linked back to a CRM id, even by someone who can enumerate CRM ids; with the same secret it is the
same on every refresh, so BI bookmarks and saved lists keep working. The chance that two of n customers share a key
is about n^2 / 2^65: 3e-8 at a million customers, 3e-4 at a hundred million; the `unique` test on
dim_customers.customer_key would catch one (and stop publishing) rather than merge two customers silently.

The secret comes from the environment variable CRM_PSEUDONYM_KEY (at least 32 characters; `openssl rand -hex 32`),
set from a secret store in production. When it is unset (the demo, a laptop) a random secret is generated once into
`.pseudonym_key` (mode 0600) beside the warehouse file and reused by every later refresh, and dbt logs a warning.
This is a Python model so the secret is read here, in the dbt process, and never appears in compiled SQL,
dbt/target or the logs.
"""

import hashlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

SECRET_ENV = "CRM_PSEUDONYM_KEY"
KEY_FILE = ".pseudonym_key"
MIN_SECRET_CHARS = 32
PSEUDONYM_HEX_CHARS = 16


def hmac_keys(secret: bytes) -> tuple[bytes, bytes]:
    """The inner and outer keys of HMAC-SHA256 (RFC 2104): HMAC(k, m) = sha256(outer || sha256(inner || m))."""
    block = hashlib.sha256().block_size
    key = (hashlib.sha256(secret).digest() if len(secret) > block else secret).ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


# HMAC in DuckDB, vectorised and parallel, with the keys as bound parameters (never in the SQL text): faster than
# hashing id by id in Python.
PSEUDONYMS_SQL = f"""
    select
        customer_key as golden_customer_id,
        left(sha256($outer || unhex(sha256($inner || encode(customer_key)))), {PSEUDONYM_HEX_CHARS}) as customer_key
    from golden
"""


def resolve_secret(environ: Mapping[str, str], warehouse_dir: Path) -> tuple[bytes, str | None]:
    """The pseudonym secret, and a warning when it is not the one from the environment."""
    configured = environ.get(SECRET_ENV, "")
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise ValueError(f"{SECRET_ENV} must be at least {MIN_SECRET_CHARS} characters: `openssl rand -hex 32`")
        return configured.encode(), None
    key_file = warehouse_dir / KEY_FILE
    try:
        # O_EXCL: the first refresh creates the file, every later one reads it (refreshes never run concurrently).
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        generated = key_file.read_text().strip()
        if len(generated) < MIN_SECRET_CHARS:
            raise ValueError(f"{key_file} does not hold a usable secret; set {SECRET_ENV} or delete the file") from None
    else:
        generated = secrets.token_hex(32)
        with os.fdopen(fd, "w") as out:
            out.write(generated + "\n")
    return generated.encode(), (
        f"{SECRET_ENV} is not set: customer pseudonyms are keyed with the secret generated in {key_file}. "
        f"Set {SECRET_ENV} from your secret store in production (changing the secret changes every customer_key).")


def _warn(message: str) -> None:
    """A warning in dbt's own log and console (dbt-duckdb runs Python models inside the dbt process)."""
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.functions import fire_event
    from dbt_common.events.types import Note

    fire_event(Note(msg=message), level=EventLevel.WARN)


def model(dbt, session):
    golden = dbt.ref("int_customers_merged")  # read by PSEUDONYMS_SQL (DuckDB finds the local variable)
    ((database_file,),) = session.execute(
        "select path from duckdb_databases() where database_name = current_database()").fetchall()
    if not database_file:
        raise ValueError(f"an in-memory warehouse has nowhere to keep a generated secret: set {SECRET_ENV}")
    secret, warning = resolve_secret(os.environ, Path(database_file).resolve().parent)
    if warning:
        _warn(warning)
    inner, outer = hmac_keys(secret)
    return session.sql(PSEUDONYMS_SQL, params={"inner": inner, "outer": outer})
