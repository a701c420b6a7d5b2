{{ crm.incremental_base_config('interactions') }}
{%- set changes = crm.load_changes(source('crm', 'interactions')) %}

with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'interactions') }} as raw_rows
    {{- crm.new_loads_only('raw_rows', changes) }}

),

numbered as {{ crm.inlined_cte() }} (

    {{ crm.with_occurrences('source', crm.clean_text('interaction_id'), ['customer_id', 'interaction_type', 'occurred_at', 'campaign_id']) }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        coalesce(
            {{ crm.clean_text('interaction_id') }},
            {{ crm.derived_id('i', ['customer_id', 'interaction_type', 'occurred_at', 'campaign_id']) }}
        ) as interaction_id,
        {{ crm.clean_id('customer_id') }} as customer_id,
        case {{ crm.clean_code('interaction_type') }}
            when 'email' then 'email_sent'
            when 'email_opened' then 'email_open'
            when 'open' then 'email_open'
            when 'email_clicked' then 'email_click'
            when 'click' then 'email_click'
            when 'phone_call' then 'call'
            when 'visit' then 'web_visit'
            when 'page_view' then 'web_visit'
            else {{ crm.clean_code('interaction_type') }}
        end as interaction_type,
        {{ crm.parse_timestamp('occurred_at') }} as occurred_at,
        {{ crm.clean_text('campaign_id') }} as campaign_id,
        {{ crm.clean_text('rep_id') }} as rep_id,
        occurred_at as occurred_at_text,
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
            when interaction_type is null then 'missing interaction_type'
            when interaction_type not in ('email_sent', 'email_open', 'email_click', 'call', 'meeting', 'web_visit', 'chat', 'sms')
                then 'unknown interaction_type'
            when occurred_at_text is null then 'missing occurred_at'
            when occurred_at is null then 'unparseable occurred_at'
            when cast(occurred_at as date) > _drop_date then 'occurred_at after its export drop'
        end as _quarantine_reason
    from renamed

),

{{ crm.versions_to_rank('validated', ['interaction_id'], changes) }}

{{ crm.contested_versions('versions', ['interaction_id'], updated_at='_drop_date', version='drop') }}

select versions.*, {{ crm.version_columns('versions') }}
from versions
left join contested_versions using (_source_file, _row_number)
