{#-
  Every valid order line with what its order makes of it. Lines of a line-level file carry their order's customer,
  date, currency and status, on every line or (as a shop system's export does) on the order's first line only: a line
  that leaves them blank takes its order's. Where a line states another value than its order's first line that
  states one, it is quarantined (its order is derived from the lines that agree) rather than letting one line
  silently decide the order. An order of a line-level file with no customer id on any line is a sale to no known
  customer (a walk-in or guest sale): its lines are unattributed, counted in reconciliation, in no customer's order.
  A line-level file delivers each of its orders whole: when a later drop delivers an order again, the lines of its
  earlier drops that the new delivery no longer has (a line removed in the CRM) are superseded with it
  (is_earlier_delivery); the lines it has again were already versioned line by line in the base model.
-#}
{#- A view: materialised, it would copy every order line of a large export once more, while its readers each need only
    some of its rows (the windows below run on line-level files' orders only). -#}
{{ config(materialized='view') }}

with lines as {{ crm.inlined_cte() }} (

    select * from {{ ref('stg_crm__order_items') }}

),

line_level_orders as (

    select order_id, max(_drop_date) as last_delivery from lines where carries_order group by order_id

),

delivered_lines as (

    select
        lines.*,
        line_level_orders.last_delivery,
        lines.carries_order and lines._drop_date < line_level_orders.last_delivery as is_earlier_delivery
    from lines
    join line_level_orders on lines.order_id = line_level_orders.order_id

),

order_lines as (

    select
        *,
        {{ crm.first_non_null("customer_id") }} over order_lines as order_customer_id,
        {{ crm.first_non_null("cast(order_at as date)") }} over order_lines as order_day,
        {{ crm.first_non_null("case when currency_text is not null then currency end") }} over order_lines
            as order_currency,
        {{ crm.first_non_null("case when status_text is not null then status end") }} over order_lines as order_status,
        {{ crm.first_non_null("case when customer_id is not null then line_number end") }} over order_lines
            as first_line_number
    from delivered_lines
    {#- Its own window for an earlier delivery's lines: the order is what its last delivery says. #}
    window order_lines as (
        partition by order_id, is_earlier_delivery
        order by line_number, _drop_date, _source_file, _row_number
        rows between unbounded preceding and unbounded following
    )

),

checked as (

    select
        *,
        case
            when customer_id <> order_customer_id then 'customer_id'
            when cast(order_at as date) <> order_day then 'order_date'
            when currency_text is not null and currency <> order_currency then 'currency'
            when status_text is not null and status <> order_status then 'status'
        end as conflicting_attribute
    from order_lines

),

final as (

    select
        order_id, line_number, product_id, quantity, unit_price_original, discount_original, line_amount_original,
        coalesce(customer_id, order_customer_id) as customer_id,
        coalesce(order_at, cast(order_day as timestamp)) as order_at,
        coalesce(case when status_text is not null then status end, order_status, status) as status,
        status_text,
        refunded_amount_original,
        coalesce(case when currency_text is not null then currency end, order_currency, currency) as currency,
        channel, rep_id,
        true as carries_order,
        updated_at,
        order_customer_id is null as is_unattributed,
        is_earlier_delivery,
        case
            when order_day is null then 'missing order_date'
            when conflicting_attribute is not null then 'conflicting order attributes'
        end as _order_conflict_reason,
        case
            when is_earlier_delivery
            then 'the drop of ' || cast(last_delivery as {{ dbt.type_string() }})
                || ' delivered the order again without this line'
            when order_day is null then 'no line of the order has a date'
            when conflicting_attribute is not null
            then conflicting_attribute || ' differs from line ' || cast(first_line_number as {{ dbt.type_string() }})
                || ' of the order, which was kept'
        end as _order_conflict_detail,
        _source_file, _drop_date, _row_number, _loaded_at
    from checked
    union all
    select
        order_id, line_number, product_id, quantity, unit_price_original, discount_original, line_amount_original,
        customer_id, order_at, status, status_text, refunded_amount_original, currency, channel, rep_id,
        false as carries_order,
        updated_at,
        false as is_unattributed,
        false as is_earlier_delivery,
        cast(null as {{ dbt.type_string() }}) as _order_conflict_reason,
        cast(null as {{ dbt.type_string() }}) as _order_conflict_detail,
        _source_file, _drop_date, _row_number, _loaded_at
    from lines
    where order_id not in (select order_id from line_level_orders)

)

select * from final
