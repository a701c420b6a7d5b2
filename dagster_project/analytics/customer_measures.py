"""The per-customer measures as of a date (orders, revenue, first / last order, recency, frequency, engagement,
tickets, NPS), defined once in dbt: ``dbt/macros/customer_measures.sql``. marts.customer_360 shows them at the
as-of date; a post-hook of customer_360 stores the same SQL in the working database as two DuckDB table macros,
which the analytics call at their own cutoffs:

- ``intermediate.customer_measures_as_of(cutoff, settle_days := 0, sample_keep := 10000, sample_seed := 0)``: one
  row per customer with any event by the cutoff, every measure named as in customer_360 plus the finer ones
  (per interaction type, trends);
- ``intermediate.customer_orders_as_of(...)``: the orders those measures count, with their status as of the cutoff.

``settle_days`` delays a cancellation or refund that many days after the order (see the dbt macro); ``sample_keep``
(per 10,000) keeps a seeded hash sample of the customers, the same ones in every fact table.
"""

from __future__ import annotations

MEASURES = "intermediate.customer_measures_as_of"
ORDERS = "intermediate.customer_orders_as_of"

# The interaction types counted one by one, and the plural that names their columns (emails_sent_90d): as in the
# dbt macro's interaction_measure_names.
INTERACTION_COLUMNS = {
    "email_sent": "emails_sent", "email_open": "email_opens", "email_click": "email_clicks", "call": "calls",
    "meeting": "meetings", "web_visit": "web_visits", "chat": "chats",
}
