"""The pseudonym secret (CRM_PSEUDONYM_KEY, else `.pseudonym_key` beside the warehouse) and keyed hashes made with it
in DuckDB, for the erasure tombstones.

The secret is resolved exactly as the dbt model that keys the customer pseudonyms resolves it (its functions are
used, loaded from the model file, so there is one definition). A tombstone is the full HMAC-SHA256 of
`erasure|<kind>|<value>`: unlike a customer_key (16 hex characters of the HMAC of a golden id) it can never equal a
published key, and without the secret it cannot be linked to an id, even by enumerating ids.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from hashlib import sha256
from pathlib import Path
from types import ModuleType

from dagster_project.settings import DBT_PROJECT_DIR

PSEUDONYM_MODEL = DBT_PROJECT_DIR / "models" / "intermediate" / "int_customer_keys_pseudonymised.py"
KEY_CHECK_TEXT = "erasure|key-check"


@cache
def pseudonym_model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crm_pseudonym_model", PSEUDONYM_MODEL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class KeyedHash:
    """HMAC-SHA256 with the pseudonym secret, as SQL over bound parameters (the secret never enters SQL text)."""

    inner: bytes
    outer: bytes
    # The first 16 hex characters of the HMAC of a fixed text: tells whether stored tombstones were made with this
    # secret (a changed secret would otherwise make every tombstone silently miss).
    key_check: str

    @property
    def params(self) -> dict[str, bytes]:
        return {"hmac_inner": self.inner, "hmac_outer": self.outer}

    @staticmethod
    def sql(text_expression: str) -> str:
        """SQL: the hex HMAC of the text `text_expression` evaluates to."""
        return f"sha256($hmac_outer || unhex(sha256($hmac_inner || encode({text_expression}))))"

    def of(self, text: str) -> str:
        """The same HMAC in Python (tests and the key check)."""
        return hmac_hex(self.inner, self.outer, text)


def hmac_hex(inner: bytes, outer: bytes, text: str) -> str:
    return sha256(outer + sha256(inner + text.encode()).digest()).hexdigest()


def keyed_hash(warehouse: Path, environ: Mapping[str, str] | None = None) -> KeyedHash:
    """The keyed hash of this warehouse's pseudonym secret (generated beside it when none is configured, as the dbt
    model does)."""
    model = pseudonym_model()
    secret, _ = model.resolve_secret(os.environ if environ is None else environ, Path(warehouse).parent)
    inner, outer = model.hmac_keys(secret)
    return KeyedHash(inner, outer, hmac_hex(inner, outer, KEY_CHECK_TEXT)[:16])
