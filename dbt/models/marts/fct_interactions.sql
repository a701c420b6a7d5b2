{#- Kept incrementally per customer (dbt/macros/customer_incremental.sql). -#}
{{ crm.fact_incremental_config('int_interactions_deduplicated') }}
{{- crm.write_changed_fact_customers('int_interactions_deduplicated') }}

with interactions as {{ crm.changed_customers_cte() }} (

    select * from {{ ref('int_interactions_deduplicated') }}
    where not is_duplicate and {{ crm.only_changed_fact_customers('customer_key') }}

),

keys as (

    select * from {{ ref('int_customer_keys_pseudonymised') }}

)

select
    cast(interaction_id as {{ crm.text() }}) as interaction_id,
    cast(keys.customer_key as {{ crm.text() }}) as customer_key,
    cast(interaction_type as {{ crm.text() }}) as interaction_type,
    cast(occurred_at as timestamp) as occurred_at,
    cast(occurred_date as date) as occurred_date,
    cast(campaign_id as {{ crm.text() }}) as campaign_id,
    cast(rep_id as {{ crm.text() }}) as rep_id
from interactions
inner join keys on interactions.customer_key = keys.golden_customer_id
