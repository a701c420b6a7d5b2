"""The sample generator: layout, determinism, ground truth and the behaviour the analytics rely on."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dagster_project.contract import ENTITIES, ENTITIES_BY_NAME, match_columns
from dagster_project.sample_data import generate, written_columns

END = date(2026, 10, 31)
DROPS = [END - timedelta(days=k) for k in (3, 2, 1, 0)]
GB_FILE = f"{DROPS[2]}/customers.csv"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "export"
    return generate(out, customers=1500, seed=7, end_date=END)


def decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def read(path: Path, entity: str) -> pd.DataFrame:
    """A drop file with canonical column names (mapped through the contract, as ingestion does)."""
    frame = pd.read_csv(io.StringIO(decode(path)), dtype=str, keep_default_na=False)
    mapping, _ = match_columns(ENTITIES_BY_NAME[entity], list(frame.columns))
    return frame.rename(columns={frame.columns[pos]: name for pos, name in mapping.items()})


def read_all(out: Path, entity: str) -> pd.DataFrame:
    return pd.concat([read(p, entity).assign(_file=f"{p.parent.name}/{p.name}")
                      for p in sorted(out.glob(f"*/{entity}.csv"))], ignore_index=True)


def amount(text: pd.Series) -> pd.Series:
    return pd.to_numeric(text.str.replace(r"[¥$,]", "", regex=True), errors="coerce")


def day(text: pd.Series) -> pd.Series:
    """The calendar day of any of the generator's date formats (NaT for the planted garbage)."""
    parts = text.str.extract(r"^\s*(\d{4})\D(\d{1,2})\D(\d{1,2})")
    return pd.to_datetime(parts[0] + "-" + parts[1] + "-" + parts[2], errors="coerce", format="%Y-%m-%d")


@pytest.fixture(scope="module")
def truth(sample) -> pd.DataFrame:
    return pd.read_parquet(sample.truth_dir / "customers_truth.parquet")


@pytest.fixture(scope="module")
def issues(sample) -> pd.DataFrame:
    return pd.read_parquet(sample.truth_dir / "planted_issues.parquet")


@pytest.fixture(scope="module")
def orders(sample) -> pd.DataFrame:
    return read_all(sample.out_dir, "orders")


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    def files(seed: int, name: str) -> dict[str, bytes]:
        """Every file of the export and of its truth folder, by relative path."""
        generate(tmp_path / name / "export", customers=300, days=120, seed=seed, end_date=END)
        return {str(p.relative_to(tmp_path / name)): p.read_bytes()
                for p in sorted((tmp_path / name).rglob("*")) if p.is_file()}

    first, again, other = files(3, "a"), files(3, "b"), files(4, "c")
    assert "export_truth/customers_truth.parquet" in first and first.keys() == again.keys()
    assert all(first[name] == again[name] for name in first)
    assert first["export/2026-10-28/orders.csv"] != other["export/2026-10-28/orders.csv"]


def test_drop_folders_and_files(sample):
    assert sample.drop_dates == DROPS
    assert sorted(p.name for p in sample.out_dir.iterdir()) == [d.isoformat() for d in DROPS]
    snapshot = {p.stem for p in (sample.out_dir / DROPS[0].isoformat()).glob("*.csv")}
    assert snapshot == {e.name for e in ENTITIES}
    for delta in DROPS[1:]:
        names = {p.stem for p in (sample.out_dir / delta.isoformat()).glob("*.csv")}
        assert {"customers", "orders", "order_items", "interactions"} <= names
        assert not names & {"products", "sales_reps"}
    assert sorted(sample.files) == sorted(sample.out_dir.glob("*/*.csv"))
    written = {e.name: sum(len(read(p, e.name)) for p in sample.out_dir.glob(f"*/{e.name}.csv")) for e in ENTITIES}
    assert written == sample.rows
    assert 8 * 1500 < sample.rows["orders"] < 12 * 1500
    assert any("persons" in line for line in sample.lines())


def test_headers_map_to_the_contract(sample):
    for path in sample.files:
        entity = ENTITIES_BY_NAME[path.stem]
        headers = decode(path).splitlines()[0].split(",")
        mapping, extras = match_columns(entity, headers)
        assert sorted(mapping.values()) == sorted(written_columns(entity.name)), path
        assert extras == (["priority"] if path == sample.out_dir / DROPS[0].isoformat() / "tickets.csv" else []), path
    assert decode(sample.out_dir / DROPS[3].isoformat() / "orders.csv").startswith("order_no,cust_id,")


def test_encodings(sample):
    gb = (sample.out_dir / GB_FILE).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gb.decode("utf-8")
    text = gb.decode("gb18030")
    assert text.startswith("客户编号,姓名,邮箱,手机")
    assert "\r\n" in text and "年" in text.splitlines()[1]
    assert (sample.out_dir / DROPS[0].isoformat() / "customers.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    for path in sample.files:
        if path != sample.out_dir / GB_FILE:
            path.read_bytes().decode("utf-8")


def test_ground_truth_is_outside_the_export_and_consistent(sample, truth, issues, orders):
    assert sample.truth_dir == sample.out_dir.parent / "export_truth"
    assert not list(sample.out_dir.rglob("*.parquet")) and not list(sample.out_dir.rglob("*.json"))
    assert truth.customer_id.is_unique
    per_person = truth.groupby("person_id").customer_id.nunique()
    assert 0.015 < (per_person > 1).mean() < 0.05  # ~3% of persons have a second id
    assert truth.groupby("person_id").is_primary.sum().eq(1).all()
    households = truth[truth.household_id.notna() & truth.is_primary].groupby("household_id").person_id.nunique()
    assert len(households) > 0 and (households == 2).all()  # two different persons share a phone

    known = set(truth.customer_id)
    assert set(orders.customer_id) <= known
    interactions = read_all(sample.out_dir, "interactions")
    orphans = set(issues[issues.kind == "orphan_customer"].key)
    unknown = interactions[~interactions.customer_id.isin(known)]
    assert set(unknown.interaction_id) == orphans and len(orphans) > 0
    for entity in ("tickets", "surveys"):
        assert set(read_all(sample.out_dir, entity).customer_id) <= known
    assert set(read_all(sample.out_dir, "opportunities").customer_id) - {""} <= known

    params = json.loads((sample.truth_dir / "params.json").read_text())
    assert set(params["bg_nbd"]) == {"r", "alpha", "a", "b"} and set(params["gamma_gamma"]) == {"p", "q", "v"}
    assert params["seed"] == 7 and params["drop_dates"] == [d.isoformat() for d in DROPS]


def test_duplicates_are_matchable_and_households_are_not_one_person(sample, truth):
    customers = read_all(sample.out_dir, "customers").drop_duplicates("customer_id", keep="last")
    customers = customers.merge(truth[["customer_id", "person_id"]], on="customer_id")
    customers["email_key"] = customers.email.str.strip().str.lower()
    customers["phone_key"] = customers.phone.str.replace(r"\D", "", regex=True).str[-11:]
    second = customers.merge(customers, on="person_id").query("customer_id_x < customer_id_y")
    assert len(second) > 0
    same_email = (second.email_key_x == second.email_key_y) & (second.email_key_x != "")
    same_phone = (second.phone_key_x == second.phone_key_y) & (second.phone_key_x != "")
    assert (same_email | same_phone).all()
    assert (second.email_x != second.email_y).any() and (second.phone_x != second.phone_y).any()
    shared = customers[customers.phone_key != ""].groupby("phone_key").person_id.nunique()
    assert (shared > 1).any()


def test_order_lines_add_up_to_the_order_amount(sample, issues, orders):
    lines = read_all(sample.out_dir, "order_items").drop_duplicates(["order_id", "line_number"])
    broken = set(issues[issues.entity == "order_items"].key.str.split("|").str[0])
    lines = lines[~lines.order_id.isin(broken)]
    value = pd.to_numeric(lines.quantity) * amount(lines.unit_price) - amount(lines.discount)
    totals = value.groupby(lines.order_id).sum()
    headers = orders.drop_duplicates("order_id").set_index("order_id")
    joined = headers.join(totals.rename("lines"), how="inner")
    assert len(joined) > 0.99 * len(headers)
    np.testing.assert_allclose(joined.lines, amount(joined.amount), atol=0.005)
    assert set(orders.currency) >= {"CNY", "", "USD", "EUR"}


def test_planted_issues_are_where_the_truth_says(sample, issues, orders):
    assert set(issues.kind) == {"unparseable_date", "negative_quantity", "non_numeric_quantity", "orphan_order",
                                "orphan_customer"}
    for (entity, file), group in issues.groupby(["entity", "file"]):
        rows = read(sample.out_dir / file, entity)
        key = rows.order_id + "|" + rows.line_number if entity == "order_items" else rows[
            ENTITIES_BY_NAME[entity].key[0]]
        found = rows[key.isin(group.key)].assign(key=key).merge(group, on="key")
        assert len(found) == len(group), file
        for kind, hits in found.groupby("kind"):
            if kind == "unparseable_date":
                assert day(hits.order_date).isna().all()
            elif kind == "negative_quantity":
                assert (pd.to_numeric(hits.quantity) < 0).all()
            elif kind == "non_numeric_quantity":
                assert pd.to_numeric(hits.quantity, errors="coerce").isna().all()
            elif kind == "orphan_order":
                assert not hits.order_id.isin(orders.order_id).any()
    assert len(issues) < 0.01 * (sample.rows["order_items"] + sample.rows["interactions"] + sample.rows["orders"])


def test_dropped_out_customers_never_order_after_their_dropout_date(truth, orders):
    dated = orders.assign(day=day(orders.order_date)).dropna(subset=["day"])
    dated = dated.merge(truth[["customer_id", "dropout_date"]], on="customer_id")
    dropped = dated[dated.dropout_date.notna()]
    assert len(dropped) > 0 and (dropped.day < pd.to_datetime(dropped.dropout_date)).all()
    assert 0.2 < (~truth.is_alive_at_end).mean() < 0.7


def test_seasonality_is_visible(orders):
    per_day = orders.assign(day=day(orders.order_date)).dropna(subset=["day"]).groupby("day").size()
    dates = per_day.index
    november = per_day[dates.month == 11]
    assert november[november.index.day == 11].mean() > 1.8 * november[november.index.day != 11].mean()
    assert per_day[dates.day_of_week >= 5].mean() > 1.08 * per_day[dates.day_of_week < 5].mean()


def test_churn_shows_in_emails_and_nps(sample, truth):
    interactions = read_all(sample.out_dir, "interactions").merge(truth, on="customer_id")
    interactions["day"] = day(interactions.occurred_at)
    late = interactions.dropout_date.notna() & (
        interactions.day >= pd.to_datetime(interactions.dropout_date) - pd.Timedelta(days=60))

    def open_rate(mask: pd.Series) -> float:
        kinds = interactions[mask].interaction_type.value_counts()
        return kinds.get("email_open", 0) / kinds["email_sent"]

    assert open_rate(late) < 0.5 * open_rate(interactions.is_alive_at_end)
    surveys = read_all(sample.out_dir, "surveys").merge(truth, on="customer_id")
    nps = pd.to_numeric(surveys.nps)
    assert nps[~surveys.is_alive_at_end].mean() < nps[surveys.is_alive_at_end].mean() - 1.5


def test_deltas_carry_new_versions_late_rows_and_redeliveries(sample, orders):
    snapshot, deltas = DROPS[0].isoformat(), [d.isoformat() for d in DROPS[1:]]
    opportunities = read_all(sample.out_dir, "opportunities")
    in_snapshot = set(opportunities[opportunities._file.str.startswith(snapshot)].opportunity_id)
    moved = opportunities[opportunities._file.str[:10].isin(deltas) & opportunities.opportunity_id.isin(in_snapshot)]
    assert len(moved) > 0
    assert opportunities.groupby(["opportunity_id", "stage"]).size().eq(1).all()  # one row per stage change

    customers = read_all(sample.out_dir, "customers")
    base = set(customers[customers._file.str.startswith(snapshot)].customer_id)
    assert customers[customers._file.str[:10].isin(deltas)].customer_id.isin(base).any()
    tickets = read_all(sample.out_dir, "tickets")
    assert tickets[tickets._file.str[:10].isin(deltas)].ticket_id.isin(
        set(tickets[tickets._file.str.startswith(snapshot)].ticket_id)).any()

    in_deltas = orders[orders._file.str[:10].isin(deltas)]
    assert (day(in_deltas.order_date) < pd.Timestamp(DROPS[0])).any()  # late arrivals
    repeated = orders[orders.duplicated("order_id", keep=False)]
    assert len(repeated) > 0 and repeated.drop(columns="_file").duplicated(keep=False).all()  # unchanged


def test_truth_dir_inside_the_export_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path / "export", customers=10, truth_dir=tmp_path / "export" / "truth")
