-- The winning version of each valid campaigns record; quarantined rows and superseded versions stay in base_crm__campaigns.
with source as (

    select * from {{ ref('base_crm__campaigns') }}

),

latest as (

    select
        campaign_id,
        campaign_name,
        channel,
        start_date,
        end_date,
        cost_original,
        currency,
        cost_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
