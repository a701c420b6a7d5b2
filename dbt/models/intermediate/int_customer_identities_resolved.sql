{#-
  Identity resolution: which CRM ids are the same person. Two ids are linked when they name the same person id
  (a marketplace's customer_unique_id), share a normalised e-mail (an id that is an e-mail address counts as one),
  or share a normalised phone together with the same normalised name (a shared phone alone is too weak: households
  share landlines). Linked ids form connected components via min-label propagation: each round
  gives every id the smallest id reachable through one more shared key. `identity_resolution_rounds` rounds
  resolve chains of that many hops, which covers real duplicate clusters (2-3 ids). The golden customer_key is
  the smallest id of the component, so it is stable while the component does not change.
  Ids seen only on orders (no customer record, e.g. an orders-only export) are their own customer, unless an e-mail
  links them.
-#}
with customers as (

    select * from {{ ref('stg_crm__customers') }}

),

orders as (

    select * from {{ ref('int_orders_combined') }}

),

ids as (

    select customer_id, false as is_inferred from customers
    union all
    select distinct customer_id, true as is_inferred
    from orders
    where customer_id not in (select customer_id from customers)

),

match_keys as (

    {#- The person behind per-order customer ids (a marketplace's customer_unique_id) links them whatever else. #}
    select customer_id, 'person:' || person_id as match_key from customers where person_id is not null
    union all
    select customer_id, 'email:' || email as match_key from customers where email is not null
    union all
    select customer_id, 'phone:' || phone || '|' || name_match_key
    from customers where phone is not null and name_match_key is not null
    union all
    {# An id that is an e-mail address (a shop's orders name the buyer by e-mail) is that e-mail: ids written in
       other cases (Anna@Example.de, anna@example.de) are one person, and so is a customer record with it. #}
    select customer_id, 'email:' || {{ crm.normalise_email('customer_id') }} as match_key
    from ids where customer_id like '%@%' and {{ crm.normalise_email('customer_id') }} is not null

),

labels_0 as (

    select customer_id, customer_id as label from ids

),

{% for round in range(var('identity_resolution_rounds')) %}
key_labels_{{ round }} as (

    select match_keys.match_key, min(labels_{{ round }}.label) as label
    from match_keys
    inner join labels_{{ round }} on match_keys.customer_id = labels_{{ round }}.customer_id
    group by match_keys.match_key

),

labels_{{ round + 1 }} as (

    select
        labels_{{ round }}.customer_id,
        least(labels_{{ round }}.label, coalesce(min(key_labels_{{ round }}.label), labels_{{ round }}.label)) as label
    from labels_{{ round }}
    left join match_keys on labels_{{ round }}.customer_id = match_keys.customer_id
    left join key_labels_{{ round }} on match_keys.match_key = key_labels_{{ round }}.match_key
    group by labels_{{ round }}.customer_id, labels_{{ round }}.label

),
{% endfor %}

resolved as (

    select
        ids.customer_id as source_customer_id,
        final.label as customer_key,
        ids.is_inferred
    from ids
    inner join labels_{{ var('identity_resolution_rounds') }} as final on ids.customer_id = final.customer_id

)

select
    source_customer_id,
    customer_key,
    is_inferred,
    source_customer_id <> customer_key as is_merged
from resolved
