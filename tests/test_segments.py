"""Properties of the segmentation functions on a small simulated CRM (a few thousand customers)."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from dagster_project.analytics import segments as seg

AS_OF = date(2024, 6, 30)
N_CUSTOMERS = 3000


@pytest.fixture(scope="module")
def crm() -> dict[str, pd.DataFrame]:
    """Customers with a latent buying rate; orders (some cancelled, some after AS_OF), interactions, opportunities."""
    rng = np.random.default_rng(7)
    keys = np.array([f"C{i:05d}" for i in range(N_CUSTOMERS)])
    signup = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 4 * 365, N_CUSTOMERS), unit="D")
    customers = pd.DataFrame({
        "customer_key": keys,
        "signup_date": signup,
        "region": rng.choice(["north", "south", "east", None], N_CUSTOMERS),
        "age_band": rng.choice(["<25", "25-34", "35-44", "unknown"], N_CUSTOMERS),
        "gender": rng.choice(["female", "male", "unknown"], N_CUSTOMERS),
        "acquisition_channel": rng.choice(["web", "store", "referral"], N_CUSTOMERS),
    })

    per_customer = rng.poisson(rng.gamma(0.8, 4, N_CUSTOMERS))  # many one-timers and non-buyers, a long tail
    owner = np.repeat(np.arange(N_CUSTOMERS), per_customer)
    order_days = rng.integers(0, 4 * 365 + 60, len(owner))  # runs 60 days past AS_OF's horizon on purpose
    orders = pd.DataFrame({
        "order_id": np.arange(len(owner)),
        "customer_key": keys[owner],
        "order_date": signup[owner] + pd.to_timedelta(order_days % 900, unit="D"),
        "net_amount": rng.integers(5, 500, len(owner)).astype(float),  # whole units: float sums are exact
        "is_paid": rng.random(len(owner)) < 0.93,
    })

    n_events = 20_000
    interactions = pd.DataFrame({
        "customer_key": keys[rng.integers(0, N_CUSTOMERS, n_events)],
        "interaction_type": rng.choice(
            ["email_sent", "email_open", "email_click", "call", "web_visit", "chat"], n_events),
        "occurred_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 600, n_events), unit="D"),
    })
    return {"customers": customers, "orders": orders, "interactions": interactions,
            "opportunities": _opportunities(rng, keys)}


def _opportunities(rng: np.random.Generator, keys: np.ndarray, n: int = 800) -> pd.DataFrame:
    """Half linked to customers, half anonymous leads; each progressed a random number of stages, some closed."""
    created = pd.Timestamp("2023-06-01") + pd.to_timedelta(rng.integers(0, 450, n), unit="D")
    reached = rng.integers(1, 6, n)  # 1=new .. 5=negotiation
    outcome = rng.choice(["open", "won", "lost"], n)
    frame = pd.DataFrame({
        "opportunity_id": np.arange(n),
        "customer_key": np.where(rng.random(n) < 0.5, keys[rng.integers(0, len(keys), n)], None),
        "created_at": created,
    })
    for order, stage in enumerate(("new", "contacted", "qualified", "proposal", "negotiation"), start=1):
        frame[f"{stage}_at"] = created.where(reached >= order) + pd.to_timedelta(order * 7, unit="D")
    end = created + pd.to_timedelta(60, unit="D")
    frame["won_at"] = end.where(outcome == "won")
    frame["lost_at"] = end.where(outcome == "lost")
    frame["closed_at"] = end.where(outcome != "open")
    return frame


def _paid_until(orders: pd.DataFrame, as_of: date = AS_OF) -> pd.DataFrame:
    return orders[orders["is_paid"] & (orders["order_date"] <= pd.Timestamp(as_of))]


# ---------------------------------------------------------------------------------------------------------------- RFM

def test_rfm_complete_exclusive_and_only_paid_history(crm):
    rfm = seg.rfm_segments(crm["orders"], AS_OF)
    paid = _paid_until(crm["orders"])
    assert rfm["customer_key"].is_unique
    assert set(rfm["customer_key"]) == set(paid["customer_key"])
    assert rfm["segment"].isin(seg.RFM_SEGMENTS).all()
    assert (rfm["recency_days"] >= 0).all()
    assert rfm["frequency"].sum() == len(paid)


def test_rfm_quintiles_balanced_and_ordered(crm):
    rfm = seg.rfm_segments(crm["orders"], AS_OF)
    n = len(rfm)
    for col in ("r_score", "f_score", "m_score"):
        counts = rfm[col].value_counts()
        assert sorted(counts.index) == [1, 2, 3, 4, 5]
        assert (counts - n / 5).abs().max() <= 1  # heavy ties (one-order customers) still split evenly
    by_r = rfm.groupby("r_score")["recency_days"]
    assert (by_r.min().iloc[:-1].to_numpy() >= by_r.max().iloc[1:].to_numpy()).all()  # R5 = most recent
    by_f = rfm.groupby("f_score")["frequency"]
    assert (by_f.max().iloc[:-1].to_numpy() <= by_f.min().iloc[1:].to_numpy()).all()


def test_rfm_segment_map_covers_every_score_combination(crm):
    combos = {f"{r}{f}{m}" for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
    assert set(seg.RFM_SEGMENT_MAP) == combos
    assert set(seg.RFM_SEGMENT_MAP.values()) == set(seg.RFM_SEGMENTS)  # every named segment is reachable
    rfm = seg.rfm_segments(crm["orders"], AS_OF)
    assert (rfm["segment"] == rfm["rfm_score"].map(seg.RFM_SEGMENT_MAP)).all()
    assert seg.RFM_SEGMENT_MAP["555"] == "champions" and seg.RFM_SEGMENT_MAP["111"] == "lost"


def test_rfm_tiny_base_still_scores_top_customer_five():
    orders = pd.DataFrame({"customer_key": ["a"], "order_date": [pd.Timestamp("2024-06-01")], "net_amount": [10.0]})
    row = seg.rfm_segments(orders, AS_OF).iloc[0]
    assert (row["r_score"], row["f_score"], row["m_score"]) == (5, 5, 5)


def test_a_customers_spend_is_the_exact_cent_sum_of_their_orders():
    """0.1 + 0.2 + 0.3 is 0.6000000000000001 in floating point, and a parallel sum's order changes from run to run."""
    orders = pd.DataFrame({"customer_key": ["a"] * 3, "net_amount": [0.1, 0.2, 0.3],
                           "order_date": pd.to_datetime(["2024-06-01", "2024-06-02", "2024-06-03"])})
    assert seg.rfm_segments(orders, AS_OF)["monetary"].tolist() == [0.6]
    assert seg.cpm_states(orders, AS_OF)["total_spend"].tolist() == [0.6]


# ---------------------------------------------------------------------------------------------------------------- CPM

def test_cpm_complete_exclusive_and_consistent(crm):
    cpm = seg.cpm_states(crm["orders"], AS_OF)
    assert cpm["customer_key"].is_unique
    assert set(cpm["customer_key"]) == set(_paid_until(crm["orders"])["customer_key"])
    assert cpm["cpm_state"].isin(seg.CPM_STATES).all()
    assert set(cpm["cpm_state"]) == set(seg.CPM_STATES)  # the simulation populates all ten groups
    assert (cpm["is_lapsed"] == (cpm["days_since_last"] >= 365)).all()
    assert (cpm["is_lapsed"] == cpm["cpm_state"].isin(seg.CPM_LAPSED_STATES)).all()
    one_timers = cpm["purchases"] == 1
    assert (one_timers == cpm["cpm_state"].isin(["new", "first-time lapsed"])).all()
    loyal = cpm[cpm["cpm_state"].isin(["loyal", "important retention"])]
    assert (loyal["total_spend"] >= cpm.attrs["high_spend"]).all()
    assert (loyal["purchase_interval_days"] >= 365).all()


def test_cpm_thresholds_are_configurable(crm):
    never_lapse = seg.cpm_states(crm["orders"], AS_OF, seg.CpmThresholds(lapse_days=10_000))
    assert not never_lapse["is_lapsed"].any()
    pinned = seg.cpm_states(crm["orders"], AS_OF, seg.CpmThresholds(high_spend=math.inf, high_ticket=math.inf))
    assert not pinned["cpm_state"].isin(["loyal", "important retention"]).any()


# ------------------------------------------------------------------------------------------------------------ deciles

def test_deciles_partition_revenue_exactly(crm):
    result = seg.spend_deciles(crm["orders"], AS_OF)
    table, paid = result.table, _paid_until(crm["orders"])
    assert list(table["decile"]) == list(range(1, 11))
    assert table["revenue"].sum() == paid["net_amount"].sum()  # whole-unit amounts: exact in float
    assert table["customers"].sum() == paid["customer_key"].nunique()
    assert table["orders"].sum() == len(paid)
    assert table["customers"].max() - table["customers"].min() <= 1
    assert table["cumulative_share"].iloc[-1] == 1.0
    assert table["revenue_share"].sum() == pytest.approx(1.0)
    spend_per_customer = table["revenue"] / table["customers"]
    assert spend_per_customer.is_monotonic_decreasing  # decile 1 = top spenders


def test_top20_share_matches_direct_computation(crm):
    result = seg.spend_deciles(crm["orders"], AS_OF)
    spend = _paid_until(crm["orders"]).groupby("customer_key")["net_amount"].sum().sort_values(ascending=False)
    direct = spend.iloc[: math.ceil(0.2 * len(spend))].sum() / spend.sum()
    assert 0 < result.top20_share <= 1
    assert result.top20_share == pytest.approx(direct, rel=1e-12)


# ---------------------------------------------------------------------------------------------------------- lifecycle

def test_lifecycle_covers_customers_and_leads(crm):
    stages = seg.lifecycle_stages(crm["customers"], crm["orders"], crm["interactions"], crm["opportunities"], AS_OF)
    opps = crm["opportunities"]
    leads = opps[opps["customer_key"].isna() & (opps["created_at"] <= pd.Timestamp(AS_OF))]
    signed_up = crm["customers"][crm["customers"]["signup_date"] <= pd.Timestamp(AS_OF)]
    expected = set(signed_up["customer_key"]) | {f"lead:{i}" for i in leads["opportunity_id"]}
    assert stages["customer_key"].is_unique
    assert expected <= set(stages["customer_key"])
    assert stages["lifecycle_stage"].isin(seg.LIFECYCLE_STAGES).all()
    assert set(stages["lifecycle_stage"]) == set(seg.LIFECYCLE_STAGES)
    assert stages.loc[stages["is_lead"], "customer_key"].str.startswith("lead:").all()


def test_lifecycle_rules(crm):
    stages = seg.lifecycle_stages(crm["customers"], crm["orders"], crm["interactions"], crm["opportunities"], AS_OF)
    buyers = stages["paid_orders"] > 0
    assert (buyers == stages["lifecycle_stage"].isin(["customer", "loyal", "churned"])).all()
    loyal = stages[stages["lifecycle_stage"] == "loyal"]
    assert (loyal["paid_orders"] >= 3).all() and (loyal["days_since_last_order"] < 180).all()
    churned = stages[stages["lifecycle_stage"] == "churned"]
    assert (churned["days_since_last_order"] >= 365).all()
    interested = stages[stages["lifecycle_stage"] == "interested"]
    assert (interested["engaged_recently"] | interested["opportunity_stage"].notna()).all()
    paid = _paid_until(crm["orders"]).groupby("customer_key").size()
    assert (stages.set_index("customer_key").loc[paid.index, "paid_orders"] == paid).all()


def test_lifecycle_ignores_events_after_as_of():
    customers = pd.DataFrame({"customer_key": ["a"], "signup_date": [pd.Timestamp("2024-01-01")]})
    late_order = pd.DataFrame({"customer_key": ["a"], "order_date": [pd.Timestamp("2024-07-02")], "net_amount": [5.0]})
    late_click = pd.DataFrame({"customer_key": ["a"], "interaction_type": ["email_click"],
                               "occurred_date": [pd.Timestamp("2024-07-01")]})
    stages = seg.lifecycle_stages(customers, late_order, late_click, None, AS_OF)
    assert stages["lifecycle_stage"].tolist() == ["potential"]


# ------------------------------------------------------------------------------------------------------- demographics

def test_demographic_cuts_reconcile(crm):
    cuts = seg.demographic_cuts(crm["customers"], crm["orders"], None, AS_OF)
    signed_up = crm["customers"][crm["customers"]["signup_date"] <= pd.Timestamp(AS_OF)]
    paid = _paid_until(crm["orders"])
    revenue = paid[paid["customer_key"].isin(signed_up["customer_key"])]["net_amount"].sum()
    assert list(cuts["dimension"].unique()) == list(seg.DEMOGRAPHIC_DIMENSIONS)
    totals = cuts.groupby("dimension")[["customers", "revenue"]].sum()
    assert (totals["customers"] == len(signed_up)).all()
    assert (totals["revenue"] == revenue).all()
    assert (cuts["buyers"] <= cuts["customers"]).all()
    assert cuts["repeat_rate"].between(0, 1).all()
    assert cuts["avg_clv"].isna().all() and cuts["total_clv"].isna().all()
    assert "unknown" in set(cuts.loc[cuts["dimension"] == "region", "value"])  # nulls are counted, not dropped


def test_demographic_cuts_with_clv(crm):
    clv = pd.DataFrame({"customer_key": crm["customers"]["customer_key"], "clv_12m": 10.0})
    cuts = seg.demographic_cuts(crm["customers"], crm["orders"], clv)
    gender = cuts[cuts["dimension"] == "gender"]
    assert gender["total_clv"].sum() == pytest.approx(10.0 * N_CUSTOMERS)
    assert (gender["avg_clv"] == 10.0).all()


# -------------------------------------------------------------------------------------------------------------- empty

def test_empty_inputs_give_empty_frames_with_columns():
    empty = pd.DataFrame()
    assert list(seg.rfm_segments(empty, AS_OF).columns) == list(seg.RFM_COLUMNS)
    assert list(seg.cpm_states(None, AS_OF).columns) == list(seg.CPM_COLUMNS)
    deciles = seg.spend_deciles(empty, AS_OF)
    assert deciles.table.empty and list(deciles.table.columns) == list(seg.DECILE_COLUMNS)
    assert math.isnan(deciles.top20_share)
    stages = seg.lifecycle_stages(empty, empty, None, None, AS_OF)
    assert stages.empty and list(stages.columns) == list(seg.LIFECYCLE_COLUMNS)
    cuts = seg.demographic_cuts(empty, empty, None, AS_OF)
    assert cuts.empty and list(cuts.columns) == list(seg.DEMOGRAPHIC_COLUMNS)


def test_orders_as_an_arrow_table_give_the_same_segments_as_a_frame(crm):
    # The assets read orders from the warehouse as Arrow (no Python object per key); the frame path is the reference.
    # Whole-unit amounts: the sums are exact whatever order DuckDB adds them in.
    import pyarrow as pa

    from dagster_project.analytics.cohorts import monthly_cohorts

    frame = crm["orders"].assign(customer_key=crm["orders"]["customer_key"].where(crm["orders"].index % 97 != 0))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(table.column_names.index("is_paid"), "is_paid",
                             pa.array([None if n % 89 == 0 else v for n, v in enumerate(frame["is_paid"])]))
    frame = frame.assign(is_paid=table["is_paid"].to_pandas())  # the same nulls: unknown counts as unpaid in both
    for name, compute in {
        "rfm": lambda orders: seg.rfm_segments(orders, AS_OF),
        "cpm": lambda orders: seg.cpm_states(orders, AS_OF),
        "deciles": lambda orders: seg.spend_deciles(orders, AS_OF).table,
        "cohorts": lambda orders: monthly_cohorts(orders, AS_OF),
        "demographics": lambda orders: seg.demographic_cuts(crm["customers"], orders, None, AS_OF),
        "lifecycle": lambda orders: seg.lifecycle_stages(crm["customers"], orders, crm["interactions"],
                                                         crm["opportunities"], AS_OF),
    }.items():
        expected, got = compute(frame), compute(table)
        assert len(expected) > 0, name
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=name)
