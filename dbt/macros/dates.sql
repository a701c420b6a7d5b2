{#- One row per day from start_expr to end_expr inclusive, as column date_day. -#}
{% macro date_series(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('date_series', 'crm')(start_expr, end_expr)) }}
{%- endmacro %}

{% macro duckdb__date_series(start_expr, end_expr) -%}
    select cast(range as date) as date_day
    from range(cast({{ start_expr }} as timestamp), cast({{ end_expr }} as timestamp) + interval 1 day, interval 1 day)
{%- endmacro %}

{% macro default__date_series(start_expr, end_expr) -%}
    {{ exceptions.raise_compiler_error("crm.date_series has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- The as-of date every downstream model treats as today (see int_as_of). -#}
{% macro as_of_date() -%}
    (select as_of_date from {{ ref('int_as_of') }})
{%- endmacro %}
