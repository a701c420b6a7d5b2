"""What a failed expectation says, in one line, wherever it is shown: the refresh's error (``crm-warehouse: error:
refresh failed: ...``), the Dagster asset check's description and metadata, and the values kept in
``quality.quality_results``.

    suite marts_fct_orders, rule expect_column_values_to_be_between(amount, min 0, max 10000000), column amount:
    3 of 120 rows fail, e.g. 64794816.41

The counts and examples are Great Expectations' own (``unexpected_count``, ``element_count``,
``partial_unexpected_list``, the rows an ``unexpected_rows_expectation`` returned). Values of personal columns (names,
e-mails, phones, birth dates, CRM customer ids: docs/marts.md "personal data") are never shown: the raw suites read
tables that hold them, and the quality results are published with the marts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagster_project.contract import ENTITIES
from dagster_project.quality.suites import SQL_RULE as SQL_EXPECTATION

if TYPE_CHECKING:
    from dagster_project.quality.results import ExpectationOutcome

WITHHELD = "(personal column: value withheld)"
# Personal data by column name, in the raw tables, the restricted schema and anything an expectation's query returns;
# plus every contract column marked personal.
PERSONAL_COLUMNS = frozenset({
    "customer_id", "source_customer_id", "golden_customer_id", "person_id",
    "name", "full_name", "customer_name", "contact_name", "rep_name",
    "email", "email_address", "phone", "phone_number", "mobile",
    "birth_date", "birthday", "date_of_birth",
}) | frozenset(c.name for e in ENTITIES for c in e.columns if getattr(c, "personal", False))

# Examples shown per failed expectation, list items shown per argument, characters shown per value.
EXAMPLES, LIST_ITEMS, VALUE_CHARS = 3, 5, 60
# kwargs shown under a shorter name; the rest as name=value. Not shown: the column (named apart) and the query
# (the description names a SQL expectation).
SHORT_ARGUMENTS = {"min_value": "min", "max_value": "max", "value_set": "in", "type_": "type", "type_list": "types",
                   "column_set": "columns", "mostly": "mostly", "value": "value", "regex": "regex"}
HIDDEN_ARGUMENTS = {"column", "unexpected_rows_query", "batch_id", "result_format", "include_config",
                    "catch_exceptions"}


def is_personal(column: str | None) -> bool:
    return bool(column) and any(part.strip() in PERSONAL_COLUMNS for part in str(column).split(","))


def redact_values(column: str | None, values: Sequence[Any] | None) -> Sequence[Any] | None:
    """Unexpected values of `column` as they may be stored and shown: a personal column's values withheld (nulls
    kept, they disclose nothing)."""
    if values is None or not is_personal(column):
        return values
    return [None if value is None else WITHHELD for value in values]


def redact_rows(rows: Sequence[Any] | None) -> Sequence[Any] | None:
    """Rows an expectation's query returned, with the values of personal columns withheld."""
    if rows is None:
        return None
    return [{k: (WITHHELD if is_personal(k) and v is not None else v) for k, v in row.items()}
            if isinstance(row, Mapping) else row for row in rows]


def redact_observed(column: str | None, observed: Any) -> Any:
    """An observed value that could be one of a personal column's values (a min, a max, a most common value);
    counts and shares stay."""
    if is_personal(column) and not isinstance(observed, (int, float, bool, type(None))):
        return WITHHELD
    return observed


# ------------------------------------------------------------------------------------------------ one line


def rule_text(outcome: ExpectationOutcome) -> str:
    """`expect_column_values_to_be_between(amount, min 0, max 10000000)`; a SQL expectation by its description."""
    if outcome.expectation_type == SQL_EXPECTATION:
        return f'{SQL_EXPECTATION} "{outcome.description}"' if outcome.description else SQL_EXPECTATION
    arguments = [outcome.kwargs["column"]] if outcome.kwargs.get("column") else []
    for name, value in outcome.kwargs.items():
        if name in HIDDEN_ARGUMENTS or value is None:
            continue
        if name in SHORT_ARGUMENTS:
            arguments.append(f"{SHORT_ARGUMENTS[name]} {_argument(value)}")
        else:
            arguments.append(f"{name}={_argument(value)}")
    return f"{outcome.expectation_type}({', '.join(arguments)})"


def result_text(outcome: ExpectationOutcome) -> str:
    """What was found: `3 of 120 rows fail, e.g. -5.0`, `query returned 1 row, e.g. newest=2026-05-28`,
    `observed 90`, or the error GE met."""
    details = outcome.details
    if isinstance(details, Mapping) and "error" in details:
        return f"could not be evaluated: {_one_line(details['error'])}"
    if outcome.not_applicable:
        return f"not applicable: {outcome.not_applicable}"
    if outcome.expectation_type == SQL_EXPECTATION:
        rows = outcome.observed_value if isinstance(outcome.observed_value, int) else len(details or [])
        text = f"query returned {rows} offending row{'' if rows == 1 else 's'}"
        examples = [_row(row) for row in (details or [])[:1]]
    elif outcome.unexpected_count is not None:
        count = outcome.unexpected_count
        text = (f"{count} of {outcome.element_count} rows fail" if outcome.element_count is not None
                else f"{count} rows fail")
        if outcome.kwargs.get("mostly") is not None and outcome.unexpected_percent is not None:
            text += (f" ({outcome.unexpected_percent:.1f}%, at most "
                     f"{100 * (1 - float(outcome.kwargs['mostly'])):.4g}% allowed)")
        examples = _examples(outcome)
    elif isinstance(details, Mapping) and "mismatched" in details:
        mismatched = details["mismatched"] or {}
        parts = [f"{what} columns {_list(mismatched[what])}" for what in ("unexpected", "missing")
                 if mismatched.get(what)]
        text = "; ".join(parts) or f"observed {_value(outcome.observed_value)}"
        examples = []
    else:
        text = f"observed {_value(outcome.observed_value)}"
        examples = []
    return f"{text}, e.g. {', '.join(examples)}" if examples else text


def failure_line(suite: str, outcome: ExpectationOutcome) -> str:
    """`suite S, rule R, column C: what was found` (no column part for table and SQL rules without one)."""
    column = f", column {outcome.column}" if outcome.column else ""
    return f"suite {suite}, rule {rule_text(outcome)}{column}: {result_text(outcome)}"


def summary(lines: Sequence[str], total: int | None = None, shown: int = 3) -> str:
    """`data check failed: <line>`, or `N data checks failed: <line>; <line>; <line> and M more`."""
    total = len(lines) if total is None else max(total, len(lines))
    if total == 1 and lines:
        return f"data check failed: {lines[0]}"
    text = f"{total} data checks failed: " + "; ".join(lines[:shown])
    return text + (f" and {total - min(shown, len(lines))} more" if total > min(shown, len(lines)) else "")


def _examples(outcome: ExpectationOutcome) -> list[str]:
    values = outcome.details if isinstance(outcome.details, list) else []
    if is_personal(outcome.column):
        # Whatever the details hold: a personal value is never shown, not even one stored before redaction existed.
        return [WITHHELD] if outcome.unexpected_count else []
    distinct = list(dict.fromkeys(_value(v) for v in values if v is not None))
    if not distinct and any(v is None for v in values):
        return ["null"]
    return distinct[:EXAMPLES]


def _row(row: Any) -> str:
    if not isinstance(row, Mapping):
        return _value(row)
    return ", ".join(f"{k}={WITHHELD if is_personal(k) and v is not None else _value(v)}" for k, v in row.items())


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value if len(value) <= VALUE_CHARS else value[:VALUE_CHARS] + "…"
        return json.dumps(text, ensure_ascii=False) if text != value or _needs_quotes(text) else text
    if isinstance(value, (list, tuple)):
        return _list(value)
    if isinstance(value, Mapping):
        return _one_line(json.dumps(value, default=str, ensure_ascii=False))
    return _one_line(str(value))


def _needs_quotes(text: str) -> bool:
    """Quote strings that would read as something else: empty, padded, with separators, or looking like a number."""
    if not text or text != text.strip() or any(c in text for c in ",;:\"'\n"):
        return True
    try:
        float(text)
        return True
    except ValueError:
        return text.lower() in {"null", "none", "true", "false"}


def _argument(value: Any) -> str:
    if isinstance(value, Mapping) and "$PARAMETER" in value:
        return f"${value['$PARAMETER']}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # GE reads a bound of 0 as 0.0
    return _value(value)


def _list(values: Iterable[Any]) -> str:
    items = list(values)
    shown = ", ".join(_value(v) for v in items[:LIST_ITEMS])
    return f"[{shown}{f', … {len(items) - LIST_ITEMS} more' if len(items) > LIST_ITEMS else ''}]"


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())
