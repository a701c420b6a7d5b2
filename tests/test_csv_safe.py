"""Spreadsheet-safe CSV writing: formula neutralisation (OWASP rule) and atomic replacement of the target file."""

from __future__ import annotations

import csv
import os
import stat
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dagster_project.csv_safe import neutralise_cell, write_csv


def read_back(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    with open(path, encoding=encoding, newline="") as f:
        return list(csv.reader(f))


# ------------------------------------------------------------------------------------------------ neutralise_cell


@pytest.mark.parametrize("text", [
    "=1+1", '=HYPERLINK("http://x.example/","click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1)",
    "\t=1+1", "\rlead", "-", "+", "=", "@", "-1+1", "+1-", "-12.5\n=cmd", "-٣", "- 5", "-inf", "-nan", "=-1",
])
def test_text_a_spreadsheet_would_evaluate_gets_a_leading_quote(text):
    assert neutralise_cell(text) == "'" + text


@pytest.mark.parametrize("text", [
    "plain", "", " =1+1", "a=b", "'=already quoted", "1+1", "王小明", "e=mc2",
    "-12.5", "+8613800138000", "-0", "-.5", "+3.", "-1e-3", "1E+5", "42",
])
def test_other_text_and_plain_numbers_are_unchanged(text):
    assert neutralise_cell(text) == text


@pytest.mark.parametrize("value", [-5, -1.5, float("-inf"), Decimal("-3.10"), True, None, date(2026, 1, 1),
                                   datetime(2026, 1, 1, 12), b"=raw bytes", ["=x"]])
def test_values_that_are_not_text_are_returned_as_they_are(value):
    assert neutralise_cell(value) is value


# ------------------------------------------------------------------------------------------------ write_csv


def test_a_data_frame_is_written_with_neutralised_text_header_included(tmp_path):
    frame = pd.DataFrame({
        "name": ["=1+1", "-2+3", "@rep", "\tlead", "王小明", 'say "hi", then\nleave', None],
        "amount": [-5.5, 12.0, 0.0, float("nan"), 1e-7, -3.0, 2.5],
        "units": pd.array([-1, 2, None, 4, 5, 6, 7], dtype="Int64"),
        "=cmd|' /C calc'!A0": ["+x", "-1", "-1.5", "", "ok", "@", pd.NA],
        "when": pd.to_datetime(["2026-01-01", None, "2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06",
                                "2026-01-07"]),
    })
    target = tmp_path / "out.csv"

    written = write_csv(frame, target)

    assert written == 7
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_back(target) == [
        ["name", "amount", "units", "'=cmd|' /C calc'!A0", "when"],
        ["'=1+1", "-5.5", "-1", "'+x", "2026-01-01 00:00:00"],
        ["'-2+3", "12.0", "2", "-1", ""],
        ["'@rep", "0.0", "", "-1.5", "2026-01-03 00:00:00"],
        ["'\tlead", "", "4", "", "2026-01-04 00:00:00"],
        ["王小明", "1e-07", "5", "ok", "2026-01-05 00:00:00"],
        ['say "hi", then\nleave', "-3.0", "6", "'@", "2026-01-06 00:00:00"],
        ["", "2.5", "7", "", "2026-01-07 00:00:00"],
    ]


def test_a_duckdb_relation_is_streamed_in_batches_with_the_same_rules(tmp_path):
    con = duckdb.connect()
    relation = con.sql("""
        select range as id,
               case range % 4 when 0 then '=HYPERLINK(''x'')' when 1 then '-' || range when 2 then '@' || range end
                   as note,
               -range * 1.5 as amount,
               cast(-range as decimal(12, 2)) as money
        from range(25000)
    """)
    target = tmp_path / "mart.csv"

    assert write_csv(relation, target, encoding="utf-8") == 25000

    rows = read_back(target, encoding="utf-8")
    assert rows[0] == ["id", "note", "amount", "money"]
    assert rows[1:5] == [
        ["0", "'=HYPERLINK('x')", "0.0", "0.00"],
        ["1", "-1", "-1.5", "-1.00"],
        ["2", "'@2", "-3.0", "-2.00"],
        ["3", "", "-4.5", "-3.00"],
    ]
    assert len(rows) == 25001 and rows[-1] == ["24999", "", "-37498.5", "-24999.00"]
    assert not target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert not any(cell.startswith(("=", "@", "+", "\t", "\r")) for row in rows for cell in row)


def test_the_target_is_replaced_whole_and_no_temporary_file_is_left(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old,content\n")

    write_csv(pd.DataFrame({"a": ["=new"]}), target)

    assert read_back(target) == [["a"], ["'=new"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot format this cell")


def test_a_failure_midway_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old,content\n")
    frame = pd.DataFrame({"a": ["fine"] * 1000 + [Unprintable()]})

    with pytest.raises(duckdb.Error, match="cannot format this cell"):
        write_csv(frame, target)
    with pytest.raises(duckdb.Error, match="boom"):
        write_csv(duckdb.connect().sql("select case when range < 20000 then 'x' else error('boom') end as a "
                                       "from range(30000)"), target)

    assert target.read_text() == "old,content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_new_file_gets_the_usual_permissions_not_owner_only(tmp_path):
    previous = os.umask(0o022)
    try:
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == 0o644


def test_anything_else_is_refused(tmp_path):
    with pytest.raises(TypeError, match="pandas DataFrame or a DuckDB relation, not list"):
        write_csv([["=1"]], tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []
