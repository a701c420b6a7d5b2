with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'orders') }}

),

numbered as {{ crm.inlined_cte() }} (

    {{ crm.with_occurrences('source', crm.clean_text('order_id'), ['customer_id', 'order_date', 'amount', 'currency']) }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        coalesce(
            {{ crm.clean_text('order_id') }},
            {{ crm.derived_id('o', ['customer_id', 'order_date', 'amount', 'currency']) }}
        ) as order_id,
        order_id is null as has_derived_id,
        {{ crm.clean_text('customer_id') }} as customer_id,
        {{ crm.parse_timestamp('order_date') }} as order_at,
        case
            when status is null then 'paid'
            when {{ crm.clean_code('status') }} in ('paid', 'completed', 'complete', 'success', 'succeeded',
                'shipped', 'delivered', 'closed', 'fulfilled', '已支付', '已完成', '完成') then 'paid'
            when {{ crm.clean_code('status') }} in ('cancelled', 'canceled', 'void', 'voided', '已取消', '取消') then 'cancelled'
            when {{ crm.clean_code('status') }} in ('refunded', 'refund', 'returned', 'return', '已退款', '退款') then 'refunded'
        end as status,
        {{ crm.parse_amount('amount') }} as amount_original,
        {{ crm.resolve_currency('currency', 'amount') }} as currency,
        {{ crm.clean_code('channel') }} as channel,
        {{ crm.clean_text('rep_id') }} as rep_id,
        {{ crm.parse_timestamp('updated_at') }} as updated_at,
        order_date as order_date_text,
        amount as amount_text,
        status as status_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from numbered

),

validated as {{ crm.inlined_cte() }} (

    select
        renamed.*,
        case
            when customer_id is null then 'missing customer_id'
            when order_date_text is null then 'missing order_date'
            when order_at is null then 'unparseable order_date'
            when cast(order_at as date) > _drop_date then 'order_date after its export drop'
            when amount_text is null then 'missing amount'
            when amount_original is null then 'unparseable amount'
            when amount_original < 0 then 'negative amount'
            when amount_original > {{ var('max_order_amount') }} then 'amount above max_order_amount'
            when status is null then 'unknown status ' || status_text
            when rates.currency is null then 'unknown currency ' || renamed.currency
        end as _quarantine_reason
    from renamed
    left join {{ ref('currency_rates') }} as rates on renamed.currency = rates.currency

),

{{ crm.ranked_versions('validated', ['order_id']) }}
