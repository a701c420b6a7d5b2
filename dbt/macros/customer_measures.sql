{#- Every per-customer measure as of a date, defined once: marts.customer_360 renders it at the as-of date, and a
    post-hook of customer_360 stores it in the working database as the DuckDB table macros
    intermediate.customer_orders_as_of / intermediate.customer_measures_as_of, which the Python analytics call with
    their cutoffs (churn's training and evaluation cutoffs, health's, the days before each campaign).

    Point in time: only events dated on or before the cutoff count; ages are days before it (0 = on the cutoff), so
    "last 30 days" is age < 30. A ticket resolved after the cutoff is open at the cutoff, its rating not yet given.

    Order status as of the cutoff: the marts hold each order's latest status and not when it changed, so with
    settle_days > 0 a cancellation or refund counts only from settle_days after the order date; until then the order
    counts as the paid order it was when placed (a credit note never was one). customer_360 passes 0 (today's status);
    churn passes its settle window so that scoring features are distributed like training ones. -#}

{#- The interaction types counted one by one, with the plural that names their columns (emails_sent_90d). -#}
{% macro interaction_measure_names() -%}
    {{ return({'email_sent': 'emails_sent', 'email_open': 'email_opens', 'email_click': 'email_clicks',
               'call': 'calls', 'meeting': 'meetings', 'web_visit': 'web_visits', 'chat': 'chats'}) }}
{%- endmacro %}

{% macro default_measure_relations() -%}
    {{ return({'orders': ref('fct_orders'), 'interactions': ref('fct_interactions'), 'tickets': ref('fct_tickets'),
               'surveys': ref('fct_surveys')}) }}
{%- endmacro %}


{#- Orders dated on or before the cutoff: age, paid as of the cutoff, net revenue as of the cutoff (fct_orders'
    net_amount, or the amount of an order still counted as paid) and the status once settled. `customer_filter`
    (SQL, optional) restricts the customers. -#}
{% macro customer_orders_as_of(cutoff, settle_days='0', orders=none, customer_filter=none) -%}
    {%- set orders = orders or crm.default_measure_relations()['orders'] -%}
    select
        customer_key,
        order_date,
        age,
        paid,
        {#- A paid order's revenue is its net_amount (its partial refunds deducted); one still settling counts
            its amount. #}
        case when coalesce(is_paid, false) then coalesce(net_amount, amount) when paid then amount else net_amount end
            as net_revenue,
        case when age >= {{ settle_days }} then status end as settled_status
    from (
        select
            *,
            {#- is_paid may be null in a hand-made table: not paid -#}
            coalesce(is_paid, false) or (age < {{ settle_days }} and not coalesce(amount < 0, false)) as paid
        from (
            select
                customer_key, order_date, amount, net_amount, status, is_paid,
                {{ crm.days_between('order_date', 'cast(' ~ cutoff ~ ' as date)') }} as age
            from {{ orders }}
            where order_date <= cast({{ cutoff }} as date){% if customer_filter %} and {{ customer_filter }}{% endif %}
        ) as dated_orders
    ) as orders_at_cutoff
{%- endmacro %}


{#- One row per customer with any order, ticket or survey answer by the cutoff or an interaction in the year before
    it. Counts are 0 and recencies null when there is nothing to count. -#}
{% macro customer_measures_as_of(cutoff, settle_days='0', relations=none, customer_filter=none) -%}
    {%- set rel = relations or crm.default_measure_relations() -%}
    {%- set day = 'cast(' ~ cutoff ~ ' as date)' -%}
    {%- set only = (' and ' ~ customer_filter) if customer_filter else '' -%}
    {%- set types = crm.interaction_measure_names() -%}
    with measure_orders as (

        {{ crm.customer_orders_as_of(cutoff, settle_days, rel['orders'], customer_filter) }}

    ),

    order_measures as (

        select
            customer_key,
            min(case when paid then order_date end) as first_order_date,
            max(case when paid then order_date end) as last_order_date,
            count(case when paid then 1 end) as orders_count,
            {#- distinct purchase days: the BG/NBD's x + 1 -#}
            count(distinct case when paid then order_date end) as purchase_days,
            coalesce({{ crm.money_sum('net_revenue') }}, 0) as revenue,
            max(case when paid then age end) as tenure_days,
            min(case when paid then age end) as recency_days,
            {% for days in [30, 90, 365] -%}
            count(case when paid and age < {{ days }} then 1 end) as orders_{{ days }}d,
            coalesce({{ crm.money_sum('case when age < ' ~ days ~ ' then net_revenue end') }}, 0)
                as revenue_{{ days }}d,
            {% endfor -%}
            count(case when paid and age < 90 then 1 end)
                - count(case when paid and age >= 90 and age < 180 then 1 end) as orders_trend_90d,
            coalesce({{ crm.money_sum('case when age < 90 then net_revenue end') }}, 0)
                - coalesce({{ crm.money_sum('case when age >= 90 and age < 180 then net_revenue end') }}, 0)
                as revenue_trend_90d,
            count(case when settled_status = 'cancelled' then 1 end) as cancelled_orders,
            count(case when settled_status = 'refunded' then 1 end) as refunded_orders
        from measure_orders
        group by customer_key

    ),

    {#- Interactions are the largest table: one scan of the year before the cutoff serves every count. -#}
    measure_interactions as (

        select customer_key, interaction_type, {{ crm.days_between('occurred_date', day) }} as age
        from {{ rel['interactions'] }}
        where occurred_date <= {{ day }} and {{ crm.days_between('occurred_date', day) }} < 365{{ only }}

    ),

    interaction_measures as (

        select
            customer_key,
            {% for days in [30, 90, 365] -%}
            count(case when age < {{ days }} then 1 end) as interactions_{{ days }}d,
            {% endfor -%}
            {% for type, name in types.items() -%}
            {% for days in [30, 90, 365] -%}
            count(case when interaction_type = '{{ type }}' and age < {{ days }} then 1 end) as {{ name }}_{{ days }}d,
            {% endfor -%}
            min(case when interaction_type = '{{ type }}' then age end) as days_since_last_{{ type }},
            {% endfor -%}
            count(case when interaction_type = 'email_open' and age < 90 then 1 end)
                - count(case when interaction_type = 'email_open' and age >= 90 and age < 180 then 1 end)
                as email_opens_trend_90d,
            {#- Sent e-mails are our activity, not the customer's: no engagement. -#}
            min(case when interaction_type <> 'email_sent' then age end) as days_since_last_interaction
        from measure_interactions
        group by customer_key

    ),

    measure_tickets as (

        select
            customer_key,
            {{ crm.days_between('cast(opened_at as date)', day) }} as age,
            cast(resolved_at as date) as resolved_date,
            is_resolved,
            satisfaction
        from {{ rel['tickets'] }}
        where cast(opened_at as date) <= {{ day }}{{ only }}

    ),

    ticket_measures as (

        select
            customer_key,
            {% for days in [30, 90, 365] -%}
            count(case when age < {{ days }} then 1 end) as tickets_{{ days }}d,
            {% endfor -%}
            {#- A resolved ticket without a resolution time cannot be dated: trust its status. -#}
            count(case when resolved_date > {{ day }} or (resolved_date is null and not coalesce(is_resolved, false))
                       then 1 end) as open_tickets,
            {#- Rated on resolution: the ratings given in the year before the cutoff. -#}
            avg(case when resolved_date <= {{ day }} and {{ crm.days_between('resolved_date', day) }} < 365
                     then satisfaction end) as avg_satisfaction_365d
        from measure_tickets
        group by customer_key

    ),

    survey_measures as (

        select customer_key, {{ crm.value_at_max('nps', 'answered_at') }} as last_nps
        from {{ rel['surveys'] }}
        where answered_date <= {{ day }} and nps is not null{{ only }}
        group by customer_key

    )

    select
        customer_key,
        order_measures.first_order_date,
        order_measures.last_order_date,
        coalesce(order_measures.orders_count, 0) as orders_count,
        coalesce(order_measures.purchase_days, 0) as purchase_days,
        coalesce(order_measures.revenue, 0) as revenue,
        order_measures.revenue / nullif(order_measures.orders_count, 0) as avg_order_value,
        order_measures.tenure_days,
        order_measures.recency_days,
        case when order_measures.purchase_days > 1 then
            (order_measures.tenure_days - order_measures.recency_days) / (order_measures.purchase_days - 1.0)
        end as avg_days_between_orders,
        {% for column in ['orders_30d', 'orders_90d', 'orders_365d', 'revenue_30d', 'revenue_90d', 'revenue_365d',
                          'orders_trend_90d', 'revenue_trend_90d', 'cancelled_orders', 'refunded_orders',
                          'interactions_30d', 'interactions_90d', 'interactions_365d', 'email_opens_trend_90d'] -%}
        coalesce({{ column }}, 0) as {{ column }},
        {% endfor -%}
        {% for type, name in types.items() -%}
        {% for days in [30, 90, 365] -%}
        coalesce(interaction_measures.{{ name }}_{{ days }}d, 0) as {{ name }}_{{ days }}d,
        {% endfor -%}
        interaction_measures.days_since_last_{{ type }},
        {% endfor -%}
        {% for days in [90, 365] -%}
        cast(interaction_measures.email_opens_{{ days }}d as double)
            / nullif(interaction_measures.emails_sent_{{ days }}d, 0)
            as email_open_rate_{{ days }}d,
        {% endfor -%}
        interaction_measures.days_since_last_interaction,
        {% for days in [30, 90, 365] -%}
        coalesce(ticket_measures.tickets_{{ days }}d, 0) as tickets_{{ days }}d,
        {% endfor -%}
        coalesce(ticket_measures.open_tickets, 0) as open_tickets,
        ticket_measures.avg_satisfaction_365d,
        survey_measures.last_nps
    {#- full joins: every customer with any of them, without a separate list of keys to join back #}
    from order_measures
    full join interaction_measures using (customer_key)
    full join ticket_measures using (customer_key)
    full join survey_measures using (customer_key)
{%- endmacro %}


{#- The DDL that stores both as DuckDB table macros (schema intermediate, next to the models they build on), for the
    Python analytics: customer_measures_as_of(cutoff, settle_days := 0, sample_keep := 10000, sample_seed := 0).
    sample_keep < 10000 keeps the customers whose seeded key hash falls below it (per 10,000), the same customers in
    every fact table: churn trains on such samples at scale. The relations are addressed without the database, so
    the macros work in any file holding these schemas. -#}
{% macro customer_measures_macros() -%}
    {{ return(adapter.dispatch('customer_measures_macros', 'crm')()) }}
{%- endmacro %}

{% macro duckdb__customer_measures_macros() -%}
    {%- set relations = {} -%}
    {%- for name, relation in crm.default_measure_relations().items() -%}
        {%- do relations.update({name: relation.include(database=false)}) -%}
    {%- endfor -%}
    {%- set sample = '(sample_keep >= 10000'
                    ~ ' or hash(customer_key, cast(sample_seed as ubigint)) % 10000 < sample_keep)' -%}
    {%- set parameters = 'cutoff, settle_days := 0, sample_keep := 10000, sample_seed := 0' -%}
    create schema if not exists intermediate;
    create or replace macro intermediate.customer_orders_as_of({{ parameters }}) as table
    {{ crm.customer_orders_as_of('cutoff', 'settle_days', relations['orders'], sample) }};
    create or replace macro intermediate.customer_measures_as_of({{ parameters }}) as table
    {{ crm.customer_measures_as_of('cutoff', 'settle_days', relations, sample) }}
{%- endmacro %}

{#- Another engine builds customer_360 from the same definition but stores no table macro: the Python analytics that
    call them run on DuckDB only. (An empty hook is not run.) -#}
{% macro default__customer_measures_macros() -%}
{%- endmacro %}
