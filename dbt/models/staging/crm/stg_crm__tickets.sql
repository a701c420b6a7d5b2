-- The winning version of each valid tickets record; quarantined rows and superseded versions stay in base_crm__tickets.
with source as (

    select * from {{ ref('base_crm__tickets') }}

),

latest as (

    select
        ticket_id,
        customer_id,
        opened_at,
        first_response_at,
        resolved_at,
        status_code,
        category,
        satisfaction,
        rep_id,
        updated_at,
        opened_at_text,
        satisfaction_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
