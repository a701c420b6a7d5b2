"""TreeSHAP per split pattern (dagster_project/analytics/tree_contributions.py) gives LightGBM's own pred_contrib, on
models with every kind of split LightGBM makes: numerical with missing values as NaN, as zero or neither, and
categorical; scored on rows with values the training never had (missing where it had none, unseen categories,
values on a threshold)."""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from dagster_project.analytics import churn_model
from dagster_project.analytics.churn_drivers import top_drivers
from dagster_project.analytics.tree_contributions import MAX_SPLITS, contributions, model_matrix

ROWS = 4000


def frame(rng: np.random.Generator, rows: int, holes: bool) -> pd.DataFrame:
    """Counts, amounts with missing values, a mostly-zero count, two categoricals; `holes` adds what training had
    not: missing counts, unseen and missing categories."""
    x = pd.DataFrame({
        "recency_days": rng.integers(0, 400, rows).astype(float),
        "orders_365d": rng.poisson(2, rows).astype(float),
        "revenue": np.where(rng.random(rows) < 0.15, np.nan, rng.gamma(2, 50, rows)),
        "open_tickets": np.where(rng.random(rows) < 0.8, 0.0, rng.integers(1, 4, rows)),
        "region": pd.Categorical(rng.choice(["north", "south", "east", "west"], rows)),
        "acquisition_channel": pd.Categorical(rng.choice(["web", "shop", "phone"], rows)),
    })
    if holes:
        x.loc[rng.random(rows) < 0.05, "recency_days"] = np.nan
        x.loc[rng.random(rows) < 0.05, "open_tickets"] = np.nan
        region = x["region"].astype(object)
        region[rng.random(rows) < 0.05] = "abroad"
        region[rng.random(rows) < 0.05] = None
        x["region"] = region
    return x


def target(x: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    logit = (x["recency_days"].fillna(200) / 100 - x["orders_365d"] * 0.5 - x["revenue"].fillna(0) / 200
             + x["open_tickets"].fillna(0) * 0.7 + (x["region"].astype(str) == "north") * 0.8 - 1)
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)


def fitted(params: dict, seed: int = 3) -> tuple[lgb.Booster, dict[str, list[str]]]:
    rng = np.random.default_rng(seed)
    train = frame(rng, ROWS, holes=False)
    categories = {c: sorted(train[c].astype(str).unique()) for c in ("region", "acquisition_channel")}
    x = churn_model.design(train, categories)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 2, "seed": seed, **params},
                        lgb.Dataset(x, target(train, rng), categorical_feature=["region", "acquisition_channel"]),
                        num_boost_round=60)
    return booster, categories


# The churn model's settings, and settings that make LightGBM choose the other missing-value handlings.
MODELS = {
    "churn settings": {k: v for k, v in churn_model.LGB_PARAMS.items() if k not in ("objective", "verbose")},
    "zeros as missing": {"max_depth": 3, "num_leaves": 8, "zero_as_missing": True, "min_data_in_leaf": 20},
    "no missing handling": {"max_depth": 3, "num_leaves": 8, "use_missing": False, "min_data_in_leaf": 20},
    "small categories": {"max_depth": 3, "num_leaves": 8, "min_data_per_group": 5, "cat_smooth": 1,
                         "max_cat_to_onehot": 8},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_contributions_per_split_pattern_are_lightgbms_own(name, caplog):
    booster, categories = fitted(MODELS[name])
    scored = frame(np.random.default_rng(11), 3000, holes=True)
    # Amounts lying exactly on the thresholds of their splits go left (value <= threshold), as in LightGBM.
    revenue = list(scored.columns).index("revenue")
    on_threshold = sorted({node["threshold"] for node in _nodes(booster) if node["split_feature"] == revenue})[:50]
    assert on_threshold
    scored.loc[: len(on_threshold) - 1, "revenue"] = on_threshold
    matrix = model_matrix(churn_model.design(scored, categories))
    kinds = {(node["decision_type"], node["missing_type"]) for node in _nodes(booster)}

    with caplog.at_level(logging.WARNING, logger="dagster_project.analytics.tree_contributions"):
        fast = contributions(booster, matrix, booster.num_trees())
    expected = booster.predict(matrix, pred_contrib=True)

    assert caplog.records == []  # computed per pattern, not handed back to pred_contrib
    np.testing.assert_allclose(fast, expected, rtol=1e-12, atol=1e-12)
    assert np.isnan(matrix).any()
    if name == "churn settings":  # the categorical splits and LightGBM's NaN handling are exercised
        assert ("==", "None") in kinds or ("==", "NaN") in kinds, kinds
        assert ("<=", "NaN") in kinds, kinds
    if name == "zeros as missing":
        assert ("<=", "Zero") in kinds, kinds
    if name == "no missing handling":
        assert {missing for _, missing in kinds} == {"None"}, kinds


def test_trees_with_more_splits_than_a_pattern_table_holds_get_pred_contrib_itself():
    booster, categories = fitted({"num_leaves": 64, "max_depth": -1, "min_data_in_leaf": 5})
    assert max(len(list(_nodes(booster, tree))) for tree in range(booster.num_trees())) > MAX_SPLITS
    matrix = model_matrix(churn_model.design(frame(np.random.default_rng(5), 500, holes=True), categories))
    np.testing.assert_array_equal(contributions(booster, matrix, booster.num_trees()),
                                  booster.predict(matrix, pred_contrib=True))


def test_the_churn_scores_drivers_are_those_of_the_full_pred_contrib():
    booster, categories = fitted(MODELS["churn settings"])
    model = churn_model.LightgbmModel(booster, categories, 0.0)
    booster.best_iteration = 40  # scored with the early-stopped rounds, as saved
    scored = frame(np.random.default_rng(7), 2000, holes=True)
    explained = churn_model.explained_predictions(model, scored)
    x = churn_model.design(scored, categories)
    full = booster.predict(x, num_iteration=40, pred_contrib=True)
    expected = top_drivers(full, x).assign(churn_probability=1 / (1 + np.exp(-full.sum(axis=1))))
    pd.testing.assert_frame_equal(explained.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_exact=False, rtol=1e-12)


def _nodes(booster: lgb.Booster, tree: int | None = None):
    trees = booster.dump_model()["tree_info"]
    for info in trees if tree is None else [trees[tree]]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                yield node
                stack += [node["left_child"], node["right_child"]]
