-- One row per customer at the as-of date: purchase history, engagement and service over 30/90/365 days.
with customers as (

    select * from {{ ref('dim_customers') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of') }}

),

orders as (

    select fct_orders.*, {{ dbt.datediff('fct_orders.order_date', 'as_of.as_of_date', 'day') }} as days_ago
    from {{ ref('fct_orders') }} as fct_orders
    cross join as_of

),

order_stats as (

    select
        customer_key,
        min(case when is_paid then order_date end) as first_order_date,
        max(case when is_paid then order_date end) as last_order_date,
        count(case when is_paid then 1 end) as orders_count,
        count(distinct case when is_paid then order_date end) as purchase_days,
        coalesce({{ crm.money_sum('net_amount') }}, 0) as revenue,
        {% for days in [30, 90, 365] -%}
        count(case when is_paid and days_ago < {{ days }} then 1 end) as orders_{{ days }}d,
        coalesce({{ crm.money_sum('case when days_ago < ' ~ days ~ ' then net_amount end') }}, 0) as revenue_{{ days }}d,
        {% endfor -%}
        count(case when status = 'cancelled' then 1 end) as cancelled_orders,
        count(case when status = 'refunded' then 1 end) as refunded_orders
    from orders
    group by customer_key

),

interactions as (

    select fct_interactions.*, {{ dbt.datediff('fct_interactions.occurred_date', 'as_of.as_of_date', 'day') }} as days_ago
    from {{ ref('fct_interactions') }} as fct_interactions
    cross join as_of

),

interaction_stats as (

    select
        customer_key,
        {% for days in [30, 90, 365] -%}
        count(case when days_ago < {{ days }} then 1 end) as interactions_{{ days }}d,
        {% endfor -%}
        count(case when days_ago < 90 and interaction_type = 'email_open' then 1 end) as email_opens_90d,
        count(case when days_ago < 90 and interaction_type = 'email_click' then 1 end) as email_clicks_90d,
        count(case when days_ago < 90 and interaction_type = 'web_visit' then 1 end) as web_visits_90d
    from interactions
    group by customer_key

),

tickets as (

    select fct_tickets.*, {{ dbt.datediff('cast(fct_tickets.opened_at as date)', 'as_of.as_of_date', 'day') }} as days_ago
    from {{ ref('fct_tickets') }} as fct_tickets
    cross join as_of

),

ticket_stats as (

    select
        customer_key,
        {% for days in [30, 90, 365] -%}
        count(case when days_ago < {{ days }} then 1 end) as tickets_{{ days }}d,
        {% endfor -%}
        count(case when not is_resolved then 1 end) as open_tickets,
        avg(case when days_ago < 365 then satisfaction end) as avg_satisfaction_365d
    from tickets
    group by customer_key

),

last_surveys as (

    select customer_key, {{ crm.value_at_max('nps', 'answered_at') }} as last_nps
    from {{ ref('fct_surveys') }}
    group by customer_key

)

select
    cast(customers.customer_key as {{ crm.text() }}) as customer_key,
    cast(as_of.as_of_date as date) as as_of_date,
    cast(customers.signup_date as date) as signup_date,
    cast(order_stats.first_order_date as date) as first_order_date,
    cast(order_stats.last_order_date as date) as last_order_date,
    cast(coalesce(order_stats.orders_count, 0) as integer) as orders_count,
    cast(coalesce(order_stats.revenue, 0) as double) as revenue,
    cast(order_stats.revenue / nullif(order_stats.orders_count, 0) as double) as avg_order_value,
    cast({{ dbt.datediff('coalesce(order_stats.first_order_date, customers.signup_date)', 'as_of.as_of_date', 'day') }} as integer) as tenure_days,
    cast({{ dbt.datediff('order_stats.last_order_date', 'as_of.as_of_date', 'day') }} as integer) as recency_days,
    cast(case when order_stats.purchase_days > 1 then
        {{ dbt.datediff('order_stats.first_order_date', 'order_stats.last_order_date', 'day') }} / (order_stats.purchase_days - 1.0)
    end as double) as avg_days_between_orders,
    {% for days in [30, 90, 365] -%}
    cast(coalesce(order_stats.orders_{{ days }}d, 0) as integer) as orders_{{ days }}d,
    {% endfor -%}
    {% for days in [30, 90, 365] -%}
    cast(coalesce(order_stats.revenue_{{ days }}d, 0) as double) as revenue_{{ days }}d,
    {% endfor -%}
    {% for days in [30, 90, 365] -%}
    cast(coalesce(interaction_stats.interactions_{{ days }}d, 0) as integer) as interactions_{{ days }}d,
    {% endfor -%}
    cast(coalesce(interaction_stats.email_opens_90d, 0) as integer) as email_opens_90d,
    cast(coalesce(interaction_stats.email_clicks_90d, 0) as integer) as email_clicks_90d,
    cast(coalesce(interaction_stats.web_visits_90d, 0) as integer) as web_visits_90d,
    {% for days in [30, 90, 365] -%}
    cast(coalesce(ticket_stats.tickets_{{ days }}d, 0) as integer) as tickets_{{ days }}d,
    {% endfor -%}
    cast(coalesce(ticket_stats.open_tickets, 0) as integer) as open_tickets,
    cast(ticket_stats.avg_satisfaction_365d as double) as avg_satisfaction_365d,
    cast(last_surveys.last_nps as integer) as last_nps,
    cast(coalesce(order_stats.cancelled_orders, 0) as integer) as cancelled_orders,
    cast(coalesce(order_stats.refunded_orders, 0) as integer) as refunded_orders,
    cast(customers.region as {{ crm.text() }}) as region,
    cast(customers.city as {{ crm.text() }}) as city,
    cast(customers.age_band as {{ crm.text() }}) as age_band,
    cast(customers.gender as {{ crm.text() }}) as gender,
    cast(customers.acquisition_channel as {{ crm.text() }}) as acquisition_channel,
    cast(customers.marketing_consent as boolean) as marketing_consent
from customers
cross join as_of
left join order_stats on customers.customer_key = order_stats.customer_key
left join interaction_stats on customers.customer_key = interaction_stats.customer_key
left join ticket_stats on customers.customer_key = ticket_stats.customer_key
left join last_surveys on customers.customer_key = last_surveys.customer_key
