"""The ground truth written next to the export (never ingested): customers_truth.parquet (hidden behaviour per
customer id), planted_issues.parquet (every invalid or orphan row planted), campaigns_truth.parquet (each
campaign's true effect) and params.json. ``TRUTH_FILES`` names them, so a re-run can replace them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project.sample_data.catalogue import CAMPAIGN_CHANNELS
from dagster_project.sample_data.customers import CustomerRecords
from dagster_project.sample_data.ids import id_text
from dagster_project.sample_data.params import DAY, NEVER, Params
from dagster_project.sample_data.persons import Persons
from dagster_project.sample_data.reference import Reference
from dagster_project.sample_data.vectorised import blank, pick_labels

TRUTH_FILES = ("customers_truth.parquet", "planted_issues.parquet", "params.json", "campaigns_truth.parquet")

_TRUTH_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("person_id", pa.string()), ("is_primary", pa.bool_()),
    ("household_id", pa.string()), ("signup_at", pa.timestamp("s")), ("lambda_per_day", pa.float64()),
    ("p_dropout", pa.float64()), ("nu", pa.float64()), ("mean_spend", pa.float64()),
    ("n_purchases", pa.int64()), ("n_campaign_purchases", pa.int64()), ("last_purchase_at", pa.timestamp("s")),
    ("dropout_date", pa.date32()), ("is_alive_at_end", pa.bool_()),
])
CAMPAIGN_TRUTH_COUNTS = ("persons_reached", "participants", "incremental_purchases", "incremental_revenue_cents")
_ISSUES_SCHEMA = pa.schema([("entity", pa.string()), ("file", pa.string()), ("key", pa.string()),
                            ("kind", pa.string())])


class TruthWriter:
    """Collects the truth chunk by chunk (customers are streamed to parquet) and writes the rest on close."""

    def __init__(self, truth_dir: Path, ref: Reference):
        truth_dir.mkdir(parents=True, exist_ok=True)
        self.truth_dir = truth_dir
        self._customers = pq.ParquetWriter(truth_dir / "customers_truth.parquet", _TRUTH_SCHEMA)
        self._issues: list[pa.Table] = []
        self._ref = ref
        self._campaign_counts = np.zeros((len(CAMPAIGN_TRUTH_COUNTS), ref.campaign_start.size), np.int64)

    def customers(self, table: pa.Table) -> None:
        self._customers.write_table(table)

    def campaign_effects(self, counts: np.ndarray) -> None:
        """Add one chunk's per-campaign counts (rows: ``CAMPAIGN_TRUTH_COUNTS``)."""
        self._campaign_counts += counts

    def _write_campaigns(self) -> None:
        """campaigns_truth.parquet: per campaign, the persons e-mailed and responding, and the paid purchases the
        responses caused. Campaign purchases come on top of the BG/NBD purchases, so they are exactly the
        campaign's incremental effect among its participants; other channels cause no purchases (only leads)."""
        ref, counts = self._ref, dict(zip(CAMPAIGN_TRUTH_COUNTS, self._campaign_counts))
        participants = counts["participants"]
        revenue = counts["incremental_revenue_cents"] / 100
        with np.errstate(invalid="ignore", divide="ignore"):
            per_participant = np.where(participants > 0, revenue / participants, np.nan)
        pq.write_table(pa.table({
            "campaign_id": id_text("CMP", np.arange(1, ref.campaign_start.size + 1), 3),
            "channel": pick_labels(CAMPAIGN_CHANNELS, ref.campaign_channel),
            "start_date": pa.array(ref.campaign_start.astype(np.int32), pa.date32()),
            "persons_reached": counts["persons_reached"],
            "participants": participants,
            "incremental_purchases": counts["incremental_purchases"],
            "incremental_revenue": revenue,
            "incremental_revenue_per_participant": pa.array(per_participant, mask=np.isnan(per_participant)),
        }), self.truth_dir / "campaigns_truth.parquet")

    def planted(self, entity: str, files: pa.Array, keys: pa.Array, kind: str) -> None:
        n = len(keys)
        self._issues.append(pa.table([pa.array([entity] * n), files, keys, pa.array([kind] * n)],
                                     schema=_ISSUES_SCHEMA))

    def close(self, params: dict) -> None:
        self._customers.close()
        self._write_campaigns()
        pq.write_table(pa.concat_tables([_ISSUES_SCHEMA.empty_table(), *self._issues]),
                       self.truth_dir / "planted_issues.parquet")
        (self.truth_dir / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")


def customers_truth_table(persons: Persons, records: CustomerRecords, campaign_buys, params: Params) -> pa.Table:
    """One chunk's rows of customers_truth.parquet, by customer_id; person-level values repeat on both ids of a
    duplicated person."""
    person = records.person
    buyer, _, buy_t, _ = campaign_buys
    last_t = persons.last_t.copy()
    np.maximum.at(last_t, buyer, buy_t)
    dropped = persons.drop_t[person] < NEVER
    household = persons.household[person]
    table = pa.table({
        "customer_id": records.ids,
        "person_id": id_text("P", persons.first + person + 1, 8),
        "is_primary": records.primary,
        "household_id": blank(id_text("P", household + 1, 8), household < 0),
        "signup_at": pa.array(records.t0, pa.timestamp("s")),
        "lambda_per_day": persons.lam[person],
        "p_dropout": persons.p_drop[person],
        "nu": persons.nu[person],
        "mean_spend": params.p / persons.nu[person],
        "n_purchases": persons.n_purchases[person],
        "n_campaign_purchases": np.bincount(buyer, minlength=persons.size)[person],
        "last_purchase_at": pa.array(last_t[person], pa.timestamp("s")),
        "dropout_date": pa.array((persons.drop_t[person] // DAY + 1).astype(np.int32), pa.date32(), mask=~dropped),
        "is_alive_at_end": ~dropped,
    }, schema=_TRUTH_SCHEMA)
    return table.take(np.argsort(records.number))
