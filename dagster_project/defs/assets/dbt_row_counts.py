"""`dagster/row_count` on the materialisation of each table dbt builds, as dbt reports the table.

dbt holds DuckDB's writer lock until it exits, so the refresh cannot count a table while dbt builds. On DuckDB a
post-hook of every model and seed (dbt/macros/row_counts.sql) counts the table as soon as it is built and logs the
count, which dbt's event stream brings here before the model's result: each materialisation then goes to Dagster at
once, with its count, while dbt builds the next model (the UI shows the models as they are built, and storing the
events overlaps the build). Where no count was logged (on Spark, where the hook is empty: a count there is a job per
table), the events are held from that materialisation on, in their order (a dbt test's evaluation must follow its
model's materialisation), and the missing counts are read in one query after the build. (dagster-dbt's own
`fetch_row_counts()` waits for dbt to exit too, and leaves the dbt adapter's connection open in this process with
another configuration, after which every later asset fails to connect.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dagster import AssetMaterialization, Output

from dagster_project.sql import row_counts_query

# What dbt builds as a table (views are not counted: counting one runs its whole query); the post-hook counts the same.
COUNTED_MATERIALIZATIONS = frozenset({"table", "incremental", "seed"})
# The line the post-hook logs (dbt/macros/row_counts.sql).
_LOGGED = re.compile(r"^crm row count: (\S+) (\d+)$")


class LoggedRowCounts:
    """The counts the post-hooks logged so far, by dbt unique id: `note` sees every raw dbt event."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def note(self, raw_event: Mapping[str, Any]) -> None:
        if raw_event.get("info", {}).get("name") != "JinjaLogInfo":
            return
        logged = _LOGGED.match(str(raw_event.get("data", {}).get("msg", "")))
        if logged:
            self.counts[logged[1]] = int(logged[2])


def with_row_counts(events: Iterator, manifest: Mapping[str, Any], logged: LoggedRowCounts,
                    count_after_build) -> Iterator:
    """dbt's events with `dagster/row_count` added to each table model's materialisation.

    `count_after_build(tables)` counts {unique id: (schema, name)} once dbt has exited, for the tables whose count was
    not logged. When dbt fails, the events it did emit (materialisations, failed tests) are still reported, those held
    without counts, before the failure is raised."""
    held, missing, failure = [], {}, None
    try:
        for event in events:
            unique_id = _unique_id(event)
            node = manifest["nodes"].get(unique_id) if unique_id is not None else None
            if node and node["config"]["materialized"] in COUNTED_MATERIALIZATIONS:
                if unique_id in logged.counts:
                    event = _with_count(event, logged.counts[unique_id])
                else:
                    missing[unique_id] = (node["schema"], node["alias"])
            if held or unique_id in missing:
                held.append(event)
            else:
                yield event
    except Exception as error:  # re-raised below, after the events that were emitted
        failure = error
    # After a failure the events still go out, uncounted: a counting error must not hide dbt's own.
    counts = count_after_build(missing) if missing and failure is None else {}
    for event in held:
        unique_id = _unique_id(event)
        yield _with_count(event, counts[unique_id]) if unique_id in counts else event
    if failure is not None:
        raise failure


def count_after_build(warehouse) -> Callable[[Mapping[str, tuple[str, str]]], dict[str, int]]:
    """What counts {unique id: (schema, name)} in the warehouse's engine, once dbt has exited, in one query."""
    def count(tables: Mapping[str, tuple[str, str]]) -> dict[str, int]:
        if warehouse.on_spark:
            from dagster_project.spark.engine import row_counts

            counts = row_counts(warehouse, list(tables.values()))
        else:
            with warehouse.connect(read_only=True) as con:
                counts = [count for _, count in con.execute(row_counts_query(list(tables.values()))).fetchall()]
        return dict(zip(tables, counts, strict=True))
    return count


def _with_count(event, count: int):
    return event.with_metadata({**event.metadata, "dagster/row_count": count})


def _unique_id(event) -> str | None:
    """The dbt node a materialisation is for (dagster-dbt puts it in the metadata)."""
    if not isinstance(event, (Output, AssetMaterialization)) or "unique_id" not in event.metadata:
        return None
    return event.metadata["unique_id"].value
