{#-
  The pseudonym HMAC's inner or outer key, as binary, when Spark runs the model: from references Spark substitutes
  itself, so compiled SQL and dbt's logs carry only the variables' names (dagster_project/spark/pseudonyms.py).
  A server (Thrift, Databricks) substitutes the session variable dbt's connection opened with (dbt/profiles.yml); the
  local session, inside dbt's process, finds neither that variable (empty) nor anything but dbt's environment. A key
  that reached Spark by neither route stops the build instead of keying every customer with an empty key.
-#}
{% macro spark_pseudonym_key(part) -%}
    {%- set key -%}
        unhex(coalesce(nullif('${hivevar:crm_pseudonym_hmac_{{ part }}}', ''), '${env:CRM_PSEUDONYM_HMAC_{{ part | upper }}}'))
    {%- endset -%}
    if(length({{ key }}) = 64, {{ key }}, raise_error('the pseudonym key ({{ part }}) did not reach Spark: run dbt through crm-warehouse refresh'))
{%- endmacro %}
