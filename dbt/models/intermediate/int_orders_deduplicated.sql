{#-
  Orders as of the as-of date, on their golden customer, in the reporting currency. An order submitted twice
  (same customer, same second, same amount and currency under two ids, e.g. a double click) keeps its
  smallest id; orders whose time of day is unknown are never treated as duplicates of each other.
  Kept incrementally per customer (dbt/macros/customer_incremental.sql).
-#}
-- depends_on: {{ ref('base_crm__orders') }}, {{ ref('base_crm__order_items') }}
{%- set bases = [('base_crm__orders', 'order_id'), ('base_crm__order_items', 'order_id')] %}
{{ crm.customer_incremental_config(bases, loads_of='int_orders_combined') }}
{{- crm.write_changed_customers(bases, ref('int_orders_combined'), 'order_id', 'order_at',
                                loads_of='int_orders_combined') }}

with orders as (

    select * from {{ ref('int_orders_combined') }}

),

identities as {{ crm.changed_customers_cte() }} (

    select * from {{ ref('int_customer_identities_resolved') }}
    where {{ crm.only_changed_customers('customer_key') }}

),

rates as (

    select * from {{ ref('currency_rates') }}

),

as_of_orders as (

    select orders.*, identities.customer_key
    from orders
    inner join identities on orders.customer_id = identities.source_customer_id
    where cast(orders.order_at as date) <= {{ crm.as_of_date() }}

),

ranked as (

    select
        *,
        case
            when {{ crm.is_midnight('order_at') }} then 1
            else row_number() over (
                partition by customer_key, order_at, amount_original, currency, {{ crm.is_midnight('order_at') }}
                order by order_id
            )
        end as duplicate_rank
    from as_of_orders

)

select
    ranked.order_id,
    ranked.customer_key,
    ranked.customer_id as source_customer_id,
    ranked.order_at,
    cast(ranked.order_at as date) as order_date,
    ranked.status,
    ranked.currency,
    ranked.amount_original,
    {{ crm.to_reporting_currency('ranked.amount_original', 'rates') }} as amount,
    {{ crm.to_reporting_currency('ranked.refunded_amount_original', 'rates') }} as refunded_amount,
    ranked.channel,
    ranked.rep_id,
    ranked.has_derived_id,
    ranked._source_file,
    ranked._drop_date,
    ranked._row_number,
    ranked.duplicate_rank > 1 as is_duplicate
from ranked
inner join rates on ranked.currency = rates.currency
