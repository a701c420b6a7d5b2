"""Writing the export drops: rows appended to ``out_dir/<drop date>/<entity>.csv`` as CSV text, the few files written
differently on purpose (BOM, GB18030 with Chinese headers and CRLF, synonym headers, an extra column), which
contract columns the sample writes, and helpers the exports use to place rows in drops (re-deliveries, replaced
cells, the file each row lands in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.contract import ENTITIES, ENTITIES_BY_NAME
from dagster_project.sample_data.export_calendar import Calendar
from dagster_project.sample_data.params import DAY, N_DROPS, REDELIVERY_RATE
from dagster_project.sample_data.vectorised import join_text, pick_labels

GB_DROP = 2  # the delta whose customers.csv comes from a Chinese Windows export


@dataclass(frozen=True)
class _FileSpec:
    """How one drop file is written when it differs from the plain UTF-8 CSV with canonical headers."""

    encoding: str = "utf-8"
    newline: str = "\n"
    headers: tuple[str, ...] | None = None  # written instead of the canonical names, same order
    extra: tuple[str, ...] = ()  # non-contract columns appended to this file only


_FILE_SPECS = {
    (0, "customers"): _FileSpec(encoding="utf-8-sig"),
    (GB_DROP, "customers"): _FileSpec(
        encoding="gb18030", newline="\r\n",
        headers=("客户编号", "姓名", "邮箱", "手机", "性别", "出生日期", "城市", "省份", "国家", "注册日期", "获客渠道",
                 "营销许可", "更新时间")),
    (3, "orders"): _FileSpec(headers=("order_no", "cust_id", "order_time", "order_status", "total", "currency",
                                      "channel", "sales_rep_id", "last_modified")),
    (0, "tickets"): _FileSpec(extra=("priority",)),
}


def _quote(text: pa.Array) -> pa.Array:
    text = pc.fill_null(text, "")
    data = text.buffers()[2]
    # Scanning the raw bytes (memchr) is far cheaper than a per-cell match, and few columns need quoting.
    raw = data.to_pybytes() if data is not None else b""
    if not any(special in raw for special in (b'"', b",", b"\r", b"\n")):
        return text
    needs = pc.match_substring_regex(text, '[",\r\n]')
    quoted = join_text('"', pc.replace_substring(text, '"', '""'), '"')
    return pc.if_else(needs, quoted, text)


def _csv_bytes(columns: list[pa.Array], newline: str) -> memoryview:
    cells = [_quote(c) for c in columns]
    cells[-1] = join_text(cells[-1], newline)
    lines = pc.binary_join_element_wise(*cells, ",")
    data, offsets = lines.buffers()[2], lines.buffers()[1]
    bounds = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(data)[bounds[0]:bounds[-1]]


# Contract columns the sample does not write: a marketplace's person id, partial refunds, and the order attributes
# only line-level files carry on their lines (the sample's order lines come with an orders file).
NOT_WRITTEN = {"customers": ("person_id",),
               "orders": ("refunded_amount",),
               # The sample's CRM exports every stage change (stage_changed_at), so closes need no close date.
               "opportunities": ("closed_at",),
               "order_items": ("line_amount", "customer_id", "order_date", "status", "refunded_amount", "currency",
                               "channel", "rep_id")}


def written_columns(entity: str) -> tuple[str, ...]:
    """The columns of an entity's sample files, in contract order."""
    return tuple(c for c in ENTITIES_BY_NAME[entity].column_names if c not in NOT_WRITTEN.get(entity, ()))


class DropWriter:
    """Appends rows to ``out_dir/<drop date>/<entity>.csv``, opening each file (and writing its header) lazily."""

    def __init__(self, out_dir: Path, drop_dates: tuple[date, ...]):
        self.out_dir = out_dir
        self.drop_dates = drop_dates
        self.rows = {e.name: 0 for e in ENTITIES}
        self._handles: dict[tuple[int, str], IO[bytes]] = {}

    def path(self, drop: int, entity: str) -> str:
        return f"{self.drop_dates[drop].isoformat()}/{entity}.csv"

    def append(self, entity: str, columns: dict[str, pa.Array], drop: np.ndarray) -> None:
        names = written_columns(entity)
        for k in range(N_DROPS):
            index = np.flatnonzero(drop == k)
            if index.size == 0:
                continue
            spec = _FILE_SPECS.get((k, entity), _FileSpec())
            data = _csv_bytes([columns[c].take(index) for c in names + spec.extra], spec.newline)
            if spec.encoding == "gb18030":
                data = bytes(data).decode("utf-8").encode("gb18030")
            self._handle(k, entity, spec).write(data)
            self.rows[entity] += index.size

    def _handle(self, drop: int, entity: str, spec: _FileSpec) -> IO[bytes]:
        if (drop, entity) not in self._handles:
            path = self.out_dir / self.path(drop, entity)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("wb", buffering=1 << 20)
            headers = spec.headers or written_columns(entity) + spec.extra
            handle.write((",".join(headers) + spec.newline).encode(spec.encoding))
            self._handles[drop, entity] = handle
        return self._handles[drop, entity]

    def close(self) -> list[Path]:
        for handle in self._handles.values():
            handle.close()
        return sorted(self.out_dir / self.path(k, e) for k, e in self._handles)


def take_rows(columns: dict[str, pa.Array], index: np.ndarray) -> dict[str, pa.Array]:
    """The rows ``index`` of every column."""
    return {c: v.take(index) for c, v in columns.items()}


def redelivery(rng, drop: np.ndarray, export_t: np.ndarray, cal: Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Rows exported in the week before the snapshot or in a delta that a later delta sends again unchanged."""
    recent = (drop < N_DROPS - 1) & (export_t >= cal.bounds[0] - 7 * DAY)
    pick = np.flatnonzero(recent & (rng.random(drop.size) < REDELIVERY_RATE))
    return pick, np.maximum(drop[pick] + 1, rng.integers(1, N_DROPS, pick.size)).astype(np.int8)


def replace_rows(text: pa.Array, index: np.ndarray, values: pa.Array) -> pa.Array:
    """``text`` with the rows ``index`` replaced by ``values`` (in order)."""
    mask = np.zeros(len(text), dtype=bool)
    mask[index] = True
    return pc.replace_with_mask(text, pa.array(mask), values)


def drop_files(writer: DropWriter, entity: str, drop: np.ndarray) -> pa.Array:
    """Per row, the drop file (relative to out_dir) it is written to."""
    return pick_labels([writer.path(k, entity) for k in range(N_DROPS)], drop)
