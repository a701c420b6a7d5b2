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


{#- A where clause keeping the raw rows (of `alias`) of loads the model does not have yet; nothing on a full build. -#}
{% macro new_loads_only(alias) -%}
    {%- if is_incremental() %}
    where not exists (
        select 1 from (select distinct _source_file, _loaded_at from {{ this }}) as built
        where built._source_file = {{ alias }}._source_file and built._loaded_at = {{ alias }}._loaded_at
    )
    {%- endif %}
{%- endmacro %}


{#- The CTE `versions`: the rows to rank. On a full build, every row of `relation` (the model's parsed rows); on an
    incremental one, the new rows and every version the model already has of the keys they or the forgotten loads
    carry. `raw_relation` is the source() the model parses. -#}
{% macro versions_to_rank(relation, key_columns, raw_relation) -%}
{%- if is_incremental() %}
current_loads as (

    select distinct _source_file, _loaded_at from {{ raw_relation }}

),

affected_keys as (

    select {{ crm.row_hash(key_columns) }} as _key_hash from {{ relation }}
    union
    select {{ crm.row_hash(key_columns) }} from {{ this }} as built
    where not exists (
        select 1 from current_loads
        where current_loads._source_file = built._source_file and current_loads._loaded_at = built._loaded_at
    )

),

versions as {{ crm.inlined_cte() }} (

    select * from {{ relation }}
    union all
    {#- The model's own columns but the version columns, in its order (which is `relation`'s: the model selects
        relation.* first). A hash that collides only adds all versions of another key, which re-ranks them as
        before. #}
    select {{ crm.columns_of_this(exclude=['_content_hash', '_version_rank', '_conflict_reason', '_conflict_detail']) }}
    from {{ this }} as built
    where {{ crm.row_hash(key_columns) }} in (select _key_hash from affected_keys)
        and exists (
            select 1 from current_loads
            where current_loads._source_file = built._source_file and current_loads._loaded_at = built._loaded_at
        )

),
{%- else %}
versions as {{ crm.inlined_cte() }} (

    select * from {{ relation }}

),
{%- endif %}
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
