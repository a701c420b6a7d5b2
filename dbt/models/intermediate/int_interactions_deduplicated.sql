{#-
  Interactions as of the as-of date on their golden customer. Tracking systems often record one event twice
  (an e-mail open fired by two pixels): the same customer, type, campaign and timestamp under two ids counts once.
  Kept incrementally per customer (dbt/macros/customer_incremental.sql).
-#}
-- depends_on: {{ ref('base_crm__interactions') }}
{%- set bases = [('base_crm__interactions', 'interaction_id')] %}
{{ crm.customer_incremental_config(bases) }}
{{- crm.write_changed_customers(bases, ref('stg_crm__interactions'), 'interaction_id', 'occurred_at') }}

with interactions as (

    select * from {{ ref('stg_crm__interactions') }}

),

identities as {{ crm.changed_customers_cte() }} (

    select * from {{ ref('int_customer_identities_resolved') }}
    where {{ crm.only_changed_customers('customer_key') }}

),

ranked as (

    select
        interactions.*,
        identities.customer_key,
        row_number() over (
            partition by identities.customer_key, interactions.interaction_type, interactions.campaign_id, interactions.occurred_at
            order by interactions.interaction_id
        ) as duplicate_rank
    from interactions
    inner join identities on interactions.customer_id = identities.source_customer_id
    where cast(interactions.occurred_at as date) <= {{ crm.as_of_date() }}

)

select
    interaction_id,
    customer_key,
    interaction_type,
    occurred_at,
    cast(occurred_at as date) as occurred_date,
    campaign_id,
    rep_id,
    _source_file,
    _drop_date,
    _row_number,
    duplicate_rank > 1 as is_duplicate
from ranked
