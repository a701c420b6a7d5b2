-- The winning version of each valid surveys record; quarantined rows and superseded versions stay in base_crm__surveys.
with source as (

    select * from {{ ref('base_crm__surveys') }}

),

latest as (

    select
        survey_id,
        customer_id,
        answered_at,
        nps,
        answered_at_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
