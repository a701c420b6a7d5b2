"""The human report: one static HTML page of a run's expectation results, written beside the published warehouse
(``<warehouse dir>/quality/index.html``) and replaced atomically, so a reader never sees half a page."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

import duckdb

from dagster_project.quality.messages import result_text
from dagster_project.quality.results import (
    FAILED,
    NOT_APPLICABLE,
    ExpectationOutcome,
    latest_results,
    suite_history,
)
from dagster_project.report.files import write_report as write_page
from dagster_project.settings import DEFAULT_PUBLISHED_MODE

HISTORY_RUNS = 20

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.pass { color: #1a7f37; } .warn { color: #9a6700; } .stop { color: #cf222e; font-weight: bold; }
.na { color: #6e7781; font-style: italic; }
tr.failed-stop { background: #ffebe9; } tr.failed-warn { background: #fff8c5; } tr.not-applicable { color: #6e7781; }
code { font-size: 0.8rem; white-space: pre-wrap; word-break: break-word; }
"""


def write_report(con: duckdb.DuckDBPyConnection, path: Path, run_id: str, mode: int = DEFAULT_PUBLISHED_MODE) -> Path:
    write_page(render(run_id, latest_results(con, run_id), suite_history(con, HISTORY_RUNS)), path, mode)
    return path


def render(run_id: str, rows: Sequence[dict], history: Sequence[tuple]) -> str:
    suites = [(suite, list(results)) for suite, results in groupby(rows, key=lambda r: r["suite"])]
    checked_at = max((r["checked_at"] for r in rows), default=None)
    as_of = next((r["as_of_date"] for r in rows if r["as_of_date"]), None)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Data quality: run {_e(run_id)}</title><style>{STYLE}</style></head><body>",
        "<h1>Data quality</h1>",
        f"<p>Run <code>{_e(run_id)}</code>, checked {_e(checked_at)} UTC, "
        f"as-of date {_e(as_of or 'not resolved yet')}. "
        "Great Expectations suites from <code>expectations/</code>; every result is also in "
        "<code>quality.quality_results</code>. A rule on a column the export never delivered is "
        "<span class='na'>not applicable</span>: not run, neither a failure nor a warning.</p>",
        "<h2>Suites</h2><table><tr><th>suite</th><th>table</th><th>expectations</th><th>failed (stop)</th>"
        "<th>failed (warn)</th><th>not applicable</th><th>status</th></tr>",
    ]
    for suite, results in suites:
        stop = sum(1 for r in results if _status(r) == FAILED and r["severity"] == "stop")
        warn = sum(1 for r in results if _status(r) == FAILED and r["severity"] == "warn")
        not_applicable = sum(1 for r in results if _status(r) == NOT_APPLICABLE)
        status = ("<span class='stop'>blocked</span>" if stop else "<span class='warn'>warnings</span>" if warn
                  else "<span class='pass'>passed</span>")
        parts.append(f"<tr><td><a href='#{_e(suite)}'>{_e(suite)}</a></td><td>{_e(results[0]['asset_key'])}</td>"
                     f"<td>{len(results)}</td><td>{stop}</td><td>{warn}</td><td>{not_applicable}</td>"
                     f"<td>{status}</td></tr>")
    parts.append("</table>")
    for suite, results in suites:
        parts.append(f"<h2 id='{_e(suite)}'>{_e(suite)}</h2><table><tr><th>expectation</th><th>column</th>"
                     "<th>arguments</th><th>observed</th><th>unexpected</th><th>result</th><th>details</th></tr>")
        for r in results:
            status = _status(r)
            row_class = {FAILED: f" class='failed-{r['severity']}'", NOT_APPLICABLE: " class='not-applicable'"}.get(
                status, "")
            result = {FAILED: f"<span class='{r['severity']}'>fail ({r['severity']})</span>",
                      NOT_APPLICABLE: "<span class='na'>not applicable</span>"}.get(
                status, "<span class='pass'>pass</span>")
            unexpected = "" if r["unexpected_count"] is None else (
                f"{r['unexpected_count']} ({r['unexpected_percent'] or 0:.2f}%)")
            label = _e(r["expectation_type"])
            if r["description"]:
                label += f"<br><small>{_e(r['description'])}</small>"
            parts.append(f"<tr{row_class}><td>{label}</td><td>{_e(r['column_name'] or '')}</td>"
                         f"<td><code>{_e(_arguments(r['kwargs']))}</code></td>"
                         f"<td>{_e(r['observed_value'] or '')}</td><td>{_e(unexpected)}</td><td>{result}</td>"
                         f"<td>{_details(r, status)}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Recent runs</h2><table><tr><th>run</th><th>checked at</th><th>suites</th><th>expectations</th>"
                 "<th>failed (stop)</th><th>failed (warn)</th><th>not applicable</th></tr>")
    for run, at, n_suites, n_expectations, stop, warn, not_applicable in history:
        parts.append(f"<tr><td><code>{_e(run)}</code></td><td>{_e(at)}</td><td>{n_suites}</td>"
                     f"<td>{n_expectations}</td><td>{stop}</td><td>{warn}</td><td>{not_applicable}</td></tr>")
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def _status(row: dict) -> str:
    """A row's status; rows appended before the column existed have it filled from success."""
    return row.get("status") or ("passed" if row["success"] else FAILED)


def _details(row: dict, status: str) -> str:
    """Why a rule did not apply; for a failure, what was found in words (the message the refresh and Dagster show)
    above the stored sample; else the sample."""
    details = json.loads(row["details"]) if row["details"] else None
    if status == NOT_APPLICABLE:
        return _e((details or {}).get("not_applicable", ""))
    raw = f"<code>{_e(row['details'] or '')}</code>"
    if status != FAILED:
        return raw
    return f"{_e(result_text(_outcome(row, details)))}<br>{raw}"


def _outcome(row: dict, details) -> ExpectationOutcome:
    return ExpectationOutcome(
        expectation_type=row["expectation_type"], column=row["column_name"],
        kwargs=json.loads(row["kwargs"]) if row["kwargs"] else {},
        observed_value=json.loads(row["observed_value"]) if row["observed_value"] else None,
        unexpected_count=row["unexpected_count"], unexpected_percent=row["unexpected_percent"],
        success=row["success"], severity=row["severity"], details=details, description=row["description"],
        element_count=row.get("element_count"))


def _arguments(kwargs_json: str | None) -> str:
    """Arguments without the column (its own cell) and with SQL shown as written."""
    kwargs = json.loads(kwargs_json) if kwargs_json else {}
    kwargs.pop("column", None)
    query = kwargs.pop("unexpected_rows_query", None)
    text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in kwargs.items())
    return "\n".join(part for part in (text, " ".join(query.split()) if query else "") if part)


def _e(value) -> str:
    return html.escape(str(value), quote=True)
