{#- One row per day from start_expr to end_expr inclusive, as column date_day. -#}
{% macro date_series(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('date_series', 'crm')(start_expr, end_expr)) }}
{%- endmacro %}

{% macro duckdb__date_series(start_expr, end_expr) -%}
    select cast(range as date) as date_day
    from range(cast({{ start_expr }} as timestamp), cast({{ end_expr }} as timestamp) + interval 1 day, interval 1 day)
{%- endmacro %}

{% macro spark__date_series(start_expr, end_expr) -%}
    select explode(sequence(cast({{ start_expr }} as date), cast({{ end_expr }} as date), interval 1 day)) as date_day
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

{#- Whole years, as DuckDB's date_sub counts them: a year is complete on the day of the month it started on. -#}
{% macro spark__age_in_years(birth_date, on_date) -%}
    (year({{ on_date }}) - year({{ birth_date }}) - case
        when month({{ on_date }}) < month({{ birth_date }})
            or (month({{ on_date }}) = month({{ birth_date }}) and day({{ on_date }}) < day({{ birth_date }})) then 1
        else 0 end)
{%- endmacro %}

{% macro default__age_in_years(birth_date, on_date) -%}
    {{ exceptions.raise_compiler_error("crm.age_in_years has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}



{#- ISO day of the week, Monday 1 to Sunday 7. -#}
{% macro iso_day_of_week(expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'crm')(expr)) }}
{%- endmacro %}

{% macro duckdb__iso_day_of_week(expr) -%}
    extract(isodow from {{ expr }})
{%- endmacro %}

{% macro spark__iso_day_of_week(expr) -%}
    extract(dayofweek_iso from {{ expr }})
{%- endmacro %}

{% macro default__iso_day_of_week(expr) -%}
    {{ exceptions.raise_compiler_error("crm.iso_day_of_week has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- True when a timestamp's time of day is midnight (exports that give a date only). -#}
{% macro is_midnight(expr) -%}
    {{ return(adapter.dispatch('is_midnight', 'crm')(expr)) }}
{%- endmacro %}

{% macro duckdb__is_midnight(expr) -%}
    cast({{ expr }} as time) = cast('00:00:00' as time)
{%- endmacro %}

{#- Spark has no TIME type. -#}
{% macro spark__is_midnight(expr) -%}
    cast(cast({{ expr }} as date) as timestamp) = {{ expr }}
{%- endmacro %}

{% macro default__is_midnight(expr) -%}
    {{ exceptions.raise_compiler_error("crm.is_midnight has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- dbt.datediff on Spark, counted as DuckDB's date_diff counts: the day, hour or minute boundaries crossed, and null
    (not an error) when either side is null. dbt-spark's own rounds hours and minutes up and fails on a null date.
    dbt_project.yml's dispatch setting makes dbt.datediff find this one first. -#}
{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- set days = "cast(datediff(cast(" ~ second_date ~ " as date), cast(" ~ first_date ~ " as date)) as bigint)" -%}
    {%- if datepart == 'day' -%}
        {{ days }}
    {%- elif datepart == 'hour' -%}
        ({{ days }} * 24 + hour({{ second_date }}) - hour({{ first_date }}))
    {%- elif datepart == 'minute' -%}
        (({{ days }} * 24 + hour({{ second_date }}) - hour({{ first_date }})) * 60
            + minute({{ second_date }}) - minute({{ first_date }}))
    {%- else -%}
        {{ exceptions.raise_compiler_error("crm's spark__datediff has no datepart '" ~ datepart ~ "'") }}
    {%- endif -%}
{%- endmacro %}


{#- dbt.dateadd on Spark: dbt-spark's goes through unix seconds and returns null on this project's TIMESTAMP_NTZ
    session. dbt_project.yml's dispatch setting makes dbt.dateadd find this one first. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
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

{#- Spark's datediff(end, start) counts the days between two dates, as a bigint like DuckDB's date_diff. -#}
{% macro spark__days_between(start_date, end_date) -%}
    cast(datediff({{ end_date }}, {{ start_date }}) as bigint)
{%- endmacro %}
