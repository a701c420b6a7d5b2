-- The winning version of each valid products record; quarantined rows and superseded versions stay in base_crm__products.
with source as (

    select * from {{ ref('base_crm__products') }}

),

latest as (

    select
        product_id,
        product_name,
        category,
        list_price_original,
        currency,
        updated_at,
        list_price_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
