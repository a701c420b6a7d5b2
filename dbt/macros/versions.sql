{#- The window that orders the versions of a key, the winner first: newest updated_at, then the newest drop, then
    the last row of the file (and of two files of one drop, the one named last, so the winner never depends on the
    order the engine happens to read rows in). Quarantined rows are ranked apart. -#}
{% macro versions_window(key_columns, updated_at) -%}
    over (
        partition by _quarantine_reason is null, {{ key_columns | join(', ') }}
        order by {{ updated_at }} desc nulls last, _drop_date desc, _source_file desc, _row_number desc
    )
{%- endmacro %}


{#- Rank of a valid row among the versions of its key: 1 is the version that wins. Quarantined rows get no rank:
    they never win. -#}
{% macro version_rank(key_columns, updated_at='updated_at') -%}
    case when _quarantine_reason is null then row_number() {{ crm.versions_window(key_columns, updated_at) }} end
{%- endmacro %}


{#- Why a valid row that lost is a conflicting duplicate, else null: it has the same key, the same updated_at (or
    version time) and the same drop as the winner, but other values, so which one is right is a guess. The winner
    still lands (the last row, as for any tie); the loser is quarantined with this reason, so the conflict is seen
    rather than silently resolved. `version` names updated_at in the message; the rows need a _content_hash. -#}
{% macro conflicting_version(key_columns, updated_at='updated_at', version='updated_at') -%}
    {%- set w = crm.versions_window(key_columns, updated_at) -%}
    case
        when _quarantine_reason is null
            and row_number() {{ w }} > 1
            and {{ updated_at }} is not distinct from first_value({{ updated_at }}) {{ w }}
            and _drop_date = first_value(_drop_date) {{ w }}
            and _content_hash <> first_value(_content_hash) {{ w }}
        then 'conflicting duplicate: same {{ key_columns | join(' and ') }} and {{ version }} as row '
            || cast(first_value(_row_number) {{ w }} as {{ dbt.type_string() }}) || ' of '
            || first_value(_source_file) {{ w }} || ', which has other values and was kept'
    end
{%- endmacro %}


{#- A hash of a row's values: every column of the relation selected from whose name does not start with _ (the
    lineage and bookkeeping columns). -#}
{% macro content_hash() -%}
    {{ return(adapter.dispatch('content_hash', 'crm')()) }}
{%- endmacro %}

{% macro duckdb__content_hash() -%}
    hash(*columns('^[^_]'))
{%- endmacro %}

{% macro default__content_hash() -%}
    {{ exceptions.raise_compiler_error("crm.content_hash has no implementation for adapter '" ~ adapter.type() ~ "'") }}
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
