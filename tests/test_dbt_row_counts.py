"""Row counts on dbt's materialisations (dagster_project/defs/assets/dbt_row_counts.py): logged counts go out with
each event at once; without one (Spark), events are held in order and counted after the build; a failure still
reports what dbt emitted. (The counts of a real build equal the tables': tests/test_report.py.)"""

from __future__ import annotations

import pytest
from dagster import AssetCheckResult, AssetMaterialization, Output

from dagster_project.defs.assets.dbt_row_counts import LoggedRowCounts, with_row_counts

MANIFEST = {"nodes": {
    "model.crm.a": {"schema": "marts", "alias": "a", "config": {"materialized": "table"}},
    "model.crm.b": {"schema": "marts", "alias": "b", "config": {"materialized": "incremental"}},
    "model.crm.v": {"schema": "staging", "alias": "v", "config": {"materialized": "view"}},
}}


def output(unique_id: str) -> Output:
    return Output(None, output_name=unique_id.split(".")[-1], metadata={"unique_id": unique_id})


def log(msg: str) -> dict:
    return {"info": {"name": "JinjaLogInfo"}, "data": {"msg": msg}}


def test_a_logged_count_goes_out_with_its_event_at_once_and_a_missing_one_is_counted_after_in_order():
    logged, counted_after, seen = LoggedRowCounts(), [], []
    logged.note(log("crm row count: model.crm.a 42"))
    logged.note({"info": {"name": "LogModelResult"}, "data": {"msg": "crm row count: model.crm.b 7"}})  # not a log

    def events():
        yield output("model.crm.a")
        seen.append("a consumed")
        yield output("model.crm.b")  # no count logged: held from here on
        yield AssetCheckResult(asset_key="b", check_name="unique_b_id", passed=True)
        yield output("model.crm.v")  # a view: never counted

    def count_after_build(tables):
        counted_after.append(tables)
        return {"model.crm.b": 3}

    stream = with_row_counts(events(), MANIFEST, logged, count_after_build)
    first = next(stream)
    assert first.metadata["dagster/row_count"].value == 42 and seen == []  # out before dbt's next event was read
    rest = list(stream)
    assert counted_after == [{"model.crm.b": ("marts", "b")}]
    assert [getattr(e, "output_name", None) or e.check_name for e in rest] == ["b", "unique_b_id", "v"]
    assert rest[0].metadata["dagster/row_count"].value == 3 and "dagster/row_count" not in rest[2].metadata


def test_after_a_failure_the_emitted_events_go_out_uncounted_then_the_failure():
    def events():
        yield output("model.crm.b")
        yield AssetMaterialization(asset_key="b", metadata={"unique_id": "model.crm.b"})
        raise RuntimeError("dbt build failed")

    def never(tables):
        raise AssertionError("no count after a failure")

    stream = with_row_counts(events(), MANIFEST, LoggedRowCounts(), never)
    got = []
    with pytest.raises(RuntimeError, match="dbt build failed"):
        for event in stream:
            got.append(event)
    assert len(got) == 2 and all("dagster/row_count" not in e.metadata for e in got)
