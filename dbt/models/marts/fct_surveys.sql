with surveys as (

    select * from {{ ref('stg_crm__surveys') }}

),

identities as (

    select * from {{ ref('int_customer_identities_resolved') }}

),

keys as (

    select * from {{ ref('int_customer_keys_pseudonymised') }}

)

select
    cast(surveys.survey_id as {{ crm.text() }}) as survey_id,
    cast(keys.customer_key as {{ crm.text() }}) as customer_key,
    cast(surveys.answered_at as timestamp) as answered_at,
    cast(cast(surveys.answered_at as date) as date) as answered_date,
    cast(surveys.nps as integer) as nps,
    cast(case when surveys.nps >= 9 then 'promoter' when surveys.nps >= 7 then 'passive' else 'detractor' end as {{ crm.text() }}) as nps_group
from surveys
inner join identities on surveys.customer_id = identities.source_customer_id
inner join keys on identities.customer_key = keys.golden_customer_id
where cast(surveys.answered_at as date) <= {{ crm.as_of_date() }}
