-- The winning version of each valid opportunities record; quarantined rows and superseded versions stay in base_crm__opportunities.
with source as (

    select * from {{ ref('base_crm__opportunities') }}

),

latest as (

    select * exclude (_quarantine_reason, _version_rank)
    from source
    where _version_rank = 1

)

select * from latest
