"""Small vectorised helpers: grouped operations on flat numpy arrays, random draws, and building pyarrow string
columns (integers as text, joins, labels by index, blanks, interleaving per-subset columns back into row order)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def group_starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def group_rank(counts: np.ndarray) -> np.ndarray:
    """0, 1, ... within each group of a flat array grouped by ``counts``."""
    return np.arange(counts.sum()) - np.repeat(group_starts(counts), counts)


def group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    total = np.concatenate([[0.0], np.cumsum(values)])
    return total[1:] - np.repeat(total[group_starts(counts)], counts)


def uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + (rng.random(lo.size) * (hi - lo)).astype(np.int64)


_SMALL_INTS = pa.array([str(i) for i in range(1000)], pa.string())


def int_text(values: np.ndarray) -> pa.Array:
    """Integers as decimal text."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and 0 <= values.min() and values.max() < len(_SMALL_INTS):
        return _SMALL_INTS.take(values)  # a lookup is much cheaper than casting
    return pa.array(values).cast(pa.string())


def join_text(*parts) -> pa.Array:
    """Row-wise concatenation of string arrays and literal strings."""
    return pc.binary_join_element_wise(*parts, "")


def pick_labels(values: list[str], index: np.ndarray) -> pa.Array:
    """``values[index]`` per row, as a string array."""
    return pa.array(values, pa.string()).take(index)


def blank(text: pa.Array, mask: np.ndarray) -> pa.Array:
    """``text`` with the rows where ``mask`` holds set to null (an empty CSV cell)."""
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), text)


def choose(rng: np.random.Generator, probs: list[float], n: int) -> np.ndarray:
    """n category indices drawn with the (unnormalised) weights ``probs``."""
    probs = np.asarray(probs, dtype=np.float64)
    return rng.choice(probs.size, size=n, p=probs / probs.sum()).astype(np.int8)


def assemble(n: int, parts: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """Interleave per-subset strings back into row order (parts cover all n rows exactly once)."""
    position = np.empty(n, dtype=np.int64)
    offset = 0
    for index, _ in parts:
        position[index] = offset + np.arange(index.size)
        offset += index.size
    return pa.concat_arrays([pa.array([], pa.string()), *(text for _, text in parts)]).take(position)
