"""Tombstones: what is left of an erased person, a keyed hash per identifier (their CRM customer ids, person ids,
e-mail addresses and order ids) and nothing else, so a later drop that re-delivers them is quarantined as "erased" at
ingestion (an order's lines name only the order).

The values are normalised as the dbt models normalise them before they are hashed (ids as `clean_id`, e-mails as
`normalise_email`), so a re-delivery written differently (" C001 ", "17850.0", "Ann@Example.com ") still matches.

The tombstones are also kept in a file beside the warehouse (`warehouse_files.tombstones_path`): the working database
can be deleted to rebuild it from the export files, which still hold the erased people, and every refresh restores
the tombstones the file has before it loads anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from dagster_project.files import atomic_write
from dagster_project.privacy.secret import KeyedHash
from dagster_project.sql import identifier, table_exists

SCHEMA = "privacy"
TOMBSTONES = f"{SCHEMA}.erasure_tombstones"
# The quarantine reason of a row of an erased person.
ERASED = "erased"

# The identifiers a tombstone may stand for, each with its SQL normalisation (the dbt macros' of the same name).
CUSTOMER_ID, PERSON_ID, EMAIL, ORDER_ID = "customer_id", "person_id", "email", "order_id"


def clean_id(expression: str) -> str:
    """dbt's crm.clean_id: trimmed, empty as NULL, a spreadsheet's '17850.0' as '17850'."""
    return (f"case when {expression} like '%.%0' then regexp_replace(trim({expression}), '^([0-9]+)\\.0+$', '\\1') "
            f"else nullif(trim({expression}), '') end")


def normalised_email(expression: str) -> str:
    """dbt's crm.normalise_email: lower-case and trimmed when it looks like an address, else NULL."""
    return (f"case when regexp_full_match(lower(trim({expression})), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+') "
            f"then lower(trim({expression})) end")


def clean_text(expression: str) -> str:
    """dbt's crm.clean_text: trimmed, empty as NULL (person ids, order ids)."""
    return f"nullif(trim({expression}), '')"


NORMALISE = {CUSTOMER_ID: clean_id, PERSON_ID: clean_text, EMAIL: normalised_email, ORDER_ID: clean_text}
# The raw column each kind of identifier is read from, in every entity that has it: entities name their customer in
# customer_id; customers also carry the person id and the e-mail address identity resolution links records by; orders
# and their lines carry the order id (a header-and-lines export's lines name only their order).
COLUMN_OF_KIND = {CUSTOMER_ID: "customer_id", PERSON_ID: "person_id", EMAIL: "email", ORDER_ID: "order_id"}
KINDS = tuple(COLUMN_OF_KIND)


def identifies_sql(kind: str, column: str, parameter: str) -> str:
    """SQL: the normalised value of a raw column is in the list bound as `parameter`."""
    return f"list_contains(${parameter}, {NORMALISE[kind](identifier(column))})"


def tombstone_sql(kind: str, column: str) -> str:
    """SQL: the tombstone of a raw column's value as an identifier of `kind` (NULL for an empty value)."""
    normalised = NORMALISE[kind](identifier(column))
    return KeyedHash.sql(f"'erasure|{kind}|' || {normalised}")


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(f"create table if not exists {TOMBSTONES} (tombstone varchar, kind varchar, request_id varchar, "
                "created_at timestamp, key_check varchar)")


def has_table(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, SCHEMA, "erasure_tombstones")


class TombstoneKeyError(Exception):
    """The tombstones were made with another pseudonym secret than the configured one."""


def check_key(con: duckdb.DuckDBPyConnection, keys: KeyedHash) -> None:
    """Refuse a secret that did not make the stored tombstones: with it, every re-delivered person would land again."""
    other = con.execute(f"select count(*) from {TOMBSTONES} where key_check <> ?", [keys.key_check]).fetchone()[0]
    if other:
        raise TombstoneKeyError(
            f"{other} erasure tombstone(s) were made with another pseudonym secret than the configured one "
            "(CRM_PSEUDONYM_KEY, else .pseudonym_key beside the warehouse): restore that secret, or erased customers "
            "re-delivered by a drop would land again")


def add(con: duckdb.DuckDBPyConnection, keys: KeyedHash, kind: str, values: Iterable[str], request_id: str,
        now: datetime) -> int:
    """Record the tombstones of normalised `values` of `kind` not recorded yet; returns how many were new."""
    ensure_table(con)
    hashes = sorted({keys.of(f"erasure|{kind}|{value}") for value in values if value})
    if not hashes:
        return 0
    (added,) = con.execute(
        f"insert into {TOMBSTONES} select h, $kind, $request_id, $now, $check from unnest($hashes) as t(h) "
        f"where h not in (select tombstone from {TOMBSTONES} where kind = $kind)",
        {"kind": kind, "request_id": request_id, "now": now, "check": keys.key_check, "hashes": hashes},
    ).fetchone()
    return added


_COLUMNS = ("tombstone", "kind", "request_id", "created_at", "key_check")


def restore(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Add the tombstones kept in `path` (``warehouse_files.tombstones_path``) that the working database lacks, as
    after it was deleted to rebuild it from the export files; returns how many."""
    if not path.exists():
        return 0
    kept = json.loads(path.read_text(encoding="utf-8"))
    if not kept:
        return 0
    ensure_table(con)
    (added,) = con.execute(
        f"insert into {TOMBSTONES} select k.tombstone, k.kind, k.request_id, k.created_at, k.key_check "
        "from (select unnest($kept, recursive := true)) as k "
        f"where not exists (select 1 from {TOMBSTONES} as t where t.tombstone = k.tombstone and t.kind = k.kind)",
        {"kept": [{**row, "created_at": datetime.fromisoformat(row["created_at"]) if row["created_at"] else None}
                  for row in kept]}).fetchone()
    return added


def save(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Keep every tombstone in `path` too, owner-only, when the file lacks some."""
    if not has_table(con):
        return
    rows = [dict(zip(_COLUMNS, (str(v) if isinstance(v, datetime) else v for v in row))) for row in con.execute(
        f"select {', '.join(_COLUMNS)} from {TOMBSTONES} order by kind, tombstone").fetchall()]
    kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    if not rows or {(r["kind"], r["tombstone"]) for r in rows} <= {(r["kind"], r["tombstone"]) for r in kept}:
        return
    with atomic_write(path, "w", encoding="utf-8", permissions=0o600) as out:
        json.dump(rows, out, indent=1)


def by_kind(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every tombstone, by kind of identifier."""
    if not has_table(con):
        return {}
    return {kind: hashes for kind, hashes in con.execute(
        f"select kind, list(tombstone order by tombstone) from {TOMBSTONES} group by kind").fetchall()}


def erased_rows_condition(entity_columns: Iterable[str], kinds: Iterable[str]) -> tuple[str, set[str]]:
    """SQL: a raw row carries an identifier of an erased person (tombstone lists bound as $t_<kind>), and the kinds
    it tests."""
    columns = set(entity_columns)
    tested = {kind for kind, column in COLUMN_OF_KIND.items() if kind in kinds and column in columns}
    tests = [f"list_contains($t_{kind}, {tombstone_sql(kind, COLUMN_OF_KIND[kind])})" for kind in sorted(tested)]
    return ("(" + " or ".join(tests) + ")" if tests else "false"), tested


def erased_line_condition(kinds: Iterable[str]) -> str:
    """SQL: a raw line the reader rejected (its fields unparsed) holds a field that is an erased person's
    identifier; the line is split at every delimiter and quote the exports use."""
    fields = "list_transform(regexp_split_to_array(raw_record, '[,;\\t|\"{}:]'), lambda f: trim(f))"
    tests = [f"list_has_any($t_{kind}, list_transform({fields}, lambda f: {tombstone_sql(kind, 'f')}))"
             for kind in KINDS if kind in kinds]
    return "(" + " or ".join(tests) + ")" if tests else "false"


@dataclass(frozen=True)
class Screen:
    """The tombstones and the keyed hash to test raw values against them: what ingestion screens each new file with."""

    tombstones: dict[str, list[str]]
    keys: KeyedHash

    @property
    def kinds(self) -> set[str]:
        return set(self.tombstones)

    def params(self, kinds: Iterable[str] | None = None) -> dict[str, object]:
        """The bound parameters of a condition testing `kinds` (all by default)."""
        kinds = self.kinds if kinds is None else set(kinds)
        return {**self.keys.params, **{f"t_{kind}": self.tombstones[kind] for kind in kinds}}


def screen(con: duckdb.DuckDBPyConnection, keys: Callable[[], KeyedHash]) -> Screen | None:
    """The screen for new files, or None when nobody was erased (the secret is then not even resolved)."""
    tombstones = by_kind(con)
    if not tombstones:
        return None
    resolved = keys()
    check_key(con, resolved)
    return Screen(tombstones, resolved)
