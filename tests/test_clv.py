"""CLV module on customers simulated from the BG/NBD and Gamma-Gamma processes with known parameters (MLE fits only)."""

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from pymc_marketing.clv.utils import rfm_summary as library_rfm_summary
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

from dagster_project.analytics.clv import (
    VALIDATION_COLUMNS,
    ClvConfig,
    fit_bgnbd,
    fit_gamma_gamma,
    rfm_summary,
    run_clv,
    score_customers,
    validate_holdout,
)

TRUE_BG = {"r": 0.75, "alpha": 40.0, "a": 0.8, "b": 4.0}  # alpha in days: mean 53 days between purchases
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 15.0}  # mean spend per purchase p*v/(q-1) = 30
START = date(2022, 1, 1)
HISTORY_DAYS = 900
AS_OF = START + timedelta(days=HISTORY_DAYS - 1)


def simulate(n: int, seed: int = 7) -> pd.DataFrame:
    """Orders of ``n`` customers entering uniformly over the first year (Fader, Hardie & Lee 2005 story).

    Purchase rate lambda ~ Gamma(r, rate alpha); after each *repeat* purchase the customer drops out with probability
    p ~ Beta(a, b). Spend per purchase ~ Gamma(p, rate nu) with nu ~ Gamma(q, rate v). Times are floored to days.
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUE_BG["r"], 1 / TRUE_BG["alpha"], n)
    dropout = rng.beta(TRUE_BG["a"], TRUE_BG["b"], n)
    nu = rng.gamma(TRUE_GG["q"], 1 / TRUE_GG["v"], n)
    customer, t = np.arange(n), rng.uniform(0, 365, n)
    customers, times = [customer], [t.copy()]
    active = np.ones(n, dtype=bool)
    while active.any():
        t = t + rng.exponential(1 / rate)
        active &= t < HISTORY_DAYS
        customers.append(customer[active])
        times.append(t[active])
        active &= rng.random(n) >= dropout
    customer, t = np.concatenate(customers), np.concatenate(times)
    return pd.DataFrame({
        "customer_key": pd.Series(customer).map("c{:05d}".format),
        "order_date": pd.Timestamp(START) + pd.to_timedelta(np.floor(t), unit="D"),
        "amount": rng.gamma(TRUE_GG["p"], 1 / nu[customer]),
    })


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return simulate(5000)


@pytest.fixture(scope="module")
def result(transactions):
    return run_clv(transactions, AS_OF)


@pytest.fixture(scope="module")
def summary(transactions) -> pd.DataFrame:
    return rfm_summary(transactions, AS_OF)


@pytest.fixture(scope="module")
def models(summary):
    return fit_bgnbd(summary)[0], fit_gamma_gamma(summary)[0]


def params(result, model_name: str, purpose: str = "production") -> dict:
    (run,) = [r for r in result.runs if r.model_name == model_name and r.purpose == purpose]
    return run.params


# --- RFM summary -----------------------------------------------------------------------------------------------------


def test_rfm_summary_counts_distinct_purchase_days_up_to_as_of():
    orders = pd.DataFrame({
        "customer_key": ["a", "a", "a", "a", "a", "b"],
        "order_date": [date(2024, 1, 1), date(2024, 1, 1), date(2024, 1, 11), date(2024, 1, 31), date(2024, 3, 1),
                       date(2024, 1, 20)],
        "amount": [10.0, 5.0, 20.0, 40.0, 999.0, 7.0],
    })
    summary = rfm_summary(orders, date(2024, 2, 10)).set_index("customer_key")
    assert summary.loc["a"].to_dict() == {"frequency": 2.0, "recency": 30.0, "T": 40.0, "monetary_value": 30.0}
    assert summary.loc["b"].to_dict() == {"frequency": 0.0, "recency": 0.0, "T": 21.0, "monetary_value": 0.0}


def test_rfm_summary_matches_pymc_marketing(transactions):
    as_of = AS_OF - timedelta(days=200)  # leaves later orders to be cut off
    ours = rfm_summary(transactions, as_of).set_index("customer_key").sort_index()
    theirs = library_rfm_summary(
        transactions, "customer_key", "order_date", "amount", observation_period_end=pd.Timestamp(as_of)
    ).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(ours, theirs[ours.columns], check_names=False)


# --- Parameter recovery ----------------------------------------------------------------------------------------------


# Sampling error at 5,000 customers: a and b (and v) are much less well determined than r and alpha.
TOLERANCE = {"r": 0.10, "alpha": 0.15, "a": 0.25, "b": 0.30, "p": 0.20, "q": 0.10, "v": 0.25}


@pytest.mark.parametrize(("model_name", "truth"), [("bg_nbd", TRUE_BG), ("gamma_gamma", TRUE_GG)])
def test_mle_recovers_simulated_parameters(result, model_name, truth):
    fitted = params(result, model_name)
    assert set(fitted) == set(truth)
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=TOLERANCE[name]), name


def test_mle_recovers_population_means(result):
    bg, gg = params(result, "bg_nbd"), params(result, "gamma_gamma")
    assert bg["r"] / bg["alpha"] == pytest.approx(TRUE_BG["r"] / TRUE_BG["alpha"], rel=0.05)
    assert bg["a"] / (bg["a"] + bg["b"]) == pytest.approx(TRUE_BG["a"] / (TRUE_BG["a"] + TRUE_BG["b"]), rel=0.10)
    assert gg["p"] * gg["v"] / (gg["q"] - 1) == pytest.approx(30.0, rel=0.05)


def bgnbd_log_likelihood(log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> float:
    """Fader, Hardie & Lee (2005), eq. 6, written independently of pymc-marketing."""
    r, alpha, a, b = np.exp(log_params)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    still_active = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    dropped = np.where(x > 0, betaln(a + 1, b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(common + np.logaddexp(still_active, dropped)))


def test_flat_prior_map_equals_scipy_mle(result, summary):
    x, t_x, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    scipy_fit = minimize(lambda theta: -bgnbd_log_likelihood(theta, x, t_x, T), np.zeros(4), method="Nelder-Mead",
                         options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 5000})
    assert scipy_fit.success
    mle = dict(zip(("r", "alpha", "a", "b"), np.exp(scipy_fit.x)))
    fitted = params(result, "bg_nbd")
    for name in mle:
        assert fitted[name] == pytest.approx(mle[name], rel=1e-3), name


# --- Holdout validation ----------------------------------------------------------------------------------------------


def test_holdout_predictions_are_accurate_and_beat_the_naive_baseline(result):
    metrics = result.metrics
    assert abs(metrics["holdout_purchases_rel_error"]) < 0.15
    assert metrics["holdout_corr"] > 0.5
    assert metrics["holdout_mae"] <= metrics["holdout_baseline_mae"]
    assert abs(metrics["holdout_revenue_rel_error"]) < 0.20


def test_holdout_comparison_covers_customers_known_at_calibration_end(result, transactions):
    calibration_end = pd.Timestamp(AS_OF - timedelta(days=90))
    known = transactions.loc[transactions["order_date"] <= calibration_end, "customer_key"].nunique()
    validation = result.validation
    assert list(validation.columns) == VALIDATION_COLUMNS
    assert len(validation) == known
    holdout_days = transactions.loc[transactions["order_date"] > calibration_end, ["customer_key", "order_date"]]
    assert validation["actual_holdout_purchases"].sum() == len(holdout_days.drop_duplicates())


def test_validation_is_skipped_with_a_note_when_history_is_shorter_than_the_holdout(transactions):
    comparison, metrics, runs, note = validate_holdout(transactions, AS_OF, ClvConfig(holdout_days=HISTORY_DAYS))
    assert comparison.empty and list(comparison.columns) == VALIDATION_COLUMNS
    assert (metrics, runs) == ({}, [])
    assert "holdout validation skipped" in note


# --- Scores ----------------------------------------------------------------------------------------------------------


def test_scores_are_well_formed(result):
    scores = result.scores
    assert list(scores.columns) == ClvConfig().score_columns
    assert len(scores) == 5000 and scores["customer_key"].is_unique
    assert scores["p_alive"].between(0, 1).all()
    assert (scores.loc[scores["frequency"] == 0, "p_alive"] == 1).all()  # BG/NBD: no repeat purchase, no dropout
    assert (scores["expected_purchases_30d"] <= scores["expected_purchases_90d"]).all()
    assert (scores["expected_purchases_90d"] <= scores["expected_purchases_365d"]).all()
    assert (scores["clv_12m"] >= 0).all()
    assert result.note is None


def test_scores_equal_pymc_marketings_own_predictions(models, summary):
    bg, gg = models
    data = summary.drop(columns="customer_key").assign(customer_id=np.arange(len(summary)))

    def per_customer(values):
        return values.mean(("chain", "draw")).transpose("customer_id").to_numpy()

    library = {
        "p_alive": per_customer(bg.expected_probability_alive(data)),
        **{f"expected_purchases_{days}d": per_customer(bg.expected_purchases(data, future_t=days))
           for days in (30, 90, 365)},
        "expected_avg_order_value": per_customer(gg.expected_customer_spend(data)),
        "clv_12m": per_customer(gg.expected_customer_lifetime_value(
            transaction_model=bg, data=data.copy(), future_t=12, discount_rate=1.1 ** (1 / 12) - 1, time_unit="D")),
    }
    scores = score_customers(bg, gg, summary)
    for column, expected in library.items():
        np.testing.assert_allclose(scores[column].to_numpy(), expected, rtol=1e-12, err_msg=column)


def test_p_alive_is_lower_for_long_inactive_customers(result, models):
    scores = result.scores
    silence = scores["T"] - scores["recency"]
    repeaters = scores["frequency"] > 0
    lapsed, active = repeaters & (silence > 365), repeaters & (silence < 30)
    assert scores.loc[lapsed, "p_alive"].mean() < 0.2 < 0.8 < scores.loc[active, "p_alive"].mean()
    twins = pd.DataFrame({"customer_key": ["recent", "lapsed"], "frequency": [5.0, 5.0], "recency": [690.0, 100.0],
                          "T": [700.0, 700.0], "monetary_value": [30.0, 30.0]})
    recent, lapsed = score_customers(*models, twins)["p_alive"]
    assert lapsed < 0.1 and recent > 0.8


def test_expected_order_value_falls_back_to_population_mean(result):
    gg = params(result, "gamma_gamma")
    one_timers = result.scores.loc[result.scores["frequency"] == 0, "expected_avg_order_value"]
    assert one_timers.to_numpy() == pytest.approx(gg["p"] * gg["v"] / (gg["q"] - 1))


def test_discounting_lowers_clv(models, summary):
    discounted = score_customers(*models, summary, ClvConfig())["clv_12m"]
    undiscounted = score_customers(*models, summary, ClvConfig(discount_rate_annual=0.0))["clv_12m"]
    assert (discounted <= undiscounted + 1e-9).all()
    # Cash flows spread over a year at 10%/year: worth between 1/1.1 and 1 of their face value.
    assert 1 / 1.1 < discounted.sum() / undiscounted.sum() < 0.99


def test_non_positive_spend_customers_are_scored_but_not_fitted(models, summary):
    refunded = pd.DataFrame({"customer_key": ["refunded"], "frequency": [3.0], "recency": [300.0], "T": [400.0],
                             "monetary_value": [-20.0]})
    scores = score_customers(*models, pd.concat([summary.head(3), refunded], ignore_index=True))
    assert scores.loc[3, "expected_avg_order_value"] > 0
    assert scores.loc[3, "clv_12m"] >= 0


# --- Model runs ------------------------------------------------------------------------------------------------------


def test_every_fit_yields_a_model_run(result):
    runs = {(r.model_name, r.purpose): r for r in result.runs}
    assert set(runs) == {(m, p) for m in ("bg_nbd", "gamma_gamma") for p in ("production", "validation")}
    for (model_name, purpose), run in runs.items():
        assert set(run.params) == ({"r", "alpha", "a", "b"} if model_name == "bg_nbd" else {"p", "q", "v"})
        assert run.libraries == ("pymc-marketing", "pymc")
        assert run.fit_seconds > 0 and run.time_unit == "days" and run.train_start == START
        assert run.train_end == (AS_OF if purpose == "production" else AS_OF - timedelta(days=90))
        assert run.holdout_end == (None if purpose == "production" else AS_OF)
        record = run.as_record()
        assert json.loads(record["metrics"]) and "pymc-marketing" in json.loads(record["library_versions"])
    assert runs["bg_nbd", "validation"].metrics["holdout_customers"] == len(result.validation)


# --- Degenerate input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orders", [
    pd.DataFrame({"customer_key": pd.Series(dtype=str), "order_date": pd.Series(dtype="datetime64[ns]"),
                  "amount": pd.Series(dtype=float)}),
    simulate(12, seed=1),  # a dozen customers: too few repeat buyers to fit
    simulate(500, seed=1).assign(order_date=pd.Timestamp(AS_OF) + pd.Timedelta(days=1)),  # all after as_of
])
def test_insufficient_input_returns_empty_frames_and_a_note(orders):
    result = run_clv(orders, AS_OF)
    assert result.scores.empty and list(result.scores.columns) == ClvConfig().score_columns
    assert result.validation.empty and list(result.validation.columns) == VALIDATION_COLUMNS
    assert result.runs == [] and result.metrics == {}
    assert result.note.startswith("CLV not computed")


def test_bgnbd_scorer_only_uses_purchases_up_to_each_cutoff():
    from dagster_project.analytics.clv import bgnbd_scorer

    rng = np.random.default_rng(5)
    rows = []
    for customer in range(300):  # Poisson buyers with heterogeneous rates, over ~500 days
        days = np.cumsum(rng.exponential(rng.gamma(0.8, 60.0), size=12)).astype(int)
        rows += [(f"c{customer}", day) for day in days[days < 500]]
    frame = pd.DataFrame(rows, columns=["customer_key", "day"])
    frame = frame.assign(order_date=pd.Timestamp("2025-01-01") + pd.to_timedelta(frame.pop("day"), unit="D"),
                         amount=100.0)
    fit_cutoff, cutoff = date(2025, 7, 1), date(2025, 10, 1)
    scores = bgnbd_scorer(frame, fit_cutoff)(cutoff)
    later = pd.concat([frame, frame.assign(order_date=pd.Timestamp("2026-01-01"))])
    pd.testing.assert_frame_equal(scores, bgnbd_scorer(later, fit_cutoff)(cutoff))
    assert scores["p_alive"].between(0, 1).all() and (scores["expected_purchases_90d"] >= 0).all()
    assert bgnbd_scorer(frame.head(3), fit_cutoff)(cutoff) is None
    with pytest.raises(ValueError, match="before the fit cutoff"):
        bgnbd_scorer(frame, cutoff)(fit_cutoff)
