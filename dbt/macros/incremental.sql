{#- Base models kept incrementally (the large ones: orders, order lines, interactions).

    What a base model makes of a raw row depends on that row alone (and on its file, for derived ids and occurrence
    numbers), except its version columns, which depend on every version of its key. So a refresh parses only the raw
    rows of loads the model does not have yet (a load is one file loaded once: _source_file and _loaded_at; a file
    re-delivered with other content is loaded again, replacing its earlier rows in raw), and re-ranks every version
    of each key those rows carry, and of each key whose rows belonged to a load that is gone: the versions already in
    the model are read back from it. The model's unique key is the raw row (_source_file, _row_number), so the
    re-ranked rows replace their earlier selves (dbt's delete+insert), and the post-hook deletes the rows of loads
    no longer in raw. The first build and `dbt build --full-refresh` run the same SQL over every raw row, which is
    what makes an incremental build equal to a full one (tests/test_incremental.py compares them). On Spark the base
    models are tables rebuilt in full (spark__incremental_base_config below).

    What else a base model reads (the vars, the currency seed, the macros) is part of the dbt project's state: when
    it changes, the dbt asset rebuilds with --full-refresh (dagster_project/defs/assets/dbt.py). -#}


{#- The model's incremental configuration; `raw_table` names the table of source crm the model parses. The hook is
    rendered when it runs, where `this` and source() are the model's. -#}
{% macro incremental_base_config(raw_table) -%}
    {{ return(adapter.dispatch('incremental_base_config', 'crm')(raw_table)) }}
{%- endmacro %}

{% macro default__incremental_base_config(raw_table) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['_source_file', '_row_number'],
        on_schema_change='fail',
        post_hook=["{{ crm.forget_replaced_loads(source('crm', '" ~ raw_table ~ "')) }}"]
    ) }}
{%- endmacro %}

{#- On Spark the base models are plain tables, rebuilt from every raw row at every build: dbt-spark's incremental
    strategies for Parquet tables are `append` and `insert_overwrite` only, and a Parquet table takes no DELETE, while
    an incremental build here must replace the re-ranked versions of a key and forget the rows of replaced loads (a
    delete+insert or a merge: Delta Lake's, whose jars Spark would fetch from Maven at start-up; see
    dagster_project/spark/landing.py). `insert_overwrite` without partitions overwrites the whole table with the
    incremental query's rows only, and partitioning by load would still leave the re-ranked versions in earlier loads'
    partitions stale. A table is what the full build computes, so it is exactly what the incremental build must
    equal; is_incremental() is false for it, so the model runs its full-build SQL. -#}
{% macro spark__incremental_base_config(raw_table) -%}
    {{ config(materialized='table') }}
{%- endmacro %}


{#- The loads that changed since the model was built, read from the warehouse when the model runs: `new`, the loads
    (_source_file, _loaded_at) raw has and the model does not; `gone`, those the model has and raw no longer has (their
    file was loaded again with other content); `new_rows`, the raw rows of the new loads. Empty on a full build and when
    dbt only parses. The lists are written into the model's SQL as literals, so that the engine reads only the new
    loads' rows of raw (a load's rows were appended together) and plans its joins knowing that a daily drop is small:
    compared as subqueries, the engine guessed a fifth of raw was new, and at 28 million order lines it built a hash
    table of the whole model instead of the drop's keys (minutes, and out of memory at the memory limit). -#}
{% macro load_changes(raw_relation) -%}
    {%- set changes = {'new': [], 'gone': [], 'new_rows': 0} -%}
    {%- if execute and is_incremental() -%}
        {%- set query -%}
            with current_loads as (
                select _source_file, _loaded_at, count(*) as row_count from {{ raw_relation }} group by all
            ),
            built_loads as (select distinct _source_file, _loaded_at from {{ this }})
            select 'new' as change, _source_file, cast(_loaded_at as {{ dbt.type_string() }}), row_count
            from current_loads
            where not exists (select 1 from built_loads
                              where built_loads._source_file = current_loads._source_file
                                  and built_loads._loaded_at = current_loads._loaded_at)
            union all
            select 'gone', _source_file, cast(_loaded_at as {{ dbt.type_string() }}), 0
            from built_loads
            where not exists (select 1 from current_loads
                              where current_loads._source_file = built_loads._source_file
                                  and current_loads._loaded_at = built_loads._loaded_at)
            order by 1, 2, 3
        {%- endset -%}
        {%- for change, source_file, loaded_at, row_count in run_query(query).rows -%}
            {%- do changes[change].append((source_file, loaded_at)) -%}
            {%- do changes.update({'new_rows': changes['new_rows'] + row_count}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(changes) }}
{%- endmacro %}


{#- A condition true for the rows (of `alias`) of one of `loads` (a list from load_changes), false for none. Load
    times are compared first: that test alone lets the engine skip the row groups of other loads. -#}
{% macro in_loads(alias, loads) -%}
    {%- if loads -%}
    ({{ alias }}._loaded_at in (
        {%- for _, loaded_at in loads | unique(attribute=1) %}{{ crm.timestamp_literal(loaded_at) }}{{ ", " if not loop.last }}{% endfor -%}
    ) and ({{ alias }}._source_file, {{ alias }}._loaded_at) in (
        {%- for source_file, loaded_at in loads %}({{ crm.string_literal(source_file) }}, {{ crm.timestamp_literal(loaded_at) }}){{ ", " if not loop.last }}{% endfor -%}
    ))
    {%- else -%}
    false
    {%- endif -%}
{%- endmacro %}

{% macro string_literal(value) -%}
    '{{ dbt.escape_single_quotes(value) }}'
{%- endmacro %}

{% macro timestamp_literal(value) -%}
    cast({{ crm.string_literal(value) }} as timestamp)
{%- endmacro %}


{#- A where clause keeping the raw rows (of `alias`) of the new loads of `changes` (from load_changes); nothing on a
    full build. -#}
{% macro new_loads_only(alias, changes) -%}
    {%- if is_incremental() %}
    where {{ crm.in_loads(alias, changes['new']) }}
    {%- endif %}
{%- endmacro %}


{#- The CTE `versions`: the rows to rank. On a full build, every row of `relation` (the model's parsed rows); on an
    incremental one, the new rows and every version the model already has of the keys they or the gone loads
    carry (`changes` from load_changes). Incremental, the CTE is kept rather than inlined into its three readers
    (each would read the model again) unless the new loads are large. -#}
{% macro versions_to_rank(relation, key_columns, changes) -%}
{%- if is_incremental() %}
affected_keys as (

    select {{ crm.row_hash(key_columns) }} as _key_hash from {{ relation }}
    {%- if changes['gone'] %}
    union
    select {{ crm.row_hash(key_columns) }} from {{ this }} as built
    where {{ crm.in_loads('built', changes['gone']) }}
    {%- endif %}

),

versions as {{ crm.inlined_cte() if changes['new_rows'] > crm.kept_cte_row_limit() else crm.kept_cte() }} (

    select * from {{ relation }}
    union all
    {#- The model's own columns but the version columns, in its order (which is `relation`'s: the model selects
        relation.* first). A hash that collides only adds all versions of another key, which re-ranks them as
        before. #}
    select {{ crm.columns_of_this(exclude=['_content_hash', '_version_rank', '_conflict_reason', '_conflict_detail']) }}
    from {{ this }} as built
    where {{ crm.row_hash(key_columns) }} in (select _key_hash from affected_keys)
        {%- if changes['gone'] %}
        and not {{ crm.in_loads('built', changes['gone']) }}
        {%- endif %}

),
{%- else %}
versions as {{ crm.inlined_cte() }} (

    select * from {{ relation }}

),
{%- endif %}
{%- endmacro %}

{#- New rows up to which an incremental build keeps its versions CTE (a daily drop); above it, a reload of much of the
    history, the CTE is inlined as on a full build, where keeping every parsed row would spill to disk. -#}
{% macro kept_cte_row_limit() -%}
    {{ return(2000000) }}
{%- endmacro %}


{#- The model's columns as they are in the warehouse, quoted and comma-separated, without `exclude`. -#}
{% macro columns_of_this(exclude=[]) -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(this) if column.name not in exclude -%}
        {%- do names.append(adapter.quote(column.name)) -%}
    {%- endfor -%}
    {{ names | join(', ') }}
{%- endmacro %}


{#- Post-hook: delete the rows of loads that are no longer in raw (their file was loaded again, other content). -#}
{% macro forget_replaced_loads(raw_relation) -%}
    delete from {{ this }} as built
    where not exists (
        select 1 from (select distinct _source_file, _loaded_at from {{ raw_relation }}) as current_loads
        where current_loads._source_file = built._source_file and current_loads._loaded_at = built._loaded_at
    )
{%- endmacro %}
