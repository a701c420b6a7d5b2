-- Personal data of every golden customer under the pseudonym the marts carry: what an authorised user joins to a
-- watchlist to contact the customers on it. Lives in the working database only; publishing never copies it.
with customers as (

    select * from {{ ref('int_customers_merged') }}

),

keys as (

    select * from {{ ref('int_customer_keys_pseudonymised') }}

)

select
    cast(keys.customer_key as {{ crm.text() }}) as customer_key,
    cast(customers.customer_key as {{ crm.text() }}) as golden_customer_id,
    cast(customers.customer_name as {{ crm.text() }}) as customer_name,
    cast(customers.email as {{ crm.text() }}) as email,
    cast(customers.phone as {{ crm.text() }}) as phone,
    cast(customers.birth_date as date) as birth_date,
    cast(coalesce(customers.marketing_consent, false) as boolean) as marketing_consent
from customers
inner join keys on customers.customer_key = keys.golden_customer_id
