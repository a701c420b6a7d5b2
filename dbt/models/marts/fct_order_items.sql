-- Order lines of the orders in fct_orders, priced in the order's currency and converted to the reporting one. Kept
-- incrementally per customer, with the changes of the orders' deduplication (dbt/macros/customer_incremental.sql).
{{ crm.fact_incremental_config('int_orders_deduplicated', after='fct_orders') }}
{{- crm.write_changed_fact_customers('int_orders_deduplicated', after='fct_orders') }}
with items as (

    select * from {{ ref('int_order_lines_checked') }}
    where not is_unattributed and _order_conflict_reason is null and not coalesce(is_earlier_delivery, false)

),

orders as {{ crm.changed_customers_cte() }} (

    select * from {{ ref('fct_orders') }}
    where {{ crm.only_changed_fact_customers('customer_key', pseudonym=true) }}

),

rates as (

    select * from {{ ref('currency_rates') }}

),

reporting as (

    select usd_per_unit from rates where currency = '{{ var("reporting_currency") }}'

)

select
    cast(items.order_id as {{ crm.text() }}) as order_id,
    cast(items.line_number as integer) as line_number,
    cast(items.product_id as {{ crm.text() }}) as product_id,
    cast(items.quantity as double) as quantity,
    {{ crm.to_cents('items.unit_price_original * rates.usd_per_unit / reporting.usd_per_unit') }} as unit_price,
    {{ crm.to_cents('items.discount_original * rates.usd_per_unit / reporting.usd_per_unit') }} as discount,
    {{ crm.to_cents('items.line_amount_original * rates.usd_per_unit / reporting.usd_per_unit') }} as line_amount,
    cast(orders.customer_key as {{ crm.text() }}) as customer_key,
    cast(orders.order_date as date) as order_date,
    cast(orders.status as {{ crm.text() }}) as status
from items
inner join orders on items.order_id = orders.order_id
inner join rates on orders.currency = rates.currency
cross join reporting
