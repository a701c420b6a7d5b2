-- Service tickets opened by the as-of date; a response or resolution after the as-of date has not happened yet.
with tickets as (

    select * from {{ ref('stg_crm__tickets') }}

),

identities as (

    select * from {{ ref('int_customer_identities_resolved') }}

),

keys as (

    select * from {{ ref('int_customer_keys_pseudonymised') }}

),

as_of_tickets as (

    select
        tickets.ticket_id,
        keys.customer_key,
        tickets.opened_at,
        case when cast(tickets.first_response_at as date) <= {{ crm.as_of_date() }} then tickets.first_response_at end as first_response_at,
        case when cast(tickets.resolved_at as date) <= {{ crm.as_of_date() }} then tickets.resolved_at end as resolved_at,
        tickets.status_code,
        tickets.category,
        tickets.satisfaction,
        tickets.rep_id
    from tickets
    inner join identities on tickets.customer_id = identities.source_customer_id
    inner join keys on identities.customer_key = keys.golden_customer_id
    where cast(tickets.opened_at as date) <= {{ crm.as_of_date() }}

)

select
    cast(ticket_id as {{ crm.text() }}) as ticket_id,
    cast(customer_key as {{ crm.text() }}) as customer_key,
    cast(opened_at as timestamp) as opened_at,
    cast(first_response_at as timestamp) as first_response_at,
    cast(resolved_at as timestamp) as resolved_at,
    cast(case
        when resolved_at is not null then coalesce(nullif(nullif(status_code, 'open'), 'pending'), 'resolved')
        when status_code in ('resolved', 'closed') then 'pending'
        else coalesce(status_code, 'open')
    end as {{ crm.text() }}) as status,
    cast(coalesce(category, 'unknown') as {{ crm.text() }}) as category,
    cast(case when resolved_at is not null then satisfaction end as integer) as satisfaction,
    cast(rep_id as {{ crm.text() }}) as rep_id,
    cast({{ dbt.datediff('opened_at', 'first_response_at', 'minute') }} / 60.0 as double) as first_response_hours,
    cast({{ dbt.datediff('opened_at', 'resolved_at', 'minute') }} / 60.0 as double) as resolution_hours,
    cast(resolved_at is not null as boolean) as is_resolved
from as_of_tickets
