"""Deterministic generator of a realistic, deliberately messy sample CRM export, plus its ground truth.

Layout
    ``out_dir/<YYYY-MM-DD>/<entity>.csv``, one folder per export day ("drop"):

    * ``end_date - 3``: full snapshot, every record as of the end of that day (customers and tickets in their
      latest version; opportunities with one row per stage change so far).
    * ``end_date - 2``, ``end_date - 1``, ``end_date``: daily deltas holding that day's new records, new versions
      of existing customers / opportunities / tickets, late-arriving orders and interactions (dated days before
      the drop) and a few rows re-delivered unchanged from an earlier drop.

    Products and sales reps only appear in the snapshot; campaigns in the drop of their start date.

Ground truth (``truth_dir``, default the sibling folder ``<out_dir name>_truth`` so it is never ingested)
    * ``customers_truth.parquet``: one row per customer_id: ``person_id`` (duplicates share it), ``is_primary``,
      ``household_id`` (set for people sharing a phone; they are different persons), ``signup_at``, BG/NBD
      ``lambda_per_day`` and ``p_dropout``, Gamma-Gamma ``nu`` and ``mean_spend`` (= p / nu, CNY),
      ``n_purchases`` (BG/NBD purchases of the person incl. the first), ``n_campaign_purchases`` (extra purchases
      caused by opened / clicked e-mails), ``last_purchase_at``, ``dropout_date`` (day after the last purchase,
      null if alive) and ``is_alive_at_end``. Person-level values repeat on both ids of a duplicated person.
    * ``planted_issues.parquet``: ``entity, file, key, kind`` of every invalid or orphan row planted; ``file`` is
      relative to out_dir, ``key`` the entity key (``order_id|line_number`` for order_items).
    * ``campaigns_truth.parquet``: one row per campaign: ``campaign_id, channel, start_date``, ``persons_reached``
      (persons e-mailed), ``participants`` (persons who opened or clicked), ``incremental_purchases`` and
      ``incremental_revenue`` (CNY): the paid purchases the opens / clicks caused, i.e. the campaign's true effect
      among its participants, and ``incremental_revenue_per_participant``. Non-e-mail campaigns cause none.
    * ``params.json``: model parameters (BG/NBD r, alpha, a, b; Gamma-Gamma p, q, v), seed, sizes, dates, FX rates,
      row counts.

Behaviour model (time unit: days)
    Persons sign up over the window with exponential growth; the signup is their first purchase. Repeat purchases
    follow BG/NBD exactly: rate lambda ~ Gamma(r, rate alpha), and after each repeat purchase the person drops out
    with probability p ~ Beta(a, b). Purchase times are an inhomogeneous Poisson process with intensity
    lambda * m(t), where m (weekday, yearly cycle, 618 / Singles' Day / National Day / Spring Festival, hour of day)
    has mean 1 over the window, so seasonality moves purchases in time without changing the mean rate; it is
    simulated by time change (inverting the cumulative intensity), which is thinning without rejected candidates.
    Order values follow Gamma-Gamma: nu ~ Gamma(q, rate v), value ~ Gamma(p, rate nu). In the 60-90 days before
    dropout, and after it, e-mail opens / clicks, web visits and NPS fall and unresolved low-CSAT tickets appear.
    Opened and clicked e-mails cause extra purchases (a real campaign lift), always before the person's last
    BG/NBD purchase. Cancelled and refunded orders are extra orders placed the same day as a real purchase.

Messiness (a few % each): duplicate persons under a second customer_id (e-mail case / whitespace, phone format),
households sharing a phone, missing values, mixed date and amount formats, status synonyms, some USD / EUR
orders, invalid and orphan rows, one GB18030 file with Chinese headers and CRLF, one UTF-8 file with a BOM, one
file with synonym headers and one with an extra column.

Scale and determinism: persons are simulated in chunks of ``CHUNK_PERSONS`` with numpy and appended to the CSV
files, formatting is vectorised with pyarrow, so memory is bounded by one chunk. Each chunk draws from its own
``SeedSequence`` child, so the same seed and sizes give byte-identical files.

Modules: ``generation`` (``generate``, chunk loop), ``params`` (model parameters, units, messiness rates),
``catalogue`` (names, places, products, teams, channels), ``export_calendar`` (window, drops, seasonality),
``persons`` (hidden behaviour), ``customers``, ``orders``, ``interactions``, ``campaigns``, ``sales_pipeline``,
``service`` (tickets, surveys), ``reference`` (products, reps, campaigns), ``formatting`` (mixed date / amount /
phone styles), ``vectorised`` and ``ids`` (array and text helpers), ``drops`` (CSV files per drop) and ``truth``.
"""

from dagster_project.sample_data.drops import NOT_WRITTEN, written_columns
from dagster_project.sample_data.generation import GenerateSummary, generate
from dagster_project.sample_data.params import CHUNK_PERSONS, FX_RATES, Params
from dagster_project.sample_data.truth import TRUTH_FILES

__all__ = ["CHUNK_PERSONS", "FX_RATES", "NOT_WRITTEN", "TRUTH_FILES", "GenerateSummary", "Params", "generate",
           "written_columns"]
