{#-
  The pseudonymous customer key on Spark: the same HMAC-SHA256(secret, golden customer id), first 16 hex characters,
  as models/intermediate/int_customer_keys_pseudonymised.py computes on DuckDB (whose docstring says why). dbt-spark's
  session method runs no Python models, so the key material reaches the SQL another way: the refresh computes the
  HMAC's inner and outer keys from the same secret (dagster_project/spark/pseudonyms.py), and Spark substitutes the
  reference spark_pseudonym_key renders (dbt/macros/pseudonyms.sql) when it runs the query. The compiled SQL in
  dbt/target and dbt's logs carry only the variables' names, never the secret or its keys.
  Enabled on Spark only (dbt_project.yml); the Python model is the one on every other adapter.
-#}
select
    customer_key as golden_customer_id,
    left(sha2(concat(
        {{ crm.spark_pseudonym_key('outer') }},
        unhex(sha2(concat({{ crm.spark_pseudonym_key('inner') }}, encode(customer_key, 'utf-8')), 256))
    ), 256), 16) as customer_key
from {{ ref('int_customers_merged') }}
