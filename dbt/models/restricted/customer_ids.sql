-- Every CRM customer id (merged duplicates and ids seen only on orders included) with the pseudonym of the golden
-- customer it resolved to: finds the customer_key of a CRM record, or every CRM record behind a customer_key.
select
    cast(identities.source_customer_id as {{ crm.text() }}) as source_customer_id,
    cast(keys.customer_key as {{ crm.text() }}) as customer_key,
    cast(identities.is_merged as boolean) as is_merged
from {{ ref('int_customer_identities_resolved') }} as identities
inner join {{ ref('int_customer_keys_pseudonymised') }} as keys on identities.customer_key = keys.golden_customer_id
