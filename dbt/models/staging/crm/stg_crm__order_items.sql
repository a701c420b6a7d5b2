-- The winning version of each valid order_items record; quarantined rows and superseded versions stay in base_crm__order_items.
with source as (

    select * from {{ ref('base_crm__order_items') }}

),

latest as (

    select
        order_id,
        line_number,
        product_id,
        quantity,
        unit_price_original,
        discount_original,
        coalesce(line_amount_original, quantity * coalesce(unit_price_original, 0) - discount_original)
            as line_amount_original,
        customer_id,
        order_at,
        status,
        refunded_amount_original,
        currency,
        channel,
        rep_id,
        carries_order,
        updated_at,
        quantity_text,
        unit_price_text,
        discount_text,
        status_text,
        currency_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
