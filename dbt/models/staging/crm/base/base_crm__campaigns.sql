with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'campaigns') }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        {{ crm.clean_text('campaign_id') }} as campaign_id,
        {{ crm.clean_text('campaign_name') }} as campaign_name,
        {{ crm.clean_code('channel') }} as channel,
        {{ crm.parse_date('start_date') }} as start_date,
        {{ crm.parse_date('end_date') }} as end_date,
        {{ crm.parse_amount('cost') }} as cost_original,
        {{ crm.resolve_currency('currency', 'cost') }} as currency,
        cost as cost_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from source

),

validated as {{ crm.inlined_cte() }} (

    select
        renamed.*,
        case
            when campaign_id is null then 'missing campaign_id'
            when cost_text is not null and cost_original is null then 'unparseable cost'
            when cost_original < 0 then 'negative cost'
            when end_date < start_date then 'end_date before start_date'
            when rates.currency is null then 'unknown currency'
        end as _quarantine_reason
    from renamed
    left join {{ ref('currency_rates') }} as rates on renamed.currency = rates.currency

),

{{ crm.contested_versions('validated', ['campaign_id'], updated_at='_drop_date', version='drop') }}

select validated.*, {{ crm.version_columns('validated') }}
from validated
left join contested_versions using (_source_file, _row_number)
