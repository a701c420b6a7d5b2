-- Golden customer records (one per resolved person) that exist as of the as-of date, under their pseudonymous key.
-- Names, e-mails, phones and birth dates stay in restricted.customer_pii; only coarse attributes are here.
with customers as (

    select * from {{ ref('int_customers_merged') }}

),

keys as (

    select * from {{ ref('int_customer_keys_pseudonymised') }}

),

first_orders as (

    select customer_key, min(order_date) as first_order_date
    from {{ ref('int_orders_deduplicated') }}
    group by customer_key

),

as_of as (

    select as_of_date from {{ ref('int_as_of') }}

),

aged as (

    select
        customers.*,
        keys.customer_key as pseudonymous_key,
        first_orders.first_order_date,
        case
            when customers.birth_date <= as_of.as_of_date
            then {{ crm.age_in_years('customers.birth_date', 'as_of.as_of_date') }}
        end as age
    from customers
    cross join as_of
    inner join keys on customers.customer_key = keys.golden_customer_id
    left join first_orders on customers.customer_key = first_orders.customer_key
    where least(customers.signup_date, first_orders.first_order_date) <= as_of.as_of_date
       or (customers.signup_date is null and first_orders.first_order_date is null and not customers.is_inferred)

)

select
    cast(pseudonymous_key as {{ crm.text() }}) as customer_key,
    cast(gender as {{ crm.text() }}) as gender,
    cast(case
        when age is null or age not between 0 and 120 then 'unknown'
        when age < 25 then '<25'
        when age < 35 then '25-34'
        when age < 45 then '35-44'
        when age < 55 then '45-54'
        when age < 65 then '55-64'
        else '65+'
    end as {{ crm.text() }}) as age_band,
    cast(city as {{ crm.text() }}) as city,
    cast(coalesce(region, 'unknown') as {{ crm.text() }}) as region,
    cast(country as {{ crm.text() }}) as country,
    cast(least(signup_date, first_order_date) as date) as signup_date,
    cast(coalesce(acquisition_channel, 'unknown') as {{ crm.text() }}) as acquisition_channel,
    cast(coalesce(marketing_consent, false) as boolean) as marketing_consent,
    cast(source_customer_ids as integer) as source_customer_ids,
    cast(is_inferred as boolean) as is_inferred
from aged
