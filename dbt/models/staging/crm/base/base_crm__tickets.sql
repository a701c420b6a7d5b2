with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'tickets') }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        {{ crm.clean_text('ticket_id') }} as ticket_id,
        {{ crm.clean_id('customer_id') }} as customer_id,
        {{ crm.parse_timestamp('opened_at') }} as opened_at,
        {{ crm.parse_timestamp('first_response_at') }} as first_response_at,
        {{ crm.parse_timestamp('resolved_at') }} as resolved_at,
        {{ crm.ticket_status('status') }} as status_code,
        status as status_text,
        {{ crm.clean_code('category') }} as category,
        {{ crm.parse_integer('satisfaction') }} as satisfaction,
        {{ crm.clean_text('rep_id') }} as rep_id,
        {{ crm.parse_timestamp('updated_at') }} as updated_at,
        opened_at as opened_at_text,
        satisfaction as satisfaction_text,
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
            when ticket_id is null then 'missing ticket_id'
            when customer_id is null then 'missing customer_id'
            when opened_at_text is null then 'missing opened_at'
            when opened_at is null then 'unparseable opened_at'
            when cast(opened_at as date) > _drop_date then 'opened_at after its export drop'
            when resolved_at < opened_at then 'resolved_at before opened_at'
            when {{ crm.clean_code('status_text') }} is not null and status_code is null then 'unknown status'
            when satisfaction_text is not null and (satisfaction is null or satisfaction not between 1 and 5)
                then 'satisfaction not 1-5'
        end as _quarantine_reason
    from renamed

),

{{ crm.contested_versions('validated', ['ticket_id']) }}

select validated.*, {{ crm.version_columns('validated') }}
from validated
left join contested_versions using (_source_file, _row_number)
