{#- The window that orders the versions of a key, the winner first: newest updated_at, then the newest drop, then
    the last row of the file (and of two files of one drop, the one named last, so the winner never depends on the
    order the engine happens to read rows in). -#}
{% macro versions_window(key_columns, updated_at) -%}
    over (
        partition by {{ key_columns | join(', ') }}
        order by {{ updated_at }} desc nulls last, _drop_date desc, _source_file desc, _row_number desc
    )
{%- endmacro %}


{#- The CTEs `contested_keys` and `contested_versions` that rank the versions of each key of `relation` (a CTE of
    the model); the model's final select reads `relation` left-joined to `contested_versions` with version_columns().
    _version_rank is the rank of a valid row among the versions of its key, 1 for the winner; quarantined rows get
    none (they never win).
    _conflict_reason is 'conflicting duplicate' for a valid row that lost though it has the same key, the same
    updated_at (or version time) and the same drop as the winner, but other values, so which one is right is a
    guess; _conflict_detail names the row that was kept. The winner still lands (the last row, as for any tie); the
    loser is quarantined with this reason, so the conflict is seen rather than silently resolved. `version` names
    updated_at in the detail.
    Most keys have one version: only the rows of keys that occur several times are sorted (a window over every row
    costs a sort of the whole table), and their ranks are joined back to the rest by raw row (_source_file,
    _row_number). Keys are counted by their hash, a fixed-size group key: a collision only makes a key with one row
    look contested, and ranking a lone row gives it rank 1, as not ranking it does.
    `relation` and the CTEs it reads from must be inlined (crm.inlined_cte): read three times, the engine would
    otherwise materialise every parsed row, which spills to disk at ten million rows. -#}
{% macro contested_versions(relation, key_columns, updated_at='updated_at', version='updated_at') -%}
    {%- set w = crm.versions_window(key_columns, updated_at) -%}
contested_keys as (

    select {{ crm.row_hash(key_columns) }} as _key_hash
    from {{ relation }}
    group by 1
    having count(*) > 1

),

contested_versions as (

    select
        _source_file,
        _row_number,
        row_number() {{ w }} as _version_rank,
        case
            when row_number() {{ w }} > 1
                and {{ updated_at }} is not distinct from first_value({{ updated_at }}) {{ w }}
                and _drop_date = first_value(_drop_date) {{ w }}
                and _content_hash <> first_value(_content_hash) {{ w }}
            then 'same {{ key_columns | join(' and ') }} and {{ version }} as row '
                || cast(first_value(_row_number) {{ w }} as {{ dbt.type_string() }}) || ' of '
                || first_value(_source_file) {{ w }} || ', which has other values and was kept'
        end as _conflict_detail
    from (
        select *, {{ crm.content_hash() }} as _content_hash
        from {{ relation }}
        where _quarantine_reason is null
            and {{ crm.row_hash(key_columns) }} in (select _key_hash from contested_keys)
    ) as contested_rows

)
{%- endmacro %}


{#- The version columns of a row of `relation` joined to contested_versions: _content_hash, _version_rank (1 for an
    uncontested valid row), _conflict_reason and _conflict_detail. -#}
{% macro version_columns(relation) -%}
    {{ crm.content_hash() }} as _content_hash,
    coalesce(contested_versions._version_rank, case when {{ relation }}._quarantine_reason is null then 1 end)
        as _version_rank,
    case when contested_versions._conflict_detail is not null then 'conflicting duplicate' end as _conflict_reason,
    contested_versions._conflict_detail
{%- endmacro %}


{#- A CTE read several times is inlined into each reader, not computed once and kept: where the engine would keep it
    (DuckDB keeps a CTE read more than once), a table's worth of parsed rows is held in memory and spills to disk,
    while each reader needs only some of its columns or rows. -#}
{% macro inlined_cte() -%}
    {{ return(adapter.dispatch('inlined_cte', 'crm')()) }}
{%- endmacro %}

{% macro duckdb__inlined_cte() -%}
    not materialized
{%- endmacro %}

{% macro default__inlined_cte() -%}
{%- endmacro %}

{#- A CTE computed once and kept for its readers: for a small one read several times. -#}
{% macro kept_cte() -%}
    {{ return(adapter.dispatch('kept_cte', 'crm')()) }}
{%- endmacro %}

{% macro duckdb__kept_cte() -%}
    materialized
{%- endmacro %}

{% macro default__kept_cte() -%}
{%- endmacro %}


{#- One fixed-size hash of some columns' values, for counting keys cheaply. -#}
{% macro row_hash(columns) -%}
    {{ return(adapter.dispatch('row_hash', 'crm')(columns)) }}
{%- endmacro %}

{% macro duckdb__row_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__row_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{% macro default__row_hash(columns) -%}
    {{ exceptions.raise_compiler_error("crm.row_hash has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- A hash of a row's values: every column of the relation selected from whose name does not start with _ (the
    lineage and bookkeeping columns). -#}
{% macro content_hash() -%}
    {{ return(adapter.dispatch('content_hash', 'crm')()) }}
{%- endmacro %}

{% macro duckdb__content_hash() -%}
    hash(*columns('^[^_]'))
{%- endmacro %}

{#- A backquoted regular expression selects columns (spark.sql.parser.quotedRegexColumnNames, set by
    dagster_project/spark/session.py). -#}
{% macro spark__content_hash() -%}
    xxhash64(`^[^_].*`)
{%- endmacro %}

{% macro default__content_hash() -%}
    {{ exceptions.raise_compiler_error("crm.content_hash has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}


{#- The rows of `relation` (a CTE of the model), each with _occurrence: where `id_expr` is null, the row's number
    among the identical rows (same `columns`) of its file, in file order; null elsewhere. Only the rows without an id
    are sorted: a window over every row would sort the whole table for the few rows that need it. -#}
{% macro with_occurrences(relation, id_expr, columns) -%}
    select *, row_number() over (partition by _source_file, {{ columns | join(', ') }} order by _row_number) as _occurrence
    from {{ relation }}
    where {{ id_expr }} is null
    union all
    select *, cast(null as bigint) as _occurrence
    from {{ relation }}
    where {{ id_expr }} is not null
{%- endmacro %}


{#- A stable id for exports that carry none (e.g. a bare order log): a hash of the row's content plus its
    occurrence number among identical rows of the same file (with_occurrences), so a snapshot delivered again maps to
    the same ids (and merges as a new version) while two identical purchases in one file stay two rows. -#}
{% macro derived_id(prefix, columns) -%}
    {%- set parts = [] -%}
    {%- for c in columns -%}{%- do parts.append("coalesce(" ~ c ~ ", '')") -%}{%- endfor -%}
    '{{ prefix }}-' || {{ dbt.hash(parts | join(" || '|' || ")) }} || '-' || cast(_occurrence as {{ dbt.type_string() }})
{%- endmacro %}


{#- The value of expr on the row where order_by is greatest (DuckDB arg_max, Spark max_by). -#}
{% macro value_at_max(expr, order_by) -%}
    {{ return(adapter.dispatch('value_at_max', 'crm')(expr, order_by)) }}
{%- endmacro %}

{% macro duckdb__value_at_max(expr, order_by) -%}
    arg_max({{ expr }}, {{ order_by }})
{%- endmacro %}

{% macro spark__value_at_max(expr, order_by) -%}
    max_by({{ expr }}, {{ order_by }})
{%- endmacro %}

{% macro default__value_at_max(expr, order_by) -%}
    {{ exceptions.raise_compiler_error("crm.value_at_max has no implementation for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}
