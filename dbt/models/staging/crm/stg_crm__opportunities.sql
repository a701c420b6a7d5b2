-- The winning version of each valid opportunities record; quarantined rows and superseded versions stay in base_crm__opportunities.
with source as (

    select * from {{ ref('base_crm__opportunities') }}

),

latest as (

    select
        opportunity_id,
        customer_id,
        created_at,
        source,
        campaign_id,
        stage,
        stage_changed_at,
        amount_original,
        currency,
        owner_rep_id,
        amount_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
