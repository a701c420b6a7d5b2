"""The mapping file: what detection cannot know about an export, written down once by the user.

``mapping.yml`` at the root of the exports folder (or the file named by ``--mapping`` / ``CRM_MAPPING``) holds one
section per entity, named as the files are (``orders``, ``sales``, ``customers`` ...)::

    orders:
      header: [customer_id, date, number_of_cds, dollar_value]   # the file has no header row: these are its columns
      delimiter: whitespace            # , ; tab | or whitespace (columns aligned with spaces)
      decimal: "."                     # or "," (1.234,50)
      date_format: "%Y%m%d"            # strftime, for every date column of the entity's files, or per column:
                                       #   date_format: {order_date: "%m/%d/%Y", updated_at: "%m/%d/%Y %I:%M %p"}
      currency: USD                    # currency of amounts that name none
      grain: order                     # or line: one row per order line (detected when absent)
      encoding: windows-1252           # the files' encoding, when not UTF-8, GB18030 or UTF-16 with its mark
      skip_rows: 2                     # lines above the header (an Excel report's title) to leave out
      skip_footer: 4                   # lines below the rows (a report's footer), blank lines not counted
      timezone: America/New_York       # times written with a zone (Z, -0800) are converted to it
      files: ["Order.all.*.csv"]       # file names (* and ? wildcards) read as this entity, besides orders.csv & co.
      status_values:                   # statuses the contract does not know: for orders paid, cancelled, refunded
                                       #   or credit_note (refunded, its amount counted negative)
        pending: cancelled             #   (for tickets open, pending, resolved or closed; for opportunities the
                                       #   stage: new, contacted, qualified, proposal, negotiation, won or lost)
      status_overrides: ["Return / Refund Status"]   # more status columns of orders, kept aside: where one holds a
                                       #   value status_values maps to cancelled, refunded or credit_note, that is
                                       #   the order's status (Shopee's refund on a Completed order, Xero's DRAFT)
      columns:                         # name in the file: name in the contract
        dollar_value: amount
        date: order_date

Every problem stops the refresh with the file, the line and what is wrong, before anything is loaded.
"""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
import json
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dagster_project.contract import ENTITIES_BY_NAME, Entity, entity_for_file, normalise_header

MAPPING_FILE_NAME = "mapping.yml"
DELIMITERS = {",": ",", ";": ";", "|": "|", "tab": "\t", "\t": "\t", "whitespace": "whitespace"}
DECIMALS = (".", ",")
GRAINS = ("line", "order")
KEYS = ("columns", "header", "date_format", "delimiter", "decimal", "currency", "grain", "encoding", "skip_rows",
        "status_values", "timezone", "files", "skip_footer", "status_overrides")
# Settings added after mappings were first fingerprinted: left out of the fingerprint while unset, so that files
# loaded under a section that does not use them are not loaded again.
LATER_KEYS = {"encoding": None, "skip_rows": 0, "status_values": {}, "timezone": None, "files": (),
              "skip_footer": 0, "status_overrides": ()}
# What a status may be mapped to, by entity (dbt/macros/cleaning.sql order_status and ticket_status).
# A credit note (Xero's "Sales credit note", PayPal's "Refund" rows) is a refunded order whose amount counts negative,
# whatever sign the file writes it with.
CREDIT_NOTE = "credit_note"
ORDER_STATUSES = ("paid", "cancelled", "refunded", CREDIT_NOTE)
# The columns a credit note's rows write its amount in, by entity: negated when positive.
CREDIT_NOTE_AMOUNTS = {"orders": ("amount",), "order_items": ("quantity", "line_amount")}
STATUSES = {"orders": ORDER_STATUSES, "order_items": ORDER_STATUSES,
            "tickets": ("open", "pending", "resolved", "closed"),
            "opportunities": ("new", "contacted", "qualified", "proposal", "negotiation", "won", "lost")}
# The column status_values rewrites, by entity (a CRM's deal stages: Appointment Scheduled, Closed Won ...).
STATUS_COLUMNS = {"opportunities": "stage"}
# Entities a file may be routed between by its grain: a mapping's columns may name either's columns.
ORDER_ENTITIES = ("orders", "order_items")
# strftime directives a date_format may use (what DuckDB's strptime reads).
DATE_DIRECTIVES = set("YymdHMSfpbBjIe%zZaAU")


class MappingError(ValueError):
    """The mapping file cannot be used; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class EntityMapping:
    """What the mapping file says about one entity's files; every field optional."""

    columns: dict[str, str] = field(default_factory=dict)  # folded file header -> contract column
    header: tuple[str, ...] | None = None
    date_format: str | dict[str, str] | None = None  # one strftime format, or one per contract column
    delimiter: str | None = None  # one character, or "whitespace"
    decimal: str | None = None
    currency: str | None = None
    grain: str | None = None
    encoding: str | None = None  # a Python codec name ("cp1252" for windows-1252)
    skip_rows: int = 0
    skip_footer: int = 0
    status_values: dict[str, str] = field(default_factory=dict)  # folded status value -> paid / cancelled / refunded
    timezone: str | None = None  # an IANA name: what times written with a time zone are converted to
    files: tuple[str, ...] = ()  # file name patterns (fnmatch, any case) of files read as this entity
    status_overrides: tuple[str, ...] = ()  # folded file headers of more status columns, kept as extra columns

    def date_format_of(self, column: str) -> str | None:
        if isinstance(self.date_format, dict):
            return self.date_format.get(column)
        return self.date_format

    @property
    def fingerprint(self) -> str:
        """A hash of the section: a file loaded under another mapping is loaded again."""
        section = {k: v for k, v in self.__dict__.items() if k not in LATER_KEYS or v != LATER_KEYS[k]}
        text = json.dumps(section, sort_keys=True, default=list, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


NO_MAPPING = EntityMapping()


@dataclass(frozen=True)
class Mapping:
    path: Path | None = None
    entities: dict[str, EntityMapping] = field(default_factory=dict)

    def for_entity(self, entity: Entity) -> EntityMapping:
        return self.entities.get(entity.name, NO_MAPPING)

    def entity_of_file(self, name: str) -> Entity | None:
        """The entity whose `files` patterns match a file name (real systems name their exports as they please:
        hubspot-crm-exports-all-deals-2024-03-31.csv, Order.all.20240301_20240331.csv)."""
        for entity_name, section in self.entities.items():
            if any(fnmatch.fnmatch(name.lower(), pattern.lower()) for pattern in section.files):
                return ENTITIES_BY_NAME[entity_name]
        return None


def load_mapping(path: Path | None) -> Mapping:
    """The mapping in `path` (None or a missing default file: no mapping)."""
    if path is None:
        return Mapping()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(f"{path}: cannot read the mapping file: {error}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise MappingError(f"{path}{where}: not valid YAML: {problem}") from None
    if root is None:
        return Mapping(path)
    _expect(path, root, yaml.MappingNode, "the mapping file must map entity names to settings")
    entities: dict[str, EntityMapping] = {}
    for key_node, section in root.value:
        name = _scalar(path, key_node)
        entity = ENTITIES_BY_NAME.get(name) or entity_for_file(name)
        if entity is None:
            known = ", ".join(ENTITIES_BY_NAME)
            raise MappingError(f"{path}:{_line(key_node)}: unknown entity '{name}' (known: {known})")
        if entity.name in entities:
            raise MappingError(f"{path}:{_line(key_node)}: entity '{entity.name}' is mapped twice")
        entities[entity.name] = _entity_mapping(path, entity, section)
        claimed = [(name, p) for name, other in entities.items() if name != entity.name for p in other.files
                   if p.lower() in {q.lower() for q in entities[entity.name].files}]
        if claimed:
            raise MappingError(f"{path}:{_line(key_node)}: files '{claimed[0][1]}' is also listed for {claimed[0][0]}")
    return Mapping(path, entities)


def _entity_mapping(path: Path, entity: Entity, node) -> EntityMapping:
    _expect(path, node, yaml.MappingNode, f"the settings of '{entity.name}' must be a mapping of {', '.join(KEYS)}")
    values: dict[str, object] = {}
    for key_node, value in node.value:
        key = _scalar(path, key_node)
        if key not in KEYS:
            raise MappingError(f"{path}:{_line(key_node)}: unknown setting '{key}' for '{entity.name}' "
                               f"(known: {', '.join(KEYS)})")
        values[key] = _setting(path, entity, key, value)
    if values.get("status_overrides") and not values.get("status_values"):
        raise MappingError(f"{path}:{_line(node)}: status_overrides needs status_values, to say which of their values "
                           f"override the status (e.g. {{refund approved: refunded}})")
    return EntityMapping(**values)


def _setting(path: Path, entity: Entity, key: str, node) -> object:
    where = f"{path}:{_line(node)}"
    if key == "columns":
        _expect(path, node, yaml.MappingNode, "columns must map a file's column name to a contract column name")
        allowed = _contract_columns(entity)
        columns: dict[str, str] = {}
        for name_node, target_node in node.value:
            source, target = _scalar(path, name_node), _scalar(path, target_node)
            if target not in allowed:
                raise MappingError(f"{path}:{_line(target_node)}: '{target}' is not a column of {entity.name} "
                                   f"(columns: {', '.join(sorted(allowed))})")
            if target in columns.values():
                raise MappingError(f"{path}:{_line(target_node)}: two file columns are mapped to '{target}'")
            columns[normalise_header(source)] = target
        return columns
    if key == "header":
        _expect(path, node, yaml.SequenceNode, "header must be a list of column names, e.g. [customer_id, date]")
        header = tuple(_scalar(path, item) for item in node.value)
        if not header or any(not name.strip() for name in header):
            raise MappingError(f"{where}: header must list at least one non-empty column name")
        return header
    if key == "status_values":
        return _status_values(path, entity, node)
    if key == "status_overrides":
        if entity.name not in ORDER_ENTITIES:
            raise MappingError(f"{where}: status_overrides names more status columns of orders, not of {entity.name}")
        _expect(path, node, yaml.SequenceNode, 'status_overrides must be a list of file column names, e.g. '
                                               '["Return / Refund Status"]')
        names = tuple(normalise_header(_scalar(path, item)) for item in node.value)
        if not names or not all(names):
            raise MappingError(f"{where}: status_overrides must list at least one column name")
        return names
    if key == "files":
        _expect(path, node, yaml.SequenceNode, 'files must be a list of file names, e.g. ["Order.all.*.csv"]')
        patterns = tuple(_scalar(path, item).strip() for item in node.value)
        if not patterns or any(not p or "/" in p or "\\" in p for p in patterns):
            raise MappingError(f"{where}: files must list file names (with * or ? wildcards), not paths")
        return patterns
    if key == "date_format" and isinstance(node, yaml.MappingNode):
        allowed = _contract_columns(entity)
        formats = {}
        for column_node, format_node in node.value:
            column = _scalar(path, column_node)
            if column not in allowed:
                raise MappingError(f"{path}:{_line(column_node)}: '{column}' is not a column of {entity.name} "
                                   f"(columns: {', '.join(sorted(allowed))})")
            formats[column] = _date_format(path, format_node)
        return formats
    value = _scalar(path, node)
    if key == "delimiter":
        if value not in DELIMITERS:
            raise MappingError(f"{where}: delimiter '{value}' is not one of , ; | tab whitespace")
        return DELIMITERS[value]
    if key == "decimal":
        if value not in DECIMALS:
            raise MappingError(f"{where}: decimal must be \".\" or \",\", not '{value}'")
        return value
    if key == "grain":
        if value not in GRAINS:
            raise MappingError(f"{where}: grain must be line or order, not '{value}'")
        if entity.name != "orders":
            raise MappingError(f"{where}: grain applies to files named as orders (orders, sales, ...), not to "
                               f"{entity.name}: an order-lines file is read as order lines")
        return value
    if key == "currency":
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise MappingError(f"{where}: currency must be a three-letter ISO code such as USD, not '{value}'")
        return value.upper()
    if key == "date_format":
        return _date_format(path, node)
    if key == "encoding":
        try:
            "".encode(value)  # LookupError for unknown codecs and for bytes-to-bytes ones (base64, hex)
            codec = codecs.lookup(value)
        except LookupError:
            raise MappingError(f"{where}: '{value}' is not a text encoding Python knows (e.g. utf-8, windows-1252, "
                               f"latin-1, gb18030, big5, shift_jis)") from None
        return "utf-8" if codec.name == "utf-8-sig" else codec.name
    if key == "timezone":
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise MappingError(f"{where}: timezone '{value}' is not a time zone name (e.g. UTC, Europe/Berlin, "
                               f"America/New_York, Asia/Shanghai)") from None
        return value
    if key in ("skip_rows", "skip_footer"):
        if not re.fullmatch(r"\d{1,4}", value):
            raise MappingError(f"{where}: {key} must be a whole number of lines, not '{value}'")
        return int(value)
    raise AssertionError(key)


def _status_values(path: Path, entity: Entity, node) -> dict[str, str]:
    if entity.name not in STATUSES:
        raise MappingError(f"{path}:{_line(node)}: status_values maps the statuses of orders and tickets and the "
                           f"stages of opportunities, not the values of {entity.name}")
    targets = STATUSES[entity.name]
    listed = f"{', '.join(targets[:-1])} or {targets[-1]}"
    _expect(path, node, yaml.MappingNode, f"status_values must map a status as the file writes it to {listed}, e.g. "
                                          f"{{{targets[1]}_in_the_file: {targets[1]}}}")
    values: dict[str, str] = {}
    for value_node, target_node in node.value:
        value, target = fold_status(_scalar(path, value_node)), _scalar(path, target_node)
        if target not in targets:
            raise MappingError(f"{path}:{_line(target_node)}: a status of {entity.name} maps to {listed}, not "
                               f"'{target}'")
        if not value:
            raise MappingError(f"{path}:{_line(value_node)}: an empty status is paid already")
        values[value] = target
    return values


def fold_status(value: str) -> str:
    """A status as dbt compares it (crm.clean_code): trimmed, lower case, runs of spaces and dashes as one '_'."""
    return re.sub(r"[\s\-]+", "_", value.strip()).lower()


def fold_status_sql(expression: str) -> str:
    """SQL: fold_status of a text expression, as ingestion compares a delivered status with status_values' keys."""
    return f"lower(regexp_replace(trim({expression}), '[\\s\\-]+', '_', 'g'))"


def _date_format(path: Path, node) -> str:
    value = _scalar(path, node)
    directives = set(re.findall(r"%(.)", value))
    if not directives or not directives <= DATE_DIRECTIVES or "'" in value:
        raise MappingError(f"{path}:{_line(node)}: date_format '{value}' is not a strftime format such as %d/%m/%Y")
    return value


def _contract_columns(entity: Entity) -> set[str]:
    names = set(entity.column_names)
    if entity.name in ORDER_ENTITIES:
        for other in ORDER_ENTITIES:
            names |= set(ENTITIES_BY_NAME[other].column_names)
    return names


def _scalar(path: Path, node) -> str:
    _expect(path, node, yaml.ScalarNode, "expected a single value here")
    return str(node.value)


def _expect(path: Path, node, kind, problem: str) -> None:
    if not isinstance(node, kind):
        raise MappingError(f"{path}:{_line(node)}: {problem}")


def _line(node) -> int:
    return node.start_mark.line + 1
