{#- A table's row count as a log line, for the post-hook of every model and seed: the refresh reads it from dbt's
    event stream while dbt is still building (dagster_project/defs/assets/dbt_row_counts.py), so each model's
    materialisation reaches Dagster with its count as soon as the model is built. dbt holds DuckDB's writer lock until
    it exits, so the refresh cannot count the tables itself before then. Views are not counted: counting one runs its
    whole query. -#}
{% macro log_row_count() -%}
    {{ return(adapter.dispatch('log_row_count', 'crm')()) }}
{%- endmacro %}

{#- On Spark a count is a job per table: the refresh counts every table in one query after the build. -#}
{% macro default__log_row_count() -%}
{%- endmacro %}

{% macro duckdb__log_row_count() -%}
    {#- (the materialisations dbt_row_counts.COUNTED_MATERIALIZATIONS names) -#}
    {%- if execute and config.get('materialized') in ('table', 'incremental', 'seed') -%}
        {%- set counted = run_query('select count(*) from ' ~ this) -%}
        {%- do log('crm row count: ' ~ model.unique_id ~ ' ' ~ counted.columns[0].values()[0], info=true) -%}
    {%- endif -%}
{%- endmacro %}
