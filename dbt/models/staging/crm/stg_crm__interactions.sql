-- The winning version of each valid interactions record; quarantined rows and superseded versions stay in base_crm__interactions.
with source as (

    select * from {{ ref('base_crm__interactions') }}

),

latest as (

    select
        interaction_id,
        customer_id,
        interaction_type,
        occurred_at,
        campaign_id,
        rep_id,
        occurred_at_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
