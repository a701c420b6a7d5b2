"""Funnel, rep and service analytics on small hand-made / simulated marts in a temporary DuckDB file (campaigns:
test_campaigns.py, which builds its marts with ``make_marts`` from here)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import install_customer_measures

from dagster_project.analytics import sales, service

# Only the mart columns the analytics read.
MARTS = {
    "fct_opportunities": "opportunity_id VARCHAR, customer_key VARCHAR, created_at TIMESTAMP, source VARCHAR, "
    "campaign_id VARCHAR, amount DOUBLE, owner_rep_id VARCHAR, closed_at TIMESTAMP, "
    + ", ".join(f"{s}_at TIMESTAMP" for s in sales.STAGES),
    "fct_opportunity_stages": "opportunity_id VARCHAR, stage VARCHAR, stage_order INTEGER, entered_at TIMESTAMP, "
    "exited_at TIMESTAMP, days_in_stage DOUBLE",
    "fct_orders": "order_id VARCHAR, customer_key VARCHAR, order_at TIMESTAMP, order_date DATE, status VARCHAR, "
    "amount DOUBLE, net_amount DOUBLE, is_paid BOOLEAN",
    "dim_sales_reps": "rep_id VARCHAR, rep_name VARCHAR, team VARCHAR, region VARCHAR",
    "dim_campaigns": "campaign_id VARCHAR, campaign_name VARCHAR, channel VARCHAR, start_date DATE, end_date DATE, "
    "cost DOUBLE",
    "fct_interactions": "customer_key VARCHAR, interaction_type VARCHAR, occurred_at TIMESTAMP, occurred_date DATE, "
    "campaign_id VARCHAR",
    "dim_customers": "customer_key VARCHAR, signup_date DATE",
    "fct_tickets": "customer_key VARCHAR, opened_at TIMESTAMP, first_response_at TIMESTAMP, resolved_at TIMESTAMP, "
    "is_resolved BOOLEAN, category VARCHAR, rep_id VARCHAR, satisfaction INTEGER, first_response_hours DOUBLE, "
    "resolution_hours DOUBLE",
    "fct_surveys": "customer_key VARCHAR, answered_at TIMESTAMP, answered_date DATE, nps INTEGER, nps_group VARCHAR",
}

AS_OF = date(2024, 3, 31)


def make_marts(path, **frames: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """A DuckDB file with every mart table (typed, possibly empty), filled from ``frames`` by column name."""
    con = duckdb.connect(str(path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA marts")
    for table, columns in MARTS.items():
        con.execute(f"CREATE TABLE marts.{table} ({columns})")
    for table, frame in frames.items():
        con.register("frame", frame)
        con.execute(f"INSERT INTO marts.{table} BY NAME SELECT * FROM frame")
        con.unregister("frame")
    install_customer_measures(con)
    return con


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- funnel -------------------------------------------------------------------------------------------------------

# (id, customer, source, campaign, rep, amount, {stage: entered}) -- the mart as refreshed after AS_OF.
HAND_OPPORTUNITIES = [
    ("O1", "K1", "web", "C1", "R1", 100.0, {"new": "2024-01-01", "contacted": "2024-01-03", "qualified": "2024-01-06",
                                           "proposal": "2024-01-10", "negotiation": "2024-01-15", "won": "2024-01-20"}),
    ("O2", "K2", "web", "C1", "R1", 50.0, {"new": "2024-01-05", "contacted": "2024-01-07", "lost": "2024-01-09"}),
    # skips 'qualified': still counts as having reached it
    ("O3", "K4", "referral", None, "R2", 70.0, {"new": "2024-02-01", "contacted": "2024-02-02",
                                                "proposal": "2024-02-10"}),
    # progresses only after AS_OF: 'new' at AS_OF
    ("O4", "K5", "referral", None, "R2", 80.0, {"new": "2024-02-10", "negotiation": "2024-04-01",
                                                "won": "2024-04-15"}),
    ("O5", "K6", "web", None, "R2", 90.0, {"new": "2024-05-01"}),  # created after AS_OF
    ("O6", "K3", "web", "C1", "R2", 300.0, {"new": "2024-03-01", "contacted": "2024-03-02", "qualified": "2024-03-05",
                                           "proposal": "2024-03-08", "negotiation": "2024-03-12", "won": "2024-03-22"}),
]


def opportunity_frames(rows) -> dict[str, pd.DataFrame]:
    """fct_opportunities and fct_opportunity_stages (exited = next stage entered, as the mart builds them)."""
    opportunities, stages = [], []
    for opp_id, customer, source, campaign, rep, amount, timeline in rows:
        entered = {stage: ts(at) for stage, at in timeline.items()}
        opportunities.append({
            "opportunity_id": opp_id, "customer_key": customer, "created_at": entered["new"], "source": source,
            "campaign_id": campaign, "amount": amount, "owner_rep_id": rep,
            "closed_at": entered.get("won", entered.get("lost")),
            **{f"{stage}_at": entered.get(stage) for stage in sales.STAGES},
        })
        ordered = sorted(entered.items(), key=lambda item: item[1])
        for (stage, start), (_, end) in zip(ordered, ordered[1:] + [(None, None)]):
            stages.append({
                "opportunity_id": opp_id, "stage": stage, "stage_order": sales.STAGES.index(stage) + 1,
                "entered_at": start, "exited_at": end,
                "days_in_stage": None if end is None else (end - start) / timedelta(days=1),
            })
    return {"fct_opportunities": pd.DataFrame(opportunities), "fct_opportunity_stages": pd.DataFrame(stages)}


@pytest.fixture
def hand_funnel(tmp_path):
    orders = pd.DataFrame({
        "order_id": ["a", "b"], "customer_key": ["K1", "K3"],
        "order_at": [ts("2023-01-10"), ts("2024-03-25")], "order_date": [date(2023, 1, 10), date(2024, 3, 25)],
        "amount": [10.0, 20.0], "is_paid": [True, True],
    })
    reps = pd.DataFrame({"rep_id": ["R1", "R2"], "rep_name": ["Ann", "Bob"], "team": ["east", "west"],
                         "region": ["N", "S"]})
    con = make_marts(tmp_path, **opportunity_frames(HAND_OPPORTUNITIES), fct_orders=orders, dim_sales_reps=reps)
    yield con
    con.close()


def stage_row(frame, stage, dimension="overall", value="overall"):
    rows = frame[(frame.dimension == dimension) & (frame.dimension_value == value) & (frame.stage == stage)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_funnel_stage_counts_and_conversion_on_hand_case(hand_funnel):
    by_stage = sales.funnel_by_stage(hand_funnel, AS_OF)
    reached = {s: stage_row(by_stage, s).reached for s in sales.STAGES}
    current = {s: stage_row(by_stage, s).current for s in sales.STAGES}
    assert reached == {"new": 5, "contacted": 4, "qualified": 3, "proposal": 3, "negotiation": 2, "won": 2, "lost": 1}
    assert current == {"new": 1, "contacted": 0, "qualified": 0, "proposal": 1, "negotiation": 0, "won": 2, "lost": 1}
    conversion = [stage_row(by_stage, s).conversion_to_next for s in sales.OPEN_STAGES]
    assert conversion == pytest.approx([4 / 5, 3 / 4, 3 / 3, 2 / 3, 2 / 2])
    assert pd.isna(stage_row(by_stage, "won").conversion_to_next)

    summary = sales.funnel_conversion(hand_funnel, AS_OF).set_index(["dimension", "dimension_value"])
    overall = summary.loc[("overall", "overall")]
    assert (overall.opportunities, overall.open, overall.won, overall.lost) == (5, 2, 2, 1)
    assert overall.win_rate == pytest.approx(2 / 3)
    assert overall.won_amount == pytest.approx(400.0)
    assert overall.median_sales_cycle_days == pytest.approx(20.0)  # 19 and 21 days
    assert summary.loc[("owner_rep", "R1")].win_rate == pytest.approx(0.5)
    assert summary.loc[("owner_rep", "R2")].win_rate == pytest.approx(1.0)
    assert summary.loc[("campaign", "(none)")].opportunities == 2
    assert summary.loc[("created_month", "2024-02")].opportunities == 2


def test_time_in_stage_uses_completed_stays_up_to_as_of(hand_funnel):
    by_stage = sales.funnel_by_stage(hand_funnel, AS_OF)
    # 'new' stays: 2, 2, 1, 1 days; O4 leaves 'new' only after AS_OF, so its stay is not complete yet.
    assert stage_row(by_stage, "new").avg_days_in_stage == pytest.approx(1.5)
    assert stage_row(by_stage, "new").median_days_in_stage == pytest.approx(1.5)
    # 'contacted' stays: 3, 2, 8, 3 days
    assert stage_row(by_stage, "contacted").avg_days_in_stage == pytest.approx(4.0)
    assert stage_row(by_stage, "contacted").median_days_in_stage == pytest.approx(3.0)
    assert stage_row(by_stage, "contacted", "owner_rep", "R1").avg_days_in_stage == pytest.approx(2.5)


def test_funnel_backtest_sees_the_stage_as_of_that_date(hand_funnel):
    by_stage = sales.funnel_by_stage(hand_funnel, date(2024, 1, 8))
    current = {s: stage_row(by_stage, s).current for s in sales.STAGES}
    # O1 is in 'qualified' (entered 01-06), O2 in 'contacted' (lost only on 01-09)
    assert current == {"new": 0, "contacted": 1, "qualified": 1, "proposal": 0, "negotiation": 0, "won": 0, "lost": 0}


def test_rep_performance_on_hand_case(hand_funnel):
    reps = sales.rep_performance(hand_funnel, AS_OF).set_index("rep_id")
    r1, r2 = reps.loc["R1"], reps.loc["R2"]
    assert (r1.rep_name, r1.team, r1.region) == ("Ann", "east", "N")
    assert (r1.deals_won, r1.deals_lost, r1.won_amount) == (1, 1, 100.0)
    assert r1.median_days_to_close == pytest.approx((19 + 4) / 2)
    assert (r2.opportunities, r2.deals_won, r2.win_rate) == (3, 1, 1.0)
    # R1 won K1, whose last order is > 365 days old; R2 won K3, who ordered last week.
    assert (r1.customers_won, r1.customers_churned, r1.churn_rate) == (1, 1, 1.0)
    assert (r2.customers_won, r2.customers_churned, r2.churn_rate) == (1, 0, 0.0)


def simulated_opportunities(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        at = datetime(2023, 6, 1) + timedelta(days=float(rng.uniform(0, 365)))
        timeline = {"new": at}
        for stage in sales.OPEN_STAGES[1:]:
            if rng.random() < 0.25:  # skipped step
                continue
            at += timedelta(days=float(rng.exponential(5)))
            if rng.random() < 0.2:
                timeline["lost"] = at
                break
            timeline[stage] = at
        else:
            timeline["won" if rng.random() < 0.6 else "lost"] = at + timedelta(days=float(rng.exponential(5)))
        rows.append((f"S{i}", f"K{i % 50}", rng.choice(["web", "event", "referral"]), rng.choice(["C1", "C2", None]),
                     rng.choice(["R1", "R2", "R3"]), float(rng.uniform(10, 1000)),
                     {stage: at.isoformat() for stage, at in timeline.items()}))
    return rows


def test_funnel_reconciles_with_fct_opportunities(tmp_path):
    con = make_marts(tmp_path, **opportunity_frames(simulated_opportunities(400)))
    created = con.execute("SELECT count(*) FROM marts.fct_opportunities WHERE CAST(created_at AS DATE) <= $as_of",
                          {"as_of": AS_OF}).fetchone()[0]
    by_stage = sales.funnel_by_stage(con, AS_OF)
    summary = sales.funnel_conversion(con, AS_OF)

    assert stage_row(by_stage, "new").reached == created
    overall = summary[summary.dimension == "overall"].iloc[0]
    assert overall.opportunities == created
    assert (summary.open + summary.won + summary.lost == summary.opportunities).all()
    # every dimension partitions the opportunities; "current" partitions each group
    assert (summary.groupby("dimension").opportunities.sum() == created).all()
    current = by_stage.groupby(["dimension", "dimension_value"]).current.sum()
    totals = summary.set_index(["dimension", "dimension_value"]).opportunities
    assert current.sort_index().tolist() == totals.sort_index().tolist()
    # reached is monotone along the won path, and won/lost agree between the two outputs
    assert (by_stage[by_stage.stage_order <= 5].conversion_to_next.dropna() <= 1).all()
    assert stage_row(by_stage, "won").reached == overall.won
    assert stage_row(by_stage, "lost").current == overall.lost
    con.close()


# --- service ------------------------------------------------------------------------------------------------------

@pytest.fixture
def hand_service(tmp_path):
    # The mart as refreshed after AS_OF: T3's resolution (April) and its CSAT are not known at AS_OF.
    tickets = pd.DataFrame([
        ("2024-01-10 08:00", "2024-01-10 10:00", "2024-01-11 08:00", "billing", "S1", 5),
        ("2024-01-20 00:00", "2024-01-20 04:00", "2024-01-22 00:00", "billing", "S2", 3),
        ("2024-02-05 00:00", "2024-02-05 06:00", "2024-04-10 00:00", "tech", "S1", 1),
        ("2024-03-30 00:00", None, None, "tech", "S2", None),
        ("2024-04-02 00:00", "2024-04-02 01:00", None, "tech", "S2", None),  # opened after AS_OF
    ], columns=["opened_at", "first_response_at", "resolved_at", "category", "rep_id", "satisfaction"])
    for column in ("opened_at", "first_response_at", "resolved_at"):
        tickets[column] = pd.to_datetime(tickets[column])
    tickets["first_response_hours"] = (tickets.first_response_at - tickets.opened_at) / pd.Timedelta(hours=1)
    tickets["resolution_hours"] = (tickets.resolved_at - tickets.opened_at) / pd.Timedelta(hours=1)
    surveys = pd.DataFrame({
        "answered_date": [date(2024, 1, 15), date(2024, 1, 16), date(2024, 1, 17), date(2024, 2, 10),
                          date(2024, 4, 20)],
        "nps_group": ["promoter", "promoter", "passive", "detractor", "detractor"],
    })
    con = make_marts(tmp_path, fct_tickets=tickets, fct_surveys=surveys)
    yield con
    con.close()


def service_row(frame, period, dimension="overall", value="overall"):
    rows = frame[(frame.dimension == dimension) & (frame.dimension_value == value) & (frame.period == period)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_service_response_resolution_and_backlog_on_hand_case(hand_service):
    metrics = service.service_metrics(hand_service, AS_OF)
    total = service_row(metrics, "all")
    assert (total.tickets_opened, total.tickets_resolved, total.backlog) == (4, 2, 2)
    assert total.resolution_rate == pytest.approx(0.5)
    assert total.median_first_response_hours == pytest.approx(4.0)  # 2, 4, 6 hours
    assert total.mean_first_response_hours == pytest.approx(4.0)
    assert total.median_resolution_hours == pytest.approx(36.0)  # 24, 48; T3 is resolved only after AS_OF
    assert (total.csat_responses, total.mean_csat) == (2, pytest.approx(4.0))
    assert [service_row(metrics, m).backlog for m in ("2024-01", "2024-02", "2024-03")] == [0, 1, 2]
    assert service_row(metrics, "all", "category", "tech").backlog == 2
    assert service_row(metrics, "all", "category", "billing").backlog == 0
    assert service_row(metrics, "2024-01", "rep", "S2").median_resolution_hours == pytest.approx(48.0)
    assert "2024-04" not in set(metrics.period)


def test_ticket_resolved_after_as_of_counts_as_open(hand_service):
    metrics = service.service_metrics(hand_service, date(2024, 1, 21))
    january = service_row(metrics, "2024-01")
    # T2 was answered on 01-20 but is resolved only on 01-22
    assert (january.tickets_opened, january.tickets_resolved, january.backlog) == (2, 1, 1)
    assert january.median_first_response_hours == pytest.approx(3.0)
    later = service.service_metrics(hand_service, date(2024, 4, 15))
    assert service_row(later, "2024-02").backlog == 1  # T3 still open at the end of February
    assert service_row(later, "2024-04").backlog == 2  # T3 resolved; T4 and T5 open


def test_nps_is_share_of_promoters_minus_share_of_detractors(hand_service):
    metrics = service.service_metrics(hand_service, AS_OF)
    assert service_row(metrics, "all").surveys == 4
    assert service_row(metrics, "all").nps == pytest.approx(100 * (2 - 1) / 4)
    assert service_row(metrics, "2024-01").nps == pytest.approx(100 * 2 / 3)
    assert service_row(metrics, "2024-02").nps == pytest.approx(-100.0)
    assert metrics[metrics.dimension != "overall"].nps.isna().all()


# --- empty and missing sources ------------------------------------------------------------------------------------

ALL_OUTPUTS = [
    (sales.funnel_by_stage, sales.FUNNEL_BY_STAGE_COLUMNS),
    (sales.funnel_conversion, sales.FUNNEL_CONVERSION_COLUMNS),
    (sales.rep_performance, sales.REP_PERFORMANCE_COLUMNS),
    (service.service_metrics, service.SERVICE_COLUMNS),
]


@pytest.mark.parametrize("function, columns", ALL_OUTPUTS)
def test_orders_only_export_gives_empty_frames(tmp_path, function, columns):
    orders = pd.DataFrame({"order_id": ["o1"], "customer_key": ["K1"], "order_at": [ts("2024-01-05")],
                           "order_date": [date(2024, 1, 5)], "amount": [10.0], "is_paid": [True]})
    con = make_marts(tmp_path, fct_orders=orders, dim_customers=pd.DataFrame({"customer_key": ["K1"]}))
    result = function(con, AS_OF)
    assert result.empty and list(result.columns) == list(columns)


@pytest.mark.parametrize("function, columns", ALL_OUTPUTS)
def test_missing_marts_give_empty_frames(function, columns):
    result = function(duckdb.connect(), AS_OF)
    assert result.empty and list(result.columns) == list(columns)
