"""Running an analytics query over the marts, tolerating a warehouse where a mart it reads does not exist yet."""

from __future__ import annotations

import re

import duckdb
import pandas as pd


def query_marts(con: duckdb.DuckDBPyConnection, sql: str, params: dict, columns: tuple[str, ...]) -> pd.DataFrame:
    """Run ``sql``; if a ``marts`` table it reads does not exist, return an empty frame with ``columns``."""
    if not marts_exist(con, sql):
        return pd.DataFrame(columns=list(columns))
    return con.execute(sql, params).df()


def marts_exist(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Whether every ``marts`` table ``sql`` reads exists."""
    existing = {
        name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
        ).fetchall()
    }
    return set(re.findall(r"\bmarts\.(\w+)", sql)) <= existing
