{#- Rank of a valid row among the versions of its key: 1 is the version that wins (newest updated_at, then the
    newest drop, then the last row of the file). Quarantined rows get no rank: they never win. -#}
{% macro version_rank(key_columns, updated_at='updated_at') -%}
    case when _quarantine_reason is null then
        row_number() over (
            partition by _quarantine_reason is null, {{ key_columns | join(', ') }}
            order by {{ updated_at }} desc nulls last, _drop_date desc, _row_number desc
        )
    end
{%- endmacro %}


{#- A stable id for exports that carry none (e.g. a bare order log): a hash of the row's content plus its
    occurrence number among identical rows of the same file, so a snapshot delivered again maps to the same ids
    (and merges as a new version) while two identical purchases in one file stay two rows. -#}
{% macro derived_id(prefix, columns) -%}
    {%- set parts = [] -%}
    {%- for c in columns -%}{%- do parts.append("coalesce(" ~ c ~ ", '')") -%}{%- endfor -%}
    '{{ prefix }}-' || {{ dbt.hash(parts | join(" || '|' || ")) }} || '-' || cast(
        row_number() over (partition by _source_file, {{ columns | join(', ') }} order by _row_number)
        as {{ dbt.type_string() }})
{%- endmacro %}


{#- The value of expr on the row where order_by is greatest (DuckDB arg_max, Spark max_by). -#}
{% macro value_at_max(expr, order_by) -%}
    {{ return(adapter.dispatch('value_at_max', 'crm')(expr, order_by)) }}
{%- endmacro %}

{% macro duckdb__value_at_max(expr, order_by) -%}
    arg_max({{ expr }}, {{ order_by }})
{%- endmacro %}

{% macro default__value_at_max(expr, order_by) -%}
    {{ exceptions.raise_compiler_error("crm.value_at_max has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}
