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


{#- Whole years from birth_date to on_date (the age on that day). -#}
{% macro age_in_years(birth_date, on_date) -%}
    {{ return(adapter.dispatch('age_in_years', 'crm')(birth_date, on_date)) }}
{%- endmacro %}

{% macro duckdb__age_in_years(birth_date, on_date) -%}
    date_sub('year', {{ birth_date }}, {{ on_date }})
{%- endmacro %}

{% macro default__age_in_years(birth_date, on_date) -%}
    {{ exceptions.raise_compiler_error("crm.age_in_years has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- Whole days from start_date to end_date (both dates): dbt.datediff casts DuckDB dates to timestamps first, which
    the per-customer measures would pay on every order, interaction and ticket at every cutoff. -#}
{% macro days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('days_between', 'crm')(start_date, end_date)) }}
{%- endmacro %}

{% macro duckdb__days_between(start_date, end_date) -%}
    date_diff('day', {{ start_date }}, {{ end_date }})
{%- endmacro %}

{% macro default__days_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}
