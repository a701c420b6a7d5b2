{#-
  Every valid order line with what its order makes of it. Lines of a line-level file carry their order's customer,
  date, currency and status; within one order these must agree with the order's first line, and a line that
  disagrees is quarantined (its order is derived from the lines that agree) rather than letting one line silently
  decide the order. A line without a customer id is a sale to no known customer (a walk-in or guest sale):
  unattributed, counted in reconciliation, in no customer's order.
-#}
{#- A view: materialised, it would copy every order line of a large export once more, while its readers each need only
    some of its rows (the window below runs on line-level files' lines only). -#}
{{ config(materialized='view') }}

with lines as (

    select * from {{ ref('stg_crm__order_items') }}

),

attributed as (

    select
        *,
        first_value(customer_id) over order_lines as order_customer_id,
        first_value(cast(order_at as date)) over order_lines as order_day,
        first_value(currency) over order_lines as order_currency,
        first_value(status) over order_lines as order_status,
        first_value(line_number) over order_lines as first_line_number
    from lines
    where carries_order and customer_id is not null
    window order_lines as (partition by order_id order by line_number, _drop_date, _source_file, _row_number)

),

checked as (

    select
        *,
        case
            when customer_id <> order_customer_id then 'customer_id'
            when cast(order_at as date) <> order_day then 'order_date'
            when currency <> order_currency then 'currency'
            when status <> order_status then 'status'
        end as conflicting_attribute
    from attributed

),

order_lines as (

    select
        checked.*,
        false as is_unattributed,
        case when conflicting_attribute is not null then 'conflicting order attributes' end as _order_conflict_reason,
        case when conflicting_attribute is not null
            then conflicting_attribute || ' differs from line ' || cast(first_line_number as {{ dbt.type_string() }})
                || ' of the order, which was kept'
        end as _order_conflict_detail
    from checked

),

other_lines as (

    select
        *,
        carries_order as is_unattributed,
        cast(null as {{ dbt.type_string() }}) as _order_conflict_reason,
        cast(null as {{ dbt.type_string() }}) as _order_conflict_detail
    from lines
    where not (carries_order and customer_id is not null)

),

final as (

    select
        order_id, line_number, product_id, quantity, unit_price_original, discount_original, line_amount_original,
        customer_id, order_at, status, status_text, currency, channel, rep_id, carries_order, updated_at,
        is_unattributed, _order_conflict_reason, _order_conflict_detail,
        _source_file, _drop_date, _row_number, _loaded_at
    from order_lines
    union all
    select
        order_id, line_number, product_id, quantity, unit_price_original, discount_original, line_amount_original,
        customer_id, order_at, status, status_text, currency, channel, rep_id, carries_order, updated_at,
        is_unattributed, _order_conflict_reason, _order_conflict_detail,
        _source_file, _drop_date, _row_number, _loaded_at
    from other_lines

)

select * from final
