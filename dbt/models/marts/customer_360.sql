-- One row per customer at the as-of date: purchase history, engagement and service over 30/90/365 days. The measures
-- are crm.customer_measures_as_of (macros/customer_measures.sql), the definition churn, health and campaigns read at
-- their own cutoffs; the post-hook stores it in the working database for them.
{{ config(post_hook="{{ crm.customer_measures_macros() }}") }}

with customers as (

    select * from {{ ref('dim_customers') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of') }}

),

measures as (

    {{ crm.customer_measures_as_of('(select as_of_date from ' ~ ref('int_as_of') ~ ')') }}

)

select
    cast(customers.customer_key as {{ crm.text() }}) as customer_key,
    cast(as_of.as_of_date as date) as as_of_date,
    cast(customers.signup_date as date) as signup_date,
    cast(measures.first_order_date as date) as first_order_date,
    cast(measures.last_order_date as date) as last_order_date,
    cast(coalesce(measures.orders_count, 0) as integer) as orders_count,
    cast(coalesce(measures.revenue, 0) as double) as revenue,
    cast(measures.avg_order_value as double) as avg_order_value,
    {#- days since the first paid order, else since signing up #}
    cast(coalesce(measures.tenure_days, {{ dbt.datediff('customers.signup_date', 'as_of.as_of_date', 'day') }})
        as integer) as tenure_days,
    cast(measures.recency_days as integer) as recency_days,
    cast(measures.avg_days_between_orders as double) as avg_days_between_orders,
    {% for column in ['orders_30d', 'orders_90d', 'orders_365d'] -%}
    cast(coalesce(measures.{{ column }}, 0) as integer) as {{ column }},
    {% endfor -%}
    {% for column in ['revenue_30d', 'revenue_90d', 'revenue_365d'] -%}
    cast(coalesce(measures.{{ column }}, 0) as double) as {{ column }},
    {% endfor -%}
    {% for column in ['interactions_30d', 'interactions_90d', 'interactions_365d', 'email_opens_90d',
                      'email_clicks_90d', 'web_visits_90d', 'tickets_30d', 'tickets_90d', 'tickets_365d',
                      'open_tickets'] -%}
    cast(coalesce(measures.{{ column }}, 0) as integer) as {{ column }},
    {% endfor -%}
    cast(measures.avg_satisfaction_365d as double) as avg_satisfaction_365d,
    cast(measures.last_nps as integer) as last_nps,
    cast(coalesce(measures.cancelled_orders, 0) as integer) as cancelled_orders,
    cast(coalesce(measures.refunded_orders, 0) as integer) as refunded_orders,
    cast(customers.region as {{ crm.text() }}) as region,
    cast(customers.city as {{ crm.text() }}) as city,
    cast(customers.age_band as {{ crm.text() }}) as age_band,
    cast(customers.gender as {{ crm.text() }}) as gender,
    cast(customers.acquisition_channel as {{ crm.text() }}) as acquisition_channel,
    cast(customers.marketing_consent as boolean) as marketing_consent
from customers
cross join as_of
left join measures on customers.customer_key = measures.customer_key
