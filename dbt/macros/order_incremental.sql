{#- int_orders_combined kept incrementally per order id.

    Each of its rows depends on the order's own rows in the base models and nothing else: the winning version of its
    header row, its lines (their sum prices a header without an amount; a line-level file's lines make the order).
    So a build recomputes the order ids that rows of the base models' new loads carry, and only those: a new version of
    an old order, a late line, a header arriving after its lines. When a load the last build read is gone (a drop file
    delivered again with other content: its withdrawn rows are in no new load), or nothing is recorded, it recomputes
    every order. The pre-hook deletes those orders' rows, inside the model's transaction; the model's SQL selects them
    anew (dbt's append). The post-hook records the base models' loads the build read (`<model>__loads`), which
    int_orders_deduplicated takes as read (dbt/macros/customer_incremental.sql). A full build and
    `dbt build --full-refresh` run the same SQL over every order (tests/test_incremental.py compares the tables). On
    Spark the model is a table rebuilt in full, as the base models are (dbt/macros/incremental.sql). -#}


{% macro order_incremental_config(bases) -%}
    {{ return(adapter.dispatch('order_incremental_config', 'crm')(bases)) }}
{%- endmacro %}

{% macro default__order_incremental_config(bases) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ crm.forget_changed_orders() }}"],
        post_hook=["{{ crm.record_loads_built_from(" ~ bases ~ ") }}",
                   "drop table if exists {{ crm.customer_state_relation('changed') }}"]
    ) }}
{%- endmacro %}

{% macro spark__order_incremental_config(bases) -%}
    {{ config(materialized='table') }}
{%- endmacro %}


{#- On an incremental build, when the model runs (before its transaction): the order ids it recomputes, written to
    `<model>__changed` for the pre-hook and the model's SQL. `bases` are the base models the orders come from, each
    with an `order_id` column. -#}
{% macro write_changed_orders(bases) -%}
    {#- (Only a build writes: `dbt compile` or `docs generate` render the model too.) #}
    {%- if not (execute and is_incremental() and flags.WHICH in ('run', 'build')) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set loads_state = crm.customer_state_relation('loads') -%}
    {%- set recorded = crm.relation_exists(loads_state) -%}
    {%- set changes = crm.loads_since_recorded(bases) if recorded else {'new': {}, 'gone': []} -%}
    {%- set new_loads, gone = changes['new'], changes['gone'] -%}
    {%- set statement -%}
        create or replace table {{ crm.customer_state_relation('changed') }} as
        {%- if not recorded or gone %}
        {#- Every order: no new load says what the withdrawn rows were. #}
        {%- for name in bases %}
        select order_id from {{ ref(name) }} where order_id is not null
        union
        {%- endfor %}
        select order_id from {{ this }}
        {%- else %}
        {%- for name in bases %}
        select order_id from {{ ref(name) }} as base_rows
        where order_id is not null and {{ crm.in_loads('base_rows', new_loads.get(name, [])) }}
        {{- " union" if not loop.last }}
        {%- endfor %}
        {%- endif %}
    {%- endset -%}
    {%- do run_query(statement) -%}
    {%- do crm.log_recomputed('order', gone, recorded) -%}
    {{ return('') }}
{%- endmacro %}


{#- The model's condition on the order id (`order_id`, an expression) of the rows it selects: the changed orders on
    an incremental build, every order on a full one. -#}
{% macro only_changed_orders(order_id) -%}
    {%- if is_incremental() -%}
    {{ order_id }} in (select order_id from {{ crm.customer_state_relation('changed') }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook (in the model's transaction): the changed orders' rows go; the model's SQL selects them anew. -#}
{% macro forget_changed_orders() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where order_id in (select order_id from {{ crm.customer_state_relation('changed') }})
    {%- endif -%}
{%- endmacro %}
