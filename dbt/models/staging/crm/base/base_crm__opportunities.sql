with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'opportunities') }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        {{ crm.clean_text('opportunity_id') }} as opportunity_id,
        {{ crm.clean_id('customer_id') }} as customer_id,
        {{ crm.parse_timestamp('created_at') }} as created_at,
        {{ crm.clean_code('source') }} as source,
        {{ crm.clean_text('campaign_id') }} as campaign_id,
        case {{ crm.clean_code('stage') }}
            when 'open' then 'new'
            when 'lead' then 'new'
            when 'quote' then 'proposal'
            when 'quoted' then 'proposal'
            when 'closed_won' then 'won'
            when 'closed_lost' then 'lost'
            else {{ crm.clean_code('stage') }}
        end as stage,
        {{ crm.parse_timestamp('stage_changed_at') }} as stage_changed_at,
        {{ crm.parse_timestamp('closed_at') }} as closed_at,
        closed_at as closed_at_text,
        {{ crm.parse_amount('amount') }} as amount_original,
        {{ crm.resolve_currency('currency', 'amount') }} as currency,
        {{ crm.clean_text('owner_rep_id') }} as owner_rep_id,
        amount as amount_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from source

),

-- When the version entered its stage: its stage_changed_at, else, for a won or lost deal, its close date (a CRM
-- exporting each deal once, as it stands, says when it closed only there; an open deal's close date is an estimate).
dated as {{ crm.inlined_cte() }} (

    select
        *,
        coalesce(stage_changed_at, case when stage in ('won', 'lost') then closed_at end) as stage_entered_at
    from renamed

),

validated as {{ crm.inlined_cte() }} (

    select
        dated.*,
        case
            when opportunity_id is null then 'missing opportunity_id'
            when stage is null then 'missing stage'
            when stage not in ('new', 'contacted', 'qualified', 'proposal', 'negotiation', 'won', 'lost')
                then 'unknown stage'
            when stage in ('won', 'lost') and stage_changed_at is null and closed_at_text is not null
                and closed_at is null then 'unparseable closed_at'
            when coalesce(stage_entered_at, created_at) is null then 'no parseable stage_changed_at or created_at'
            when cast(coalesce(stage_entered_at, created_at) as date) > _drop_date then
                case when stage_changed_at is null and closed_at is not null then 'closed_at after its export drop'
                else 'stage_changed_at after its export drop' end
            when amount_text is not null and amount_original is null then 'unparseable amount'
            when amount_original < 0 then 'negative amount'
            when amount_original > {{ var('max_order_amount') }} then 'amount above max_order_amount'
            when rates.currency is null then 'unknown currency'
        end as _quarantine_reason
    from dated
    left join {{ ref('currency_rates') }} as rates on dated.currency = rates.currency

),

-- Every version is one stage change; the newest stage change is the record's current state.
{{ crm.contested_versions('validated', ['opportunity_id'], updated_at='coalesce(stage_entered_at, created_at)', version='stage_changed_at') }}

select validated.*, {{ crm.version_columns('validated') }}
from validated
left join contested_versions using (_source_file, _row_number)
