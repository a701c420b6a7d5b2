"""Record ids: their text form (prefix + zero-padded number) and the counters that keep them unique across chunks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


def id_text(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """prefix + zero-padded number, written digit by digit into one fixed-width byte matrix.

    Ids are the widest columns; this is several times faster than cast + pad + join.
    """
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    text = np.empty((len(numbers), head.size + width), dtype=np.uint8)
    text[:, : head.size] = head
    rest = np.asarray(numbers, dtype=np.int64)
    for column in range(head.size + width - 1, head.size - 1, -1):
        text[:, column] = rest % 10 + ord("0")
        rest = rest // 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int32) * text.shape[1]
    return pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(text))


@dataclass
class IdCounters:
    """Running id counters, so ids stay unique across chunks."""

    customer: int = 0
    order: int = 0
    interaction: int = 0
    ticket: int = 0
    survey: int = 0
    lead: int = 0
    orphan_order: int = 0
    orphan_customer: int = 0

    def take(self, name: str, n: int) -> np.ndarray:
        first = getattr(self, name) + 1
        setattr(self, name, first - 1 + n)
        return np.arange(first, first + n)
