{#-
  The pseudonymous customer key on Spark: the same HMAC-SHA256(secret, golden customer id), first 16 hex characters,
  as models/intermediate/int_customer_keys_pseudonymised.py computes on DuckDB (whose docstring says why). dbt-spark
  runs no Python models, so the key material arrives as data: the refresh computes the HMAC's inner and outer keys
  from the same secret and lands them as the one-row table restricted._pseudonym_keys for this build, deleting its
  files when dbt is done (dagster_project/spark/pseudonyms.py). No statement, compiled SQL or log holds them.
  Without exactly one row of 64-byte keys the build stops rather than keying customers with nothing.
  Enabled on Spark only (dbt_project.yml); the Python model is the one on every other adapter.
-#}
with golden as (

    select customer_key as golden_customer_id from {{ ref('int_customers_merged') }}

),

pseudonym_keys as (

    select
        if(count(*) = 1 and length(max(inner_key)) = 64 and length(max(outer_key)) = 64, max(inner_key),
           raise_error('the pseudonym keys did not reach Spark: refresh with crm-warehouse refresh')) as inner_key,
        max(outer_key) as outer_key
    from {{ source('spark_refresh', '_pseudonym_keys') }}

)

select
    golden.golden_customer_id,
    left(sha2(concat(
        pseudonym_keys.outer_key,
        unhex(sha2(concat(pseudonym_keys.inner_key, encode(golden.golden_customer_id, 'utf-8')), 256))
    ), 256), 16) as customer_key
from golden
cross join pseudonym_keys
