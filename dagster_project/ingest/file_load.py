"""One file's load, inside its transaction: forget what an earlier version of the file loaded, insert its rows as
text with lineage, set aside what cannot be read and what re-delivers an erased person
(dagster_project.ingest.quarantine), read its dates and decimal mark
(dagster_project.ingest.values), keep an order's values written on its lines once (dagster_project.ingest.order_values)
and write its row of the ingest log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb

from dagster_project.contract import LINEAGE_COLUMNS, Entity, normalise_header
from dagster_project.ingest import encodings, order_values, quarantine, values
from dagster_project.ingest.encodings import Fingerprint
from dagster_project.ingest.export_file import ExportFile, IngestError
from dagster_project.ingest.layout import Layout
from dagster_project.ingest.mapping import (
    CREDIT_NOTE, CREDIT_NOTE_AMOUNTS, STATUS_COLUMNS, EntityMapping, fold_status_sql,
)
from dagster_project.ingest.raw_schema import INGEST_LOG_COLUMNS, raw_table
from dagster_project.ingest.sources import Source
from dagster_project.privacy.tombstones import Screen
from dagster_project.sql import identifier, literal


# Rows of a file looked at to find the columns that write Excel text formulas (="..."): exports write them in every
# row of a column or in none.
EXCEL_TEXT_SAMPLE = 1000
# Columns of charges that are not revenue (shipping, tax), by their folded header: a total beside them may include them.
CHARGE_COLUMN = re.compile(r"tax|vat|shipping|freight|postage|delivery_fee|运费|税")
# What names a currency in an amount's text: the symbols and codes dbt's crm.currency_from_amount_text reads.
CURRENCY_IN_AMOUNT = ("[$¥￥€£₩￦元円원]|USD|RMB|CNY|EUR|GBP|KRW|BRL|HKD|TWD|NZD|MXN|CAD|AUD|SGD|JPY"
                      r"|US\$|R\$|HK\$|NT\$|NZ\$|MX\$|CA\$|C\$|AU\$|A\$|S\$")


def cell(pos: int) -> str:
    """SQL: the source's value at `pos`, trimmed, empty as NULL."""
    return f"nullif(trim(CAST(c{pos} AS VARCHAR)), '')"


@dataclass
class FileLoad:
    con: duckdb.DuckDBPyConnection
    file: ExportFile
    drop_date: date
    entity: Entity
    source: Source
    layout: Layout
    fp: Fingerprint
    mapping: EntityMapping
    # The tombstones of erased people, None when there are none.
    erased: Screen | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    notes: list[str] = field(default_factory=list)
    interpretation: values.Interpretation = field(default_factory=values.Interpretation)
    amounts_without_currency: bool = False

    @property
    def table(self) -> str:
        return raw_table(self.entity.name)

    @property
    def entity_named(self) -> Entity:
        """The entity the file's name says (its mapping section's), which its rows may have left by grain."""
        return self.file.named or self.entity

    def run(self, replaces: Entity | None) -> tuple[int, int, int]:
        """Load and log the file (replacing what an earlier version of it loaded into `replaces`); returns (rows
        read, rows loaded, rows quarantined)."""
        if replaces is not None:
            self._forget_earlier_load(replaces)
        inserted = self._insert_rows()
        rejected = quarantine.quarantine_rejects(self, inserted)
        if rejected and not inserted:
            quarantine.refuse_unreadable(self, rejected)
        if not rejected:
            # Before any row is set aside: a continuation line must follow its order's first line, and the erasure
            # screen must see the customer it takes from it. (A rejected line leaves no gap in the row numbers.)
            order_values.fill_continuation_lines(self)
        erased = quarantine.quarantine_erased(self, self.erased)
        repeated = quarantine.quarantine_repeated_headers(self)
        ambiguous = self._interpret_values()
        set_aside = erased + repeated + ambiguous
        counts = (inserted + rejected, inserted - set_aside, rejected + set_aside)
        self._log(*counts)
        return counts

    def lineage(self) -> dict[str, object]:
        return {"source_file": self.file.source_file, "drop_date": self.drop_date, "loaded_at": self.loaded_at}

    def _forget_earlier_load(self, replaces: Entity) -> None:
        params = {"source_file": self.file.source_file}
        for table in {self.table, raw_table(replaces.name)}:
            self.con.execute(f"DELETE FROM {table} WHERE _source_file = $source_file", params)
        for table in ("_quarantine", "_ingest_log"):
            self.con.execute(f"DELETE FROM {raw_table(table)} WHERE source_file = $source_file", params)

    def _insert_rows(self) -> int:
        mapped = sorted(self.layout.mapping.items())
        targets = [col for _, col in mapped] + list(LINEAGE_COLUMNS)
        extras_sql, extras_params = self._extra_columns_sql()
        select = [cell(pos) for pos, _ in mapped] + [
            "$source_file", "$drop_date", "_ord", "$loaded_at", extras_sql,
        ]
        params: dict[str, object] = {}
        # What the file leaves out: lines without a quantity column are one unit each; amounts that name no
        # currency are in the mapping's currency.
        if self.entity.name == "order_items" and "quantity" not in targets:
            targets.append("quantity")
            select.append("'1'")
            self.notes.append("no quantity column: each line is one unit")
        if self.mapping.currency and "currency" in self.entity.column_names:
            params["currency"] = self.mapping.currency
            if "currency" in targets:
                select[targets.index("currency")] = f"coalesce({select[targets.index('currency')]}, $currency)"
            else:
                targets.append("currency")
                select.append("$currency")
        (inserted,) = self.con.execute(
            f"INSERT INTO {self.table} ({', '.join(map(identifier, targets))}) "
            f"SELECT {', '.join(select)} FROM {self.source.relation}",
            {**self.source.params, **self.lineage(), **extras_params, **params},
        ).fetchone()
        return inserted

    def _extra_columns_sql(self) -> tuple[str, dict[str, str]]:
        """A JSON object of the row's unknown columns, NULL when all of them are empty."""
        positions = self.layout.extra_positions
        if not positions:
            return "NULL", {}
        pairs = ", ".join(f"$extra{i}, {cell(pos)}" for i, pos in enumerate(positions))
        all_empty = " AND ".join(f"{cell(pos)} IS NULL" for pos in positions)
        params = {f"extra{i}": self.layout.names[pos] for i, pos in enumerate(positions)}
        return f"CASE WHEN {all_empty} THEN NULL ELSE CAST(json_object({pairs}) AS VARCHAR) END", params

    def _interpret_values(self) -> int:
        """Read the file's date columns and decimal mark from all their values, rewrite what dbt would misread, and
        quarantine rows whose date order cannot be decided; returns the number quarantined."""
        delivered = set(self.layout.mapping.values())
        columns = {c.name: c for c in self.entity.columns if c.name in delivered}
        params = {"source_file": self.file.source_file}
        numbers = [name for name, c in columns.items() if c.kind in ("amount", "number")]
        self._unwrap_excel_text(sorted(delivered))
        amounts = [name for name, c in columns.items() if c.kind == "amount"]
        self._read_local_money(delivered, amounts)
        self.amounts_without_currency = self._names_no_currency(delivered, amounts)
        try:
            decimal = values.decimal_mark(self.con, self.table, self.file.source_file, numbers,
                                          self.source.delimiter, self.mapping)
        except values.AmbiguousDecimal as doubt:
            raise IngestError(f"{self.file.display}: cannot tell its decimal mark: {doubt}; set decimal (\".\" or "
                              f"\",\") for {self.entity_named.name} in mapping.yml") from None
        readings = values.read_dates(
            self.con, self.table, self.file.source_file,
            [(name, c.personal) for name, c in columns.items() if c.kind == "date"], self.mapping, self.drop_date)
        self._check_time_zones(readings)
        self.interpretation = values.Interpretation(readings, decimal)
        self.notes += [reading.describe() for reading in readings if reading.format != "ISO"]
        if decimal == ",":
            self.notes.append("decimal comma")
        quarantined = 0
        for reading in readings:
            value = ("'(personal column: value withheld)'" if columns[reading.column].personal
                     else identifier(reading.column))
            if reading.ambiguous is not None:
                quarantined += quarantine.quarantine_where(
                    self, reading.ambiguous, "ambiguous date order",
                    f"'{reading.column} = ' || {value} || ': no value of the column decides {reading.undecided}; "
                    f"set date_format in mapping.yml'")
            if reading.unfit is not None:
                quarantined += quarantine.quarantine_where(
                    self, f"{identifier(reading.column)} is not null and {reading.unfit}",
                    "date does not fit date_format",
                    f"'{reading.column} = ' || {value} || ' is not {reading.format.removeprefix('mapping ')}; fix "
                    f"date_format in mapping.yml (it may name a format per column)'")
        assignments = [f"{identifier(r.column)} = coalesce({r.expression}, {identifier(r.column)})"
                       for r in readings if r.expression]
        if decimal == ",":
            assignments += [f"{identifier(c)} = {values.comma_decimal_expression(c)}" for c in numbers]
        if assignments:
            self.con.execute(f"UPDATE {self.table} SET {', '.join(assignments)} WHERE _source_file = $source_file",
                             params)
        order_values.keep_order_values_once(self)
        self._note_charges_beside_the_total()
        self._map_status_values()
        return quarantined

    def _unwrap_excel_text(self, columns: list[str]) -> None:
        """Cells written as Excel text formulas, ="3712345678901234561" (Taobao's order exports keep long ids from
        turning into 3.71E+18 so), read as the text inside. Which columns write them is judged on the file's first
        rows; only those are rewritten."""
        if not columns:
            return
        params = {"source_file": self.file.source_file}
        flags = self.con.execute(
            "SELECT " + ", ".join(f"coalesce(bool_or(starts_with({identifier(c)}, '=\"')), false)" for c in columns)
            + f" FROM (SELECT * FROM {self.table} WHERE _source_file = $source_file LIMIT {EXCEL_TEXT_SAMPLE})",
            params).fetchone()
        wrapped = [column for column, flag in zip(columns, flags) if flag]
        if not wrapped:
            return
        self.con.execute(f"UPDATE {self.table} SET " + ", ".join(
            f"{identifier(c)} = CASE WHEN {identifier(c)} LIKE '=\"%\"' THEN substr({identifier(c)}, 3, "
            f"length({identifier(c)}) - 3) ELSE {identifier(c)} END" for c in wrapped)
            + " WHERE _source_file = $source_file", params)
        self.notes.append(f"Excel text formulas (=\"...\") read as their text: {', '.join(wrapped)}")

    def _check_time_zones(self, readings: list[values.DateReading]) -> None:
        """Times written with a time zone: converted to the mapping's timezone when it has one. Without one they are
        read as written, each in its own zone, which is right only while the file's zones are at most an hour apart
        (one place's winter and summer time): else a duration between two times would be off by hours, so the file
        stops."""
        zoned = {r.column: r.zones for r in readings if r.zones}
        if not zoned:
            return
        written = "; ".join(f"{column}: {', '.join(zones)}" for column, zones in zoned.items())
        where = f"for {self.entity_named.name} in mapping.yml"
        for column, zones in zoned.items():
            unread = [zone for zone, offsets in zones.items() if None in offsets]
            if unread:
                raise IngestError(f"{self.file.display}: {column} names a time zone that cannot be applied "
                                  f"({', '.join(unread)}): an unknown zone name, or a date before it that is not "
                                  f"written year first; write such times as 2024-03-05 14:22:01-08:00")
        if self.mapping.timezone:
            return
        offsets = sorted({o for zones in zoned.values() for each in zones.values() for o in each})
        if offsets[-1] - offsets[0] > 60:
            raise IngestError(f"{self.file.display}: its times are written in time zones more than an hour apart "
                              f"({written}), so as written they are not comparable (a duration between two would "
                              f"be off by hours); set timezone {where} (e.g. timezone: America/Los_Angeles, or "
                              f"UTC) to convert them to one")
        self.notes.append(f"times read as written in their time zone ({written}); set timezone {where} to convert "
                          f"them")

    def _read_local_money(self, delivered: set[str], amounts: list[str]) -> None:
        """A Japanese or Korean file's amounts: the currency must be said (the default currency reads a bare amount
        as itself, and ¥ as CNY unless it is JPY), and its ¥ or ₩, written as the byte those encodings share with
        the backslash, reads as ¥ or ₩ again."""
        encoding = self.mapping.encoding or ""
        symbol = next((s for s, codecs in encodings.LOCAL_MONEY.items() if encoding.startswith(codecs)), None)
        if not amounts or symbol is None:
            return
        if not self.mapping.currency and "currency" not in delivered:
            likely = {"¥": "yen", "₩": "won"}[symbol]
            raise IngestError(f"{self.file.display}: a {encoding} file's amounts are likely {likely}, but nothing "
                              f"says so (the default currency reads a bare amount as itself, and ¥ as CNY unless it "
                              f"is JPY): set currency: {'JPY' if symbol == '¥' else 'KRW'} (or the currency they "
                              f"are in) for {self.entity_named.name} in mapping.yml")
        rewritten = ", ".join(f"{identifier(c)} = replace({identifier(c)}, '\\', {literal(symbol)})" for c in amounts)
        self.con.execute(f"UPDATE {self.table} SET {rewritten} WHERE _source_file = $source_file",
                         {"source_file": self.file.source_file})

    def _note_charges_beside_the_total(self) -> None:
        """A total read as the amount next to shipping or tax columns (Etsy's Order Total and Sales Tax, Xero's Total
        and TaxTotal) may include them, and revenue would then count them: said in the progress line, with what to
        map instead. Whether it does, only the system's documentation knows."""
        total = next((c for c in ("amount", "line_amount") if c in self.layout.mapping.values()), None)
        charges = [name for name in self.layout.extras if CHARGE_COLUMN.search(normalise_header(name))]
        if total is None or not charges:
            return
        self.notes.append(f"{self.layout.file_column(total)!r} is read as the {total.replace('_', ' ')}; the file also "
                          f"has {', '.join(repr(c) for c in charges[:4])}: if the total includes them, revenue does "
                          f"too; map the merchandise total as {total} in mapping.yml")

    def _names_no_currency(self, delivered: set[str], amounts: list[str]) -> bool:
        """Whether the file has amounts and nothing names their currency: no mapping currency, no currency column
        (a blank cell of one is a missing value, as in any column), no symbol or code in any amount. Such amounts
        are the default currency's only if a setting says so (the ingest asset decides,
        dagster_project.defs.assets.ingest). Lines that do not carry their order's customer or date complete orders
        of another file, and are priced in those orders' currency."""
        if not amounts or self.mapping.currency or "currency" in delivered:
            return False
        if self.entity.name == "order_items" and not delivered & {"customer_id", "order_date"}:
            return False
        named = [f"regexp_matches({identifier(c)}, $mark, 'i')" for c in amounts]
        (priced, said) = self.con.execute(
            f"SELECT count(*) FILTER (WHERE {' OR '.join(f'{identifier(c)} IS NOT NULL' for c in amounts)}), "
            f"count(*) FILTER (WHERE {' OR '.join(named)}) FROM {self.table} WHERE _source_file = $source_file",
            {"source_file": self.file.source_file, "mark": CURRENCY_IN_AMOUNT}).fetchone()
        return priced > 0 and said == 0

    def _map_status_values(self) -> None:
        """Rewrite the statuses (an opportunity's stages) mapping.yml's status_values maps, compared as dbt compares
        them, to the contract's (mapping.STATUSES). An order's status_overrides columns, kept aside as extra
        columns, win where their value maps to anything but paid: a refund approved on a Completed order."""
        column = STATUS_COLUMNS.get(self.entity.name, "status")
        delivered = set(self.layout.mapping.values())
        overrides = [self.layout.extra_column(name) for name in self.mapping.status_overrides]
        if not self.mapping.status_values or (column not in delivered and not overrides):
            return
        params = {"values": list(self.mapping.status_values), "targets": list(self.mapping.status_values.values()),
                  "source_file": self.file.source_file,
                  **{f"override{i}": "$." + json.dumps(name, ensure_ascii=False) for i, name in enumerate(overrides)}}
        override_values = [f"json_extract_string(_extra_columns, $override{i})" for i in range(len(overrides))]
        target = "coalesce({})".format(", ".join([
            *(f"nullif({self._mapped_status(value)}, 'paid')" for value in override_values),
            self._mapped_status(identifier(column))]))
        negated = [c for c in CREDIT_NOTE_AMOUNTS.get(self.entity.name, ()) if c in delivered]
        credit_note = f"{target} = '{CREDIT_NOTE}'"
        sets = [f"{identifier(column)} = CASE WHEN {credit_note} THEN 'refunded' ELSE {target} END",
                *(f"{identifier(c)} = CASE WHEN {credit_note} AND NOT starts_with(ltrim({identifier(c)}), '-') "
                  f"THEN '-' || ltrim({identifier(c)}) ELSE {identifier(c)} END" for c in negated)]
        (mapped,) = self.con.execute(
            f"UPDATE {self.table} SET {', '.join(sets)} WHERE _source_file = $source_file AND {target} IS NOT NULL",
            params).fetchone()
        if mapped:
            self.notes.append(f"{mapped:,} status value(s) mapped by status_values in mapping.yml")
        for name, value in zip(overrides, override_values):
            unmapped = self.con.execute(
                f"SELECT {value} AS v, count(*) FROM {self.table} WHERE _source_file = $source_file AND {value} "
                f"IS NOT NULL AND {self._mapped_status(value)} IS NULL GROUP BY v ORDER BY count(*) DESC, v LIMIT 5",
                params).fetchall()
            if unmapped:
                self.notes.append(f"{name}: values status_values does not map, which leave the status as it was: "
                                  + ", ".join(f"{v} ({n:,})" for v, n in unmapped))

    @staticmethod
    def _mapped_status(expression: str) -> str:
        """SQL: the target status_values maps a delivered value to, NULL when it maps none."""
        return f"map_extract_value(MAP($values, $targets), {fold_status_sql(expression)})"

    def _log(self, rows_read: int, rows_loaded: int, rows_quarantined: int) -> None:
        self.con.execute(
            f"INSERT INTO {raw_table('_ingest_log')} ({', '.join(identifier(c) for c, _ in INGEST_LOG_COLUMNS)}) "
            f"VALUES ({', '.join('$' + c for c, _ in INGEST_LOG_COLUMNS)})",
            {
                "source_file": self.file.source_file,
                "entity": self.entity.name,
                "drop_date": self.drop_date,
                "content_sha256": self.fp.sha256,
                "size_bytes": self.fp.size,
                "encoding": self.source.encoding,
                "delimiter": self.source.delimiter,
                "header": json.dumps(self.layout.header, ensure_ascii=False),
                "column_map": json.dumps(self.layout.column_map, ensure_ascii=False),
                "extra_columns": json.dumps(self.layout.extras, ensure_ascii=False),
                "rows_read": rows_read,
                "rows_loaded": rows_loaded,
                "rows_quarantined": rows_quarantined,
                "loaded_at": self.loaded_at,
                "dropped_as": self.entity_named.name,
                "date_formats": self.interpretation.log_json(),
                "decimal_mark": self.interpretation.decimal,
                "mapping_sha256": self.mapping.fingerprint,
                "file_identity": self.fp.identity,
                "amounts_without_currency": self.amounts_without_currency,
            },
        )
