-- One golden record per resolved customer: each attribute from the most recently updated member that has it.
with identities as (

    select * from {{ ref('int_customer_identities_resolved') }}

),

customers as (

    select * from {{ ref('stg_crm__customers') }}

),

members as (

    select
        identities.customer_key,
        identities.source_customer_id,
        identities.is_inferred,
        customers.*
    from identities
    left join customers on identities.source_customer_id = customers.customer_id

),

{%- set attributes = ['customer_name', 'email', 'phone', 'birth_date', 'city', 'region', 'country',
                      'acquisition_channel', 'marketing_consent'] %}

golden as (

    select
        customer_key,
        {% for attribute in attributes -%}
        {# only members that know the attribute compete, so the newest known value survives #}
        {{ crm.value_at_max(attribute, 'coalesce(updated_at, cast(_drop_date as timestamp))') }}
            filter (where {{ attribute }} is not null) as {{ attribute }},
        {% endfor -%}
        coalesce(
            {{ crm.value_at_max('gender', 'coalesce(updated_at, cast(_drop_date as timestamp))') }} filter (where gender <> 'unknown'),
            'unknown'
        ) as gender,
        min(signup_date) as signup_date,
        count(*) as source_customer_ids,
        bool_and(is_inferred) as is_inferred
    from members
    group by customer_key

)

select * from golden
