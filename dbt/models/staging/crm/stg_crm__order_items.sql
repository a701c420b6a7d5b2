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
        updated_at,
        quantity_text,
        unit_price_text,
        discount_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
