-- The winning version of each valid tickets record; quarantined rows and superseded versions stay in base_crm__tickets.
with source as (

    select * from {{ ref('base_crm__tickets') }}

),

latest as (

    select * exclude (_quarantine_reason, _version_rank)
    from source
    where _version_rank = 1

)

select * from latest
