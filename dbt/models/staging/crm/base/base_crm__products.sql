with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'products') }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        {{ crm.clean_text('product_id') }} as product_id,
        {{ crm.clean_text('product_name') }} as product_name,
        {{ crm.clean_text('category') }} as category,
        {{ crm.parse_amount('list_price') }} as list_price_original,
        {{ crm.resolve_currency('currency', 'list_price') }} as currency,
        {{ crm.parse_timestamp('updated_at') }} as updated_at,
        list_price as list_price_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from source

),

validated as {{ crm.inlined_cte() }} (

    select
        renamed.*,
        case
            when product_id is null then 'missing product_id'
            when list_price_text is not null and list_price_original is null then 'unparseable list_price'
            when list_price_original < 0 then 'negative list_price'
            when list_price_original > {{ var('max_order_amount') }} then 'list_price above max_order_amount'
            when rates.currency is null then 'unknown currency'
        end as _quarantine_reason
    from renamed
    left join {{ ref('currency_rates') }} as rates on renamed.currency = rates.currency

),

{{ crm.contested_versions('validated', ['product_id']) }}

select validated.*, {{ crm.version_columns('validated') }}
from validated
left join contested_versions using (_source_file, _row_number)
