-- The winning version of each valid customers record; quarantined rows and superseded versions stay in base_crm__customers.
with source as (

    select * from {{ ref('base_crm__customers') }}

),

latest as (

    select * exclude (_quarantine_reason, _version_rank)
    from source
    where _version_rank = 1

)

select * from latest
