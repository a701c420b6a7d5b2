"""Erasure on request: `crm-warehouse forget --customer SOURCE_ID` (or the Dagster job `forget_customer`, by
customer_key) records a request; the next refresh removes the person from every layer and the publication that
follows completes it.

1. `request`: the request is appended to ``privacy.erasure_requests`` (the audit table) with the identifier to erase,
   which the table keeps only until the refresh applies it.
2. `apply_pending`, at the start of the next refresh's ingestion: the person is resolved to every CRM customer id that
   identity resolution merged into the same golden record (``restricted.customer_ids`` of the last build), closed over
   the person ids and e-mail addresses those records share in the raw drops, so erasing one id erases the person;
   tombstones (dagster_project.privacy.tombstones) are written for each id, person id, e-mail and order id; every raw
   row of every entity that names one of them (an order's lines by its order id) is deleted and counted in the quarantine as "erased" (row number and file
   only, so the reconciliation still adds up and the data owner can find the rows in their own exports); the raw
   lines of rows quarantined earlier that hold one of the person's values are blanked. dbt then rebuilds restricted,
   marts and analytics without them in the same run.
3. `complete`, after that run's publication (dagster_project.defs.assets.publish): the published file is new, the
   previous export versions are removed, and the working database is rebuilt into a fresh file
   (dagster_project.privacy.compaction) in which the request is marked completed, so no erased value is left in its
   free blocks.

The audit table holds no personal data once a request is applied: when, through which command, by which operator
account, the reason given (checked not to look like an identifier), how many ids and rows were erased, and when.
"""

from __future__ import annotations

import getpass
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from dagster_project.contract import ENTITIES
from dagster_project.ingest.raw_schema import QUARANTINE_INSERT, raw_table
from dagster_project.privacy import tombstones
from dagster_project.privacy.secret import KeyedHash
from dagster_project.privacy.tombstones import (
    COLUMN_OF_KIND,
    CUSTOMER_ID,
    EMAIL,
    ORDER_ID,
    PERSON_ID,
    SCHEMA,
)
from dagster_project.sql import identifier, table_exists

REQUESTS = f"{SCHEMA}.erasure_requests"
PENDING, APPLIED, COMPLETED = "pending", "applied", "completed"
REASON_MAX_CHARS = 200
CUSTOMER_KEY = re.compile(r"[0-9a-f]{16}")
# What a reason must not look like: it is kept for good in a table that holds no personal data.
_IDENTIFIER_LIKE = re.compile(r"[^@\s]+@[^@\s]+|\d[\d\s().+-]{6,}\d")
# Rounds of closing the person over shared person ids and e-mails (identity resolution links chains of a few hops).
CLOSURE_ROUNDS = 10


class ErasureError(Exception):
    """An erasure request that cannot be taken or applied, in one line."""


@dataclass(frozen=True)
class Receipt:
    request_id: str
    # CRM customer ids the last build merged into the person (0: not in the warehouse yet).
    known_ids: int


@dataclass(frozen=True)
class Applied:
    request_id: str
    source_ids: int
    rows: int


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    tombstones.ensure_table(con)
    con.execute(
        f"create table if not exists {REQUESTS} (request_id varchar, requested_at timestamp, requested_via varchar, "
        "requested_by varchar, reason varchar, status varchar, pending_source_id varchar, "
        "pending_customer_key varchar, erased_customer_keys varchar[], applied_at timestamp, "
        "applied_run_id varchar, source_ids_erased integer, rows_erased bigint, completed_at timestamp, "
        "completed_run_id varchar)")


def check_reason(reason: str | None, source_id: str | None) -> str | None:
    """The reason as recorded: at most REASON_MAX_CHARS printable characters that neither contain the id nor look
    like an e-mail address or phone number."""
    if reason is None or not reason.strip():
        return None
    text = " ".join(reason.split())
    if len(text) > REASON_MAX_CHARS or not text.isprintable():
        raise ErasureError(f"the reason must be at most {REASON_MAX_CHARS} printable characters")
    if (source_id and source_id.strip() in text) or _IDENTIFIER_LIKE.search(text):
        raise ErasureError("the reason is kept in the audit table, which holds no personal data: describe the request "
                           "(e.g. 'GDPR art. 17, ticket 4711') without the customer's id, e-mail or phone")
    return text


def request(con: duckdb.DuckDBPyConnection, *, source_id: str | None = None, customer_key: str | None = None,
            reason: str | None = None, via: str = "cli", now: datetime | None = None) -> Receipt:
    """Record a request to erase the person with CRM customer id `source_id` or pseudonym `customer_key`."""
    if (source_id is None) == (customer_key is None):
        raise ErasureError("name the customer by one CRM customer id or one customer_key")
    if source_id is not None and not source_id.strip():
        raise ErasureError("the customer id is empty")
    if customer_key is not None and not CUSTOMER_KEY.fullmatch(customer_key.strip()):
        raise ErasureError("a customer_key is 16 hexadecimal characters, as in the marts")
    reason = check_reason(reason, source_id)
    ensure_tables(con)
    known = _member_ids(con, _cleaned(con, [source_id]) if source_id else set(),
                        customer_key.strip() if customer_key else None)
    if customer_key is not None and not known:
        raise ErasureError("no customer of the last refresh has this customer_key (to erase someone the warehouse "
                           "has not seen yet, name their CRM customer id with --customer)")
    request_id = str(uuid.uuid4())
    con.execute(
        f"insert into {REQUESTS} (request_id, requested_at, requested_via, requested_by, reason, status, "
        "pending_source_id, pending_customer_key) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [request_id, now or _now(), via, _operator(), reason, PENDING, source_id.strip() if source_id else None,
         customer_key.strip() if customer_key else None])
    return Receipt(request_id, len(known))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _operator() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def pending(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, str | None]]:
    if not table_exists(con, SCHEMA, "erasure_requests"):
        return []
    return con.execute(f"select request_id, pending_source_id, pending_customer_key from {REQUESTS} "
                       "where status = ? order by requested_at, request_id", [PENDING]).fetchall()


def apply_pending(con: duckdb.DuckDBPyConnection, keys: Callable[[], KeyedHash], run_id: str) -> list[Applied]:
    """Apply every pending request, each in its own transaction (see the module's docstring)."""
    requests = pending(con)
    if not requests:
        return []
    resolved = keys()
    if tombstones.has_table(con):
        tombstones.check_key(con, resolved)
    done = []
    for request_id, source_id, customer_key in requests:
        con.begin()
        try:
            done.append(_apply(con, resolved, run_id, request_id, source_id, customer_key))
        except BaseException:
            con.rollback()
            raise
        con.commit()
    return done


@dataclass
class Person:
    ids: set[str]
    person_ids: set[str]
    emails: set[str]
    customer_keys: set[str]
    order_ids: set[str] = field(default_factory=set)

    def identifiers(self) -> dict[str, set[str]]:
        return {CUSTOMER_ID: self.ids, PERSON_ID: self.person_ids, EMAIL: self.emails, ORDER_ID: self.order_ids}


def _cleaned(con: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
    """CRM ids as dbt cleans them."""
    return {value for (value,) in con.execute(
        f"select {tombstones.clean_id('i')} from unnest($ids::varchar[]) as t(i)", {"ids": ids}).fetchall() if value}


def _member_ids(con: duckdb.DuckDBPyConnection, ids: set[str], customer_key: str | None) -> set[str]:
    """The CRM ids the last build resolved to the same golden customers as the (cleaned) `ids` or as `customer_key`;
    none before any build."""
    if not table_exists(con, "restricted", "customer_ids"):
        return set()
    return {value for (value,) in con.execute(
        "select source_customer_id from restricted.customer_ids where customer_key in (select customer_key from "
        "restricted.customer_ids where list_contains($ids, source_customer_id) or customer_key = $key)",
        {"ids": sorted(ids), "key": customer_key}).fetchall()}


def resolve(con: duckdb.DuckDBPyConnection, source_id: str | None, customer_key: str | None) -> Person:
    """Everyone identity resolution would take for the same person (the module's docstring)."""
    seed = _cleaned(con, [source_id]) if source_id else set()
    ids = seed | _member_ids(con, seed, customer_key)
    person_ids: set[str] = set()
    emails: set[str] = set()
    if table_exists(con, "raw", "customers"):
        row_id, row_person, row_email = (tombstones.clean_id("customer_id"), tombstones.clean_text("person_id"),
                                         tombstones.normalised_email("email"))
        for _ in range(CLOSURE_ROUNDS):
            found = con.execute(
                f"select list(distinct {row_id}), list(distinct {row_person}), list(distinct {row_email}) "
                f"from raw.customers where list_contains($ids, {row_id}) or list_contains($persons, {row_person}) "
                f"or list_contains($emails, {row_email})",
                {"ids": sorted(ids), "persons": sorted(person_ids), "emails": sorted(emails)}).fetchone()
            grown = ({v for v in found[0] or [] if v}, {v for v in found[1] or [] if v}, {v for v in found[2] or [] if v})
            if grown[0] <= ids and grown[1] <= person_ids and grown[2] <= emails:
                break
            ids |= grown[0] | _member_ids(con, grown[0], None)
            person_ids |= grown[1]
            emails |= grown[2]
    keys = set()
    if table_exists(con, "restricted", "customer_ids"):
        keys = {k for (k,) in con.execute("select distinct customer_key from restricted.customer_ids "
                                          "where list_contains($ids, source_customer_id)", {"ids": sorted(ids)}).fetchall()}
    # Their orders: the lines of a header-and-lines export name only the order.
    orders = set()
    for entity in ("orders", "order_items"):
        if table_exists(con, "raw", entity):
            orders |= {o for (o,) in con.execute(
                f"select distinct {tombstones.clean_text('order_id')} from {raw_table(entity)} "
                f"where {tombstones.identifies_sql(CUSTOMER_ID, 'customer_id', 'ids')}", {"ids": sorted(ids)}).fetchall()
                if o}
    return Person(ids, person_ids, emails, keys, orders)


def _apply(con: duckdb.DuckDBPyConnection, keys: KeyedHash, run_id: str, request_id: str, source_id: str | None,
           customer_key: str | None) -> Applied:
    now = _now()
    person = resolve(con, source_id, customer_key)
    for kind, values in person.identifiers().items():
        tombstones.add(con, keys, kind, values, request_id, now)
    values = _raw_values(con, person)
    rows = _delete_raw_rows(con, person, now)
    _blank_quarantined_lines(con, values)
    con.execute(
        f"update {REQUESTS} set status = ?, pending_source_id = null, pending_customer_key = null, "
        "erased_customer_keys = ?, applied_at = ?, applied_run_id = ?, source_ids_erased = ?, rows_erased = ? "
        "where request_id = ?",
        [APPLIED, sorted(person.customer_keys), now, run_id, len(person.ids), rows, request_id])
    return Applied(request_id, len(person.ids), rows)


def _raw_values(con: duckdb.DuckDBPyConnection, person: Person) -> list[str]:
    """Every value of the person's personal columns as delivered, and their identifiers, for blanking raw lines."""
    values = set(person.ids) | person.person_ids | person.emails | person.order_ids
    if table_exists(con, "raw", "customers"):
        personal = [c.name for c in next(e for e in ENTITIES if e.name == "customers").columns if c.personal]
        for row in con.execute(
                f"select {', '.join(identifier(c) for c in personal)} from raw.customers "
                f"where list_contains($ids, {tombstones.clean_id('customer_id')})", {"ids": sorted(person.ids)}).fetchall():
            values |= {v.strip() for v in row if v and v.strip()}
    return sorted(values)


def _delete_raw_rows(con: duckdb.DuckDBPyConnection, person: Person, now: datetime) -> int:
    """Delete every raw row naming the person, count each in the quarantine as erased (file and row number only) and
    in its file's row of the ingest log, so the reconciliation still adds up."""
    total = 0
    identifiers = person.identifiers()
    for entity in ENTITIES:
        kinds = [kind for kind, column in COLUMN_OF_KIND.items() if column in entity.column_names and identifiers[kind]]
        if not kinds or not table_exists(con, "raw", entity.name):
            continue
        condition = " or ".join(tombstones.identifies_sql(kind, COLUMN_OF_KIND[kind], kind) for kind in kinds)
        deleted = con.execute(f"delete from {raw_table(entity.name)} where {condition} "
                              "returning _source_file, _drop_date, _row_number",
                              {kind: sorted(identifiers[kind]) for kind in kinds}).fetchall()
        if not deleted:
            continue
        files, drops, row_numbers = map(list, zip(*deleted, strict=True))
        con.execute(
            f"insert into {raw_table('_quarantine')} {QUARANTINE_INSERT} select $entity, unnest($files::varchar[]), "
            "unnest($drops::date[]), unnest($rows::bigint[]), $reason, null, $now, null",
            {"entity": entity.name, "files": files, "drops": drops, "rows": row_numbers, "reason": tombstones.ERASED,
             "now": now})
        con.execute(
            f"update {raw_table('_ingest_log')} as l set rows_loaded = l.rows_loaded - e.n, "
            "rows_quarantined = l.rows_quarantined + e.n "
            "from (select f, count(*) as n from unnest(?::varchar[]) as t(f) group by f) as e where l.source_file = e.f",
            [files])
        total += len(deleted)
    return total


def _blank_quarantined_lines(con: duckdb.DuckDBPyConnection, values: list[str]) -> None:
    """Blank the raw line and detail of quarantined rows holding one of the person's values: as one field of the
    line, or anywhere in it for values long enough not to match by chance."""
    if not values or not table_exists(con, "raw", "_quarantine"):
        return
    fields = "list_transform(regexp_split_to_array(raw_record, '[,;\\t|\"{}:]'), lambda f: trim(f))"
    con.execute(
        f"update {raw_table('_quarantine')} set raw_record = null, detail = null where raw_record is not null "
        f"and (list_has_any({fields}, $values) or "
        "len(list_filter($long, lambda v: contains(raw_record, v) or contains(coalesce(detail, ''), v))) > 0)",
        {"values": values, "long": [v for v in values if len(v) >= 6]})


def awaiting_publication(con: duckdb.DuckDBPyConnection) -> list[tuple[str, list[str]]]:
    """(request id, pseudonyms the person had) of every request applied but not yet completed by a publication."""
    if not table_exists(con, SCHEMA, "erasure_requests"):
        return []
    return con.execute(f"select request_id, coalesce(erased_customer_keys, []) from {REQUESTS} where status = ? "
                       "order by applied_at", [APPLIED]).fetchall()


def check_gone(con: duckdb.DuckDBPyConnection, requests: list[tuple[str, list[str]]]) -> None:
    """Refuse to complete erasures while the models still hold the person (dbt has not rebuilt since they were
    applied: a run of some assets only), rather than publish them again."""
    keys = sorted({key for _, request_keys in requests for key in request_keys})
    for schema, table in (("restricted", "customer_ids"), ("marts", "dim_customers")):
        if keys and table_exists(con, schema, table) and con.execute(
                f"select count(*) from {schema}.{table} where list_contains($keys, customer_key)",
                {"keys": keys}).fetchone()[0]:
            raise ErasureError(f"{len(requests)} erasure request(s) were applied to the raw data, but {schema}.{table} "
                               "still holds the person: run the full refresh (dbt must rebuild the models) to publish")


def complete(con: duckdb.DuckDBPyConnection, database: str, request_ids: list[str], run_id: str) -> None:
    """Mark requests completed in `database` (the rebuilt copy of the working database, attached to `con`); their
    pseudonyms are dropped from the audit table."""
    if request_ids:
        con.execute(f"update {identifier(database)}.{REQUESTS} set status = ?, erased_customer_keys = null, "
                    "completed_at = ?, completed_run_id = ? where list_contains(?, request_id)",
                    [COMPLETED, _now(), run_id, request_ids])
