with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'customers') }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        {{ crm.clean_id('customer_id') }} as customer_id,
        {{ crm.clean_text('person_id') }} as person_id,
        {{ crm.clean_text('name') }} as customer_name,
        {{ crm.normalise_name('name') }} as name_match_key,
        {{ crm.normalise_email('email') }} as email,
        {{ crm.normalise_phone('phone') }} as phone,
        {{ crm.normalise_gender('gender') }} as gender,
        {{ crm.parse_date('birth_date') }} as birth_date,
        {{ crm.clean_text('city') }} as city,
        {{ crm.clean_text('region') }} as region,
        upper({{ crm.clean_text('country') }}) as country,
        {{ crm.parse_date('signup_date') }} as signup_date,
        {{ crm.clean_code('acquisition_channel') }} as acquisition_channel,
        {{ crm.parse_boolean('marketing_consent') }} as marketing_consent,
        {{ crm.parse_timestamp('updated_at') }} as updated_at,
        email is not null and {{ crm.normalise_email('email') }} is null as has_invalid_email,
        phone is not null and {{ crm.normalise_phone('phone') }} is null as has_invalid_phone,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from source

),

validated as {{ crm.inlined_cte() }} (

    select
        *,
        case
            when customer_id is null then 'missing customer_id'
            when cast(updated_at as date) > _drop_date then 'updated_at after its export drop'
        end as _quarantine_reason
    from renamed

),

{{ crm.contested_versions('validated', ['customer_id']) }}

select validated.*, {{ crm.version_columns('validated') }}
from validated
left join contested_versions using (_source_file, _row_number)
