{#-
  Orders of line-level files, one per order id, from the lines that agree on the order (int_order_lines_checked):
  amount = sum of the line amounts, customer, date, currency and status from the lines. An order whose lines sum
  to less than zero is a credit note (a return or cancellation invoice): status refunded, its negative amount nets
  out of revenue. The order's refunded amount is written once per order (on its first line, or the same on every
  line): its largest.
-#}
with lines as (

    select * from {{ ref('int_order_lines_checked') }}
    where carries_order and not is_unattributed and _order_conflict_reason is null
        and not coalesce(is_earlier_delivery, false)

),

orders as (

    select
        order_id,
        min(customer_id) as customer_id,
        min(order_at) as order_at,
        min(status) as given_status,
        bool_or(status_text is not null) as has_status,
        sum(line_amount_original) as amount_original,
        max(refunded_amount_original) as refunded_amount_original,
        min(currency) as currency,
        max(channel) as channel,
        max(rep_id) as rep_id,
        max(updated_at) as updated_at,
        min(_source_file) as _source_file,
        max(_drop_date) as _drop_date,
        min(_row_number) as _row_number,
        max(_loaded_at) as _loaded_at
    from lines
    group by order_id

),

final as (

    select
        order_id,
        false as has_derived_id,
        customer_id,
        order_at,
        case
            when amount_original < 0 then 'refunded'
            when has_status then given_status
            else 'paid'
        end as status,
        amount_original,
        refunded_amount_original,
        currency,
        channel,
        rep_id,
        updated_at,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from orders

)

select * from final
