"""LightGBM's TreeSHAP contributions (``pred_contrib``), computed once per split pattern of each tree.

TreeSHAP walks every tree for every row, both children of each split, at ~20 times the cost of a plain prediction:
most of the churn step at a million customers. But within one tree, a row's contributions depend on its values
only through the side of each of the tree's splits they fall on (path-dependent TreeSHAP compares a value with its
split's threshold and nothing else; a feature left out of a coalition follows both children by their training
counts). A tree of depth 3 has at most 7 splits, so at most 128 such patterns, however many rows. So for each tree,
the sides are computed for every row (vectorised, as LightGBM's predictor decides them), LightGBM's own TreeSHAP
runs on one row of each pattern that occurs, for that tree alone, and every row takes its pattern's contributions.
Summed over the trees, they are LightGBM's (in the last bits: the sums are added in another order).

The sides are checked before anything is used: every row's leaf in every tree, as its pattern leads to it, against
LightGBM's ``pred_leaf``, and a seeded sample of rows against the full ``pred_contrib``. A tree with too many splits
for a pattern table, or any difference, and the rows go through ``pred_contrib`` itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import lightgbm

# A tree's patterns are looked up in a table of 2**splits rows; a tree with more splits than this goes the slow way.
MAX_SPLITS = 12
# Rows checked against the full pred_contrib per call (seeded, so a rerun checks the same rows).
CHECKED_ROWS = 500
# |value| at or below this is zero for a split whose missing values are zeros (LightGBM's kZeroThreshold, a float).
_ZERO = float(np.float32(1e-35))

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Split:
    feature: int
    threshold: float  # a numerical split's: left when value <= threshold
    categories: frozenset[int] | None  # a categorical split's: left when the value's category is one of these
    missing: str  # LightGBM's missing_type: "None", "Zero" or "NaN"
    default_left: bool  # where a missing value goes ("Zero" / "NaN" splits)


@dataclass(frozen=True)
class _Tree:
    splits: tuple[_Split, ...]  # in a fixed (pre-)order: split j decides bit j of a row's pattern
    leaf_of: np.ndarray  # pattern -> the leaf it leads to (LightGBM's leaf index)


def model_matrix(x: pd.DataFrame) -> np.ndarray:
    """The float matrix LightGBM predicts from: a categorical column as its category codes (missing: NaN), the others
    as floats. Given the same matrix, LightGBM and ``contributions`` see the same numbers."""
    columns = []
    for name in x.columns:
        column = x[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(columns)


def contributions(booster: lightgbm.Booster, matrix: np.ndarray, trees: int) -> np.ndarray:
    """``booster.predict(matrix, num_iteration=trees, pred_contrib=True)``: one column per feature, then the bias.
    ``trees`` > 0 (a binary model's trees, one per iteration)."""
    def lightgbms_own() -> np.ndarray:
        return booster.predict(matrix, num_iteration=trees, pred_contrib=True)

    parsed = _parse(booster, trees)
    if parsed is None or not len(matrix):
        return lightgbms_own()
    # Column by column (a feature's values, a contribution's column contiguous in memory), transposed at the end.
    columns = np.ascontiguousarray(matrix.T)
    leaves = np.ascontiguousarray(booster.predict(matrix, num_iteration=trees, pred_leaf=True)
                                  .reshape(len(matrix), -1).T)
    out = np.zeros((matrix.shape[1] + 1, len(matrix)))
    for number, tree in enumerate(parsed):
        patterns = _patterns(columns, tree)
        if not np.array_equal(tree.leaf_of[patterns], leaves[number]):
            log.warning("tree %d: the split sides computed here differ from LightGBM's leaves; using pred_contrib",
                        number)
            return lightgbms_own()
        present = np.flatnonzero(np.bincount(patterns, minlength=len(tree.leaf_of)))
        # Any row of a pattern will do: they all get the same contributions.
        row_of = np.zeros(len(tree.leaf_of), dtype=np.intp)
        row_of[patterns] = np.arange(len(matrix))
        table = np.zeros((len(tree.leaf_of), len(out)))
        table[present] = booster.predict(matrix[row_of[present]], start_iteration=number, num_iteration=1,
                                         pred_contrib=True)
        for column in np.flatnonzero(np.any(table != 0, axis=0)):  # the tree's own features and the bias
            out[column] += table[:, column][patterns]
    out = out.T
    checked = np.random.default_rng(0).choice(len(matrix), size=min(CHECKED_ROWS, len(matrix)), replace=False)
    expected = booster.predict(matrix[checked], num_iteration=trees, pred_contrib=True)
    if not np.allclose(out[checked], expected, rtol=1e-9, atol=1e-12):
        log.warning("contributions per split pattern differ from LightGBM's pred_contrib; using pred_contrib")
        return lightgbms_own()
    return out


def _patterns(columns: np.ndarray, tree: _Tree) -> np.ndarray:
    """Each row's pattern in ``tree`` (``columns``: one row per feature): bit j set when the row goes left at split
    j."""
    patterns = np.zeros(columns.shape[1], dtype=np.intp)
    for bit, split in enumerate(tree.splits):
        patterns |= _goes_left(columns[split.feature], split).astype(np.intp) << bit
    return patterns


def _goes_left(values: np.ndarray, split: _Split) -> np.ndarray:
    """LightGBM's decision on raw values (include/LightGBM/tree.h, NumericalDecision / CategoricalDecision)."""
    missing = np.isnan(values)
    if split.categories is not None:
        # Cast to int: a missing or negative value goes right, as does a category not listed.
        whole = np.trunc(np.where(missing, -1.0, values))
        valid = (whole >= 0) & (whole < 2 ** 31)
        return valid & np.isin(np.where(valid, whole, -1).astype(np.int64), list(split.categories))
    if split.missing != "NaN":
        values = np.where(missing, 0.0, values)
    left = values <= split.threshold
    if split.missing == "Zero":
        return np.where(np.abs(values) <= _ZERO, split.default_left, left)
    if split.missing == "NaN":
        return np.where(missing, split.default_left, left)
    return left


def _parse(booster: lightgbm.Booster, trees: int) -> list[_Tree] | None:
    """The first ``trees`` trees, or None when one has too many splits for a pattern table."""
    parsed = []
    for info in booster.dump_model(num_iteration=trees)["tree_info"][:trees]:
        splits: list[_Split] = []
        shape = _walk(info["tree_structure"], splits)
        if len(splits) > MAX_SPLITS:
            return None
        leaf_of = np.array([_leaf(shape, pattern) for pattern in range(2 ** len(splits))], dtype=np.int64)
        parsed.append(_Tree(tuple(splits), leaf_of))
    return parsed


def _walk(node: dict, splits: list[_Split]):
    """The tree's shape, its splits appended to ``splits`` in pre-order: (bit, left, right) per split, a leaf's
    index at a leaf."""
    if "leaf_index" in node or "split_feature" not in node:
        return int(node.get("leaf_index", 0))
    categorical = node["decision_type"] == "=="
    threshold = node["threshold"]
    splits.append(_Split(
        feature=int(node["split_feature"]),
        threshold=float("nan") if categorical else float(threshold),
        categories=frozenset(int(c) for c in str(threshold).split("||")) if categorical else None,
        missing=str(node["missing_type"]), default_left=bool(node["default_left"])))
    bit = len(splits) - 1
    return bit, _walk(node["left_child"], splits), _walk(node["right_child"], splits)


def _leaf(shape, pattern: int) -> int:
    while not isinstance(shape, int):
        bit, left, right = shape
        shape = left if pattern >> bit & 1 else right
    return shape
