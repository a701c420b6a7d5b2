with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'sales_reps') }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        {{ crm.clean_text('rep_id') }} as rep_id,
        {{ crm.clean_text('rep_name') }} as rep_name,
        {{ crm.clean_text('team') }} as team,
        {{ crm.clean_text('region') }} as region,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from source

),

validated as {{ crm.inlined_cte() }} (

    select
        *,
        case when rep_id is null then 'missing rep_id' end as _quarantine_reason
    from renamed

),

{{ crm.contested_versions('validated', ['rep_id'], updated_at='_drop_date', version='drop') }}

select validated.*, {{ crm.version_columns('validated') }}
from validated
left join contested_versions using (_source_file, _row_number)
