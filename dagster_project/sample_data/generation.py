"""``generate``: writes the export and its truth. Reference data is drawn once; persons are then simulated in
chunks of ``CHUNK_PERSONS``, each from its own seed, and every chunk's rows are appended to the drop files."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import date
from itertools import chain
from pathlib import Path
from typing import Callable

import numpy as np

from dagster_project.sample_data.campaigns import campaign_effect_counts, campaign_purchases, email_touches
from dagster_project.sample_data.customers import export_customers, make_records
from dagster_project.sample_data.drops import DropWriter
from dagster_project.sample_data.export_calendar import Calendar
from dagster_project.sample_data.ids import IdCounters
from dagster_project.sample_data.interactions import export_interactions
from dagster_project.sample_data.orders import export_orders, make_orders
from dagster_project.sample_data.params import CHUNK_PERSONS, FX_RATES, Params
from dagster_project.sample_data.persons import make_persons, simulate_purchases
from dagster_project.sample_data.reference import Reference
from dagster_project.sample_data.sales_pipeline import export_leads, make_leads
from dagster_project.sample_data.service import export_surveys, export_tickets
from dagster_project.sample_data.truth import TRUTH_FILES, TruthWriter, customers_truth_table


@dataclass
class GenerateSummary:
    """What a run wrote, for the command line."""

    out_dir: Path
    truth_dir: Path
    drop_dates: list[date]
    rows: dict[str, int]  # rows written per entity, over all drops
    files: list[Path]
    persons: int
    customer_ids: int
    elapsed_seconds: float

    def lines(self) -> list[str]:
        return [
            f"{self.persons:,} persons under {self.customer_ids:,} customer ids in {self.elapsed_seconds:.1f} s",
            f"drops: {self.drop_dates[0]} (snapshot), " + ", ".join(str(d) for d in self.drop_dates[1:]),
            *(f"  {entity:<14}{count:>12,} rows" for entity, count in self.rows.items()),
            f"export: {self.out_dir} ({len(self.files)} files)",
            f"ground truth: {self.truth_dir}",
        ]


def generate(out_dir: Path, customers: int = 10_000, days: int = 1095, seed: int = 42,
             truth_dir: Path | None = None, end_date: date = date(2026, 10, 31),
             progress: Callable[[str], None] | None = None) -> GenerateSummary:
    """Write a messy CRM export of ``customers`` persons over ``days`` days ending at ``end_date``.

    ``customers`` counts persons; ~3% of them get a second customer_id. Existing drop folders and truth files of
    an earlier run in the same places are replaced.
    """
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    if customers < 1 or days < 30:
        raise ValueError("need at least 1 customer and 30 days of history")
    out_dir = Path(out_dir)
    truth_dir = Path(truth_dir) if truth_dir is not None else out_dir.parent / f"{out_dir.name}_truth"
    if truth_dir.resolve().is_relative_to(out_dir.resolve()):
        raise ValueError(f"truth_dir {truth_dir} must be outside the export folder {out_dir}")
    _clear_previous_output(out_dir, truth_dir)

    params = Params()
    cal = Calendar.build(end_date, days, params.signup_growth)
    reference_seq, chunk_seq = np.random.SeedSequence(seed).spawn(2)
    say("reference data: products, sales reps, campaigns")
    ref = Reference.build(np.random.default_rng(reference_seq), cal)
    writer = DropWriter(out_dir, cal.drop_dates)
    truth = TruthWriter(truth_dir, ref)
    for entity, columns, drop in ref.exports(cal):
        writer.append(entity, columns, drop)

    counters = IdCounters()
    n_chunks = -(-customers // CHUNK_PERSONS)
    for k, chunk_seed in enumerate(chunk_seq.spawn(n_chunks)):
        first = k * CHUNK_PERSONS
        size = min(CHUNK_PERSONS, customers - first)
        say(f"customers {first + 1:,}-{first + size:,} of {customers:,}")
        _generate_chunk(np.random.default_rng(chunk_seed), first, size, cal, params, ref, counters, writer, truth)

    say("ground truth")
    files = writer.close()
    truth.close({
        "seed": seed, "persons": customers, "customer_ids": counters.customer, "days": days,
        "start_date": cal.start.isoformat(), "end_date": end_date.isoformat(),
        "drop_dates": [d.isoformat() for d in cal.drop_dates], "time_unit": "days", "currency": "CNY",
        "bg_nbd": {"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b},
        "gamma_gamma": {"p": params.p, "q": params.q, "v": params.v},
        "fx_rates_cny": FX_RATES, "model": asdict(params), "rows": writer.rows,
    })
    return GenerateSummary(out_dir, truth_dir, list(cal.drop_dates), dict(writer.rows), files, customers,
                           counters.customer, time.perf_counter() - started)


def _clear_previous_output(out_dir: Path, truth_dir: Path) -> None:
    """Remove what an earlier run wrote (date folders of CSVs, truth files) and nothing else."""
    if out_dir.is_dir():
        for folder in out_dir.iterdir():
            if (folder.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", folder.name)
                    and all(f.suffix == ".csv" for f in folder.iterdir())):
                shutil.rmtree(folder)
    for name in TRUTH_FILES:
        (truth_dir / name).unlink(missing_ok=True)


def _generate_chunk(rng, first: int, n: int, cal: Calendar, params: Params, ref: Reference,
                    counters: IdCounters, writer: DropWriter, truth: TruthWriter) -> None:
    """Simulate persons ``first`` .. ``first + n - 1`` and append their rows and truth (the order of the draws is
    part of the output: changing it changes every file)."""
    persons = make_persons(rng, first, n, cal, params)
    leads = make_leads(rng, persons, cal, ref, params)  # moves the signup of customers won by sales
    repeats = simulate_purchases(rng, persons, cal, params)
    records = make_records(rng, persons, cal, counters, params)
    emails, responses = email_touches(rng, persons, records, cal, ref)
    campaign_buys = campaign_purchases(rng, persons, responses, cal, params)
    orders = make_orders(rng, persons, records, repeats, campaign_buys, cal, ref, params, counters)
    # Each export yields blocks of rows (main rows, re-deliveries, orphans) that are appended as they come.
    for entity, columns, drop in chain(
        export_customers(rng, persons, records, cal),
        export_orders(rng, orders, records, cal, counters, writer, truth),
        export_interactions(rng, persons, records, emails, cal, ref, counters, writer, truth),
        export_tickets(rng, persons, records, cal, ref, counters),
        export_surveys(rng, persons, records, cal, counters),
        export_leads(rng, leads, records, cal, counters),
    ):
        writer.append(entity, columns, drop)
    truth.customers(customers_truth_table(persons, records, campaign_buys, params))
    truth.campaign_effects(campaign_effect_counts(records, emails, responses, orders, ref.campaign_start.size))
