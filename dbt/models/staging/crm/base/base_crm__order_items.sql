with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'order_items') }}

),

numbered as {{ crm.inlined_cte() }} (

    {{ crm.with_occurrences('source', crm.parse_integer('line_number'), ['order_id']) }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        {{ crm.clean_text('order_id') }} as order_id,
        coalesce({{ crm.parse_integer('line_number') }}, _occurrence) as line_number,
        {{ crm.clean_text('product_id') }} as product_id,
        {{ crm.parse_number('quantity') }} as quantity,
        {{ crm.parse_amount('unit_price') }} as unit_price_original,
        coalesce({{ crm.parse_amount('discount') }}, 0) as discount_original,
        {{ crm.parse_timestamp('updated_at') }} as updated_at,
        quantity as quantity_text,
        unit_price as unit_price_text,
        discount as discount_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from numbered

),

validated as {{ crm.inlined_cte() }} (

    select
        *,
        case
            when order_id is null then 'missing order_id'
            when product_id is null then 'missing product_id'
            when quantity_text is null then 'missing quantity'
            when quantity is null then 'non-numeric quantity'
            when quantity <= 0 then 'non-positive quantity'
            when unit_price_text is not null and unit_price_original is null then 'unparseable unit_price'
            when unit_price_original < 0 then 'negative unit_price'
            when discount_text is not null and {{ crm.parse_amount('discount_text') }} is null then 'unparseable discount'
            {#- Beyond these a line's amount is not a sale but a typo, and would overflow the money columns. #}
            when unit_price_original > {{ var('max_order_amount') }} then 'unit_price above max_order_amount'
            when quantity * coalesce(unit_price_original, 0) > {{ var('max_order_amount') }}
                then 'line amount (quantity * unit_price) above max_order_amount'
            when abs(discount_original) > {{ var('max_order_amount') }} then 'discount above max_order_amount'
        end as _quarantine_reason
    from renamed

),

{{ crm.ranked_versions('validated', ['order_id', 'line_number']) }}
