-- One row per lead / opportunity known at the as-of date: its current stage and the time it entered each stage.
with stages as (

    select * from {{ ref('int_opportunity_stages_historized') }}

),

opportunities as (

    select * from {{ ref('stg_crm__opportunities') }}

),

identities as (

    select * from {{ ref('int_customer_identities_resolved') }}

),

keys as (

    select * from {{ ref('int_customer_keys_pseudonymised') }}

),

customers as (

    select customer_key from {{ ref('dim_customers') }}

),

rates as (

    select * from {{ ref('currency_rates') }}

),

timeline as (

    select
        opportunity_id,
        {{ crm.value_at_max('stage', 'entered_at') }} as stage,
        {% for stage in ['new', 'contacted', 'qualified', 'proposal', 'negotiation', 'won', 'lost'] -%}
        min(case when stage = '{{ stage }}' then entered_at end) as {{ stage }}_at,
        {% endfor -%}
        min(entered_at) as first_entered_at,
        -- Whether the export said when a closed deal closed: else its close is the lead's creation, and the time it
        -- took to close is unknown, not zero.
        coalesce(bool_or(case when stage = 'won' then is_dated end), bool_or(case when stage = 'lost' then is_dated end),
            false) as is_close_dated
    from stages
    group by opportunity_id

)

select
    cast(timeline.opportunity_id as {{ crm.text() }}) as opportunity_id,
    -- A lead whose customer signs up only after the as-of date was not yet a customer's lead on that date.
    cast(customers.customer_key as {{ crm.text() }}) as customer_key,
    cast(coalesce(opportunities.created_at, timeline.first_entered_at) as timestamp) as created_at,
    cast(coalesce(opportunities.source, 'unknown') as {{ crm.text() }}) as source,
    cast(opportunities.campaign_id as {{ crm.text() }}) as campaign_id,
    cast(timeline.stage as {{ crm.text() }}) as stage,
    cast(timeline.stage in ('won', 'lost') as boolean) as is_closed,
    cast(timeline.stage = 'won' as boolean) as is_won,
    cast({{ crm.to_reporting_currency('opportunities.amount_original', 'rates') }} as double) as amount,
    cast(opportunities.owner_rep_id as {{ crm.text() }}) as owner_rep_id,
    {% for stage in ['new', 'contacted', 'qualified', 'proposal', 'negotiation', 'won', 'lost'] -%}
    cast(timeline.{{ stage }}_at as timestamp) as {{ stage }}_at,
    {% endfor -%}
    cast(case when timeline.stage in ('won', 'lost') and timeline.is_close_dated then coalesce(timeline.won_at, timeline.lost_at) end as timestamp) as closed_at,
    cast(case when timeline.stage in ('won', 'lost') and timeline.is_close_dated then
        {{ dbt.datediff('coalesce(opportunities.created_at, timeline.first_entered_at)', 'coalesce(timeline.won_at, timeline.lost_at)', 'hour') }} / 24.0
    end as double) as days_to_close
from timeline
inner join opportunities on timeline.opportunity_id = opportunities.opportunity_id
left join identities on opportunities.customer_id = identities.source_customer_id
left join keys on identities.customer_key = keys.golden_customer_id
left join customers on keys.customer_key = customers.customer_key
left join rates on opportunities.currency = rates.currency
