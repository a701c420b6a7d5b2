with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'surveys') }}

),

numbered as {{ crm.inlined_cte() }} (

    {{ crm.with_occurrences('source', crm.clean_text('survey_id'), ['customer_id', 'answered_at']) }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        coalesce(
            {{ crm.clean_text('survey_id') }},
            {{ crm.derived_id('s', ['customer_id', 'answered_at']) }}
        ) as survey_id,
        {{ crm.clean_id('customer_id') }} as customer_id,
        {{ crm.parse_timestamp('answered_at') }} as answered_at,
        {{ crm.parse_integer('nps') }} as nps,
        answered_at as answered_at_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from numbered

),

validated as {{ crm.inlined_cte() }} (

    select
        *,
        case
            when customer_id is null then 'missing customer_id'
            when answered_at_text is null then 'missing answered_at'
            when answered_at is null then 'unparseable answered_at'
            when cast(answered_at as date) > _drop_date then 'answered_at after its export drop'
            when nps is null or nps not between 0 and 10 then 'nps not 0-10'
        end as _quarantine_reason
    from renamed

),

{{ crm.contested_versions('validated', ['survey_id'], updated_at='_drop_date', version='drop') }}

select validated.*, {{ crm.version_columns('validated') }}
from validated
left join contested_versions using (_source_file, _row_number)
