-- The winning version of each valid customers record; quarantined rows and superseded versions stay in base_crm__customers.
with source as (

    select * from {{ ref('base_crm__customers') }}

),

latest as (

    select
        customer_id,
        person_id,
        customer_name,
        name_match_key,
        email,
        phone,
        gender,
        birth_date,
        city,
        region,
        country,
        signup_date,
        acquisition_channel,
        marketing_consent,
        updated_at,
        has_invalid_email,
        has_invalid_phone,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at
    from source
    where _version_rank = 1

)

select * from latest
