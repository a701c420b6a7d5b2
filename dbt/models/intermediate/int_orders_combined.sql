{#-
  Every valid order, whatever grain it was exported at: the orders of order files (an order without an amount,
  as in a marketplace's order file, takes the sum of its lines) and the orders derived from line-level files. An
  order id in both keeps the order file's attributes. An order with neither an amount nor lines lands nowhere
  (audit_raw_rows_classified quarantines it as missing amount).
  Kept incrementally per order id (dbt/macros/order_incremental.sql); it records the base models' loads it was built
  from, for int_orders_deduplicated (dbt/macros/customer_incremental.sql).
-#}
-- depends_on: {{ ref('base_crm__orders') }}, {{ ref('base_crm__order_items') }}
{%- set bases = ['base_crm__orders', 'base_crm__order_items'] %}
{{ crm.order_incremental_config(bases) }}
{{- crm.write_changed_orders(bases) }}

with header_orders as (

    select * from {{ ref('stg_crm__orders') }}
    where {{ crm.only_changed_orders('order_id') }}

),

line_totals as (

    select
        order_id,
        sum(line_amount_original) as amount_original,
        min(currency) as currency
    from {{ ref('int_order_lines_checked') }}
    where not is_unattributed and _order_conflict_reason is null and not coalesce(is_earlier_delivery, false)
        {#- Only orders that need it: summing every line of a large export would cost more than the rest. #}
        and order_id in (select order_id from header_orders where amount_original is null)
    group by order_id

),

lines_orders as (

    {#- (header_orders holds the changed orders only on an incremental build: so do these.) #}
    select * from {{ ref('int_orders_from_lines') }}
    where {{ crm.only_changed_orders('order_id') }} and order_id not in (select order_id from header_orders)

),

priced_header_orders as (

    select
        header_orders.order_id,
        header_orders.has_derived_id,
        header_orders.customer_id,
        header_orders.order_at,
        header_orders.status,
        coalesce(header_orders.amount_original, line_totals.amount_original) as amount_original,
        header_orders.refunded_amount_original,
        case when header_orders.amount_original is null then line_totals.currency else header_orders.currency end
            as currency,
        header_orders.channel,
        header_orders.rep_id,
        header_orders.updated_at,
        header_orders._source_file,
        header_orders._drop_date,
        header_orders._row_number,
        header_orders._loaded_at
    from header_orders
    left join line_totals on header_orders.order_id = line_totals.order_id
    where coalesce(header_orders.amount_original, line_totals.amount_original) is not null

),

final as (

    select * from priced_header_orders
    union all
    select
        order_id, has_derived_id, customer_id, order_at, status, amount_original, refunded_amount_original, currency,
        channel, rep_id, updated_at, _source_file, _drop_date, _row_number, _loaded_at
    from lines_orders

)

select * from final
