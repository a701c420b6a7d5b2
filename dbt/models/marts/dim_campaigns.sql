with campaigns as (

    select * from {{ ref('stg_crm__campaigns') }}

),

rates as (

    select * from {{ ref('currency_rates') }}

)

select
    cast(campaigns.campaign_id as {{ crm.text() }}) as campaign_id,
    cast(campaigns.campaign_name as {{ crm.text() }}) as campaign_name,
    cast(campaigns.channel as {{ crm.text() }}) as channel,
    cast(campaigns.start_date as date) as start_date,
    cast(campaigns.end_date as date) as end_date,
    cast(coalesce({{ crm.to_reporting_currency('campaigns.cost_original', 'rates') }}, 0) as double) as cost
from campaigns
inner join rates on campaigns.currency = rates.currency
where campaigns.start_date is null or campaigns.start_date <= {{ crm.as_of_date() }}
