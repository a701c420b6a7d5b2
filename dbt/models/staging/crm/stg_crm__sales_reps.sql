-- The winning version of each valid sales_reps record; quarantined rows and superseded versions stay in base_crm__sales_reps.
with source as (

    select * from {{ ref('base_crm__sales_reps') }}

),

latest as (

    select
        rep_id,
        rep_name,
        team,
        region,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
