{#- Engine-portable building blocks the other macros use: regular expressions, safe casts, finite numbers. Every
    engine-specific function sits behind adapter.dispatch, so another engine needs `<adapter>__<macro>` versions of
    these (and of date_series in dates.sql, row_hash and friends in versions.sql), nothing else. -#}

{#- Replace every match of a regular expression. -#}
{% macro replace_pattern(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('replace_pattern', 'crm')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro duckdb__replace_pattern(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{#- Spark's string literals treat a backslash as an escape, and its replacements name groups $1 rather than \1. -#}
{% macro spark__replace_pattern(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern | replace("\\", "\\\\") }}', '{{ replacement | replace("\\1", "$1") }}')
{%- endmacro %}

{% macro default__replace_pattern(expr, pattern, replacement) -%}
    {{ exceptions.raise_compiler_error("crm.replace_pattern has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{% macro strip_pattern(expr, pattern) -%}
    {{ crm.replace_pattern(expr, pattern, '') }}
{%- endmacro %}


{#- True when the whole text matches a regular expression. -#}
{% macro matches_pattern(expr, pattern) -%}
    {{ return(adapter.dispatch('matches_pattern', 'crm')(expr, pattern)) }}
{%- endmacro %}

{% macro duckdb__matches_pattern(expr, pattern) -%}
    regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__matches_pattern(expr, pattern) -%}
    regexp_like({{ expr }}, '^(?:{{ pattern | replace("\\", "\\\\") }})\\z')
{%- endmacro %}

{% macro default__matches_pattern(expr, pattern) -%}
    {{ exceptions.raise_compiler_error("crm.matches_pattern has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- Cast that gives null instead of failing on text that is not of the type (dbt's safe_cast is a plain cast
    on DuckDB). -#}
{% macro try_cast(expr, type) -%}
    {{ return(adapter.dispatch('try_cast', 'crm')(expr, type)) }}
{%- endmacro %}

{% macro duckdb__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{#- Spark truncates a fraction cast to a whole number, DuckDB rounds it: round first, as DuckDB does. -#}
{% macro spark__try_cast(expr, type) -%}
    {%- if type | lower in ('bigint', 'integer', 'int') -%}
    try_cast(round({{ expr }}) as {{ type }})
    {%- else -%}
    try_cast({{ expr }} as {{ type }})
    {%- endif -%}
{%- endmacro %}

{% macro default__try_cast(expr, type) -%}
    {{ exceptions.raise_compiler_error("crm.try_cast has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- The number itself, null for NaN and infinities: try_cast reads 'nan', 'inf' and '1e400' as those, and they are
    not amounts or quantities (a NaN would pass every range check and break the money casts downstream). -#}
{% macro finite_or_null(expr) -%}
    {{ return(adapter.dispatch('finite_or_null', 'crm')(expr)) }}
{%- endmacro %}

{% macro duckdb__finite_or_null(expr) -%}
    case when isfinite({{ expr }}) then {{ expr }} end
{%- endmacro %}

{% macro spark__finite_or_null(expr) -%}
    case when not isnan({{ expr }}) and abs({{ expr }}) <> double('infinity') then {{ expr }} end
{%- endmacro %}

{% macro default__finite_or_null(expr) -%}
    {{ exceptions.raise_compiler_error("crm.finite_or_null has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}



{#- The type of text columns (Spark wants a length with varchar; its text type is string). -#}
{% macro text() -%}
    {{ return(adapter.dispatch('text', 'crm')()) }}
{%- endmacro %}

{% macro duckdb__text() -%}
    varchar
{%- endmacro %}

{% macro spark__text() -%}
    string
{%- endmacro %}

{% macro default__text() -%}
    {{ dbt.type_string() }}
{%- endmacro %}


{#- first_value over a window, skipping nulls. -#}
{% macro first_non_null(expr) -%}
    {{ return(adapter.dispatch('first_non_null', 'crm')(expr)) }}
{%- endmacro %}

{% macro duckdb__first_non_null(expr) -%}
    first_value({{ expr }} ignore nulls)
{%- endmacro %}

{% macro spark__first_non_null(expr) -%}
    first_value({{ expr }}, true)
{%- endmacro %}

{% macro default__first_non_null(expr) -%}
    {{ exceptions.raise_compiler_error("crm.first_non_null has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- dbt.cast on Spark, for the contract checks dbt runs with the data types the model files declare: a declared
    varchar is Spark's string (Spark wants a length with varchar). dbt_project.yml's dispatch setting makes dbt.cast
    find this one first. -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ crm.text() if type | trim | lower == 'varchar' else type }})
{%- endmacro %}
