-- The winning version of each valid orders record; quarantined rows and superseded versions stay in base_crm__orders.
with source as (

    select * from {{ ref('base_crm__orders') }}

),

latest as (

    select
        order_id,
        has_derived_id,
        customer_id,
        order_at,
        status,
        amount_original,
        refunded_amount_original,
        currency,
        channel,
        rep_id,
        updated_at,
        order_date_text,
        amount_text,
        status_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
