-- One row per order (as of the as-of date, duplicates merged), amounts in the reporting currency. Kept
-- incrementally per customer (dbt/macros/customer_incremental.sql).
{{ crm.fact_incremental_config('int_orders_deduplicated') }}
{{- crm.write_changed_fact_customers('int_orders_deduplicated') }}

with orders as {{ crm.changed_customers_cte() }} (

    select * from {{ ref('int_orders_deduplicated') }}
    where not is_duplicate and {{ crm.only_changed_fact_customers('customer_key') }}

),

keys as (

    select * from {{ ref('int_customer_keys_pseudonymised') }}

)

select
    cast(order_id as {{ crm.text() }}) as order_id,
    cast(keys.customer_key as {{ crm.text() }}) as customer_key,
    cast(order_at as timestamp) as order_at,
    cast(order_date as date) as order_date,
    cast(status as {{ crm.text() }}) as status,
    cast(currency as {{ crm.text() }}) as currency,
    cast(amount_original as double) as amount_original,
    {{ crm.to_cents('amount') }} as amount,
    {#- Revenue: a paid order counts, less what was refunded on it (at most its amount); a credit note (a negative
        order of a line-level file) nets out. Both sides in cents first, as amount and refunded_amount are published:
        586.93 less 78.27 is 508.66, where the unrounded amounts in the reporting currency gave 508.67. #}
    {{ crm.to_cents("case when status = 'paid' then " ~ crm.to_cents('amount') ~ " - "
                    ~ crm.to_cents('least(coalesce(refunded_amount, 0), amount)')
                    ~ " when amount < 0 then amount else 0 end") }} as net_amount,
    {{ crm.to_cents('refunded_amount') }} as refunded_amount,
    cast(status = 'paid' as boolean) as is_paid,
    cast(channel as {{ crm.text() }}) as channel,
    cast(rep_id as {{ crm.text() }}) as rep_id
from orders
inner join keys on orders.customer_key = keys.golden_customer_id
