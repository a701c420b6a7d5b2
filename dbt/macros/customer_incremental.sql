{#- Intermediate models kept incrementally per golden customer (the deduplication models of orders and interactions).

    Each of their rows depends on its record, the record's golden customer (identity resolution), the as-of date,
    and the customer's other records (duplicates are found within one customer). So a build recomputes every row of
    the customers it may change, and only those:
    - the customers of the records the new loads of the base models carry (an order of a new line too), before and
      now: a newer version of an old record may move it to another customer;
    - the customers whose identity changed: every id whose golden customer differs from the last build's, on both
      sides (a merge, a split, a customer record that arrived after its interactions);
    - the customers with records dated between the last build's as-of date and this one's;
    - every customer, when a load the last build read is gone (a drop file delivered again with other content: its
      withdrawn rows are in no new load), or nothing is recorded.
    The pre-hook deletes those customers' rows, inside the model's transaction; the model's SQL selects their rows
    anew (dbt's append). The post-hooks record what the build read, also on a full build: the identities and the
    as-of date (`<model>__identities`), the base models' loads its records reflect (`<model>__loads`), and which
    customers it recomputed (`<model>__changes`, for the facts below). All state tables are in the intermediate
    schema, which is never published.
    A full build and `dbt build --full-refresh` run the same SQL over every customer, which is what makes an
    incremental build equal to a full one (tests/test_incremental.py compares every table). On Spark the models are
    tables rebuilt in full, as the base models are (dbt/macros/incremental.sql). -#}


{% macro customer_incremental_config(bases, loads_of=none) -%}
    {{ return(adapter.dispatch('customer_incremental_config', 'crm')(bases, loads_of)) }}
{%- endmacro %}

{#- `bases` and `loads_of` as in write_changed_customers. -#}
{% macro default__customer_incremental_config(bases, loads_of=none) -%}
    {{ crm.per_customer_config([
        "{{ crm.record_identities_built_from() }}",
        "{{ crm.record_loads_built_from(" ~ (bases | map(attribute=0) | list) ~ ", '" ~ (loads_of or '') ~ "') }}",
        "{{ crm.create_changes() }}",
        "{{ crm.record_changes() }}",
        "{{ crm.forget_old_changes() }}"]) }}
{%- endmacro %}

{#- What every per-customer model is: appended to after a pre-hook deleted the changed customers' rows; its
    `post_hooks`, then the list of changed customers dropped. -#}
{% macro per_customer_config(post_hooks) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ crm.forget_changed_customers() }}"],
        post_hook=post_hooks + ["drop table if exists {{ crm.customer_state_relation('changed') }}"]
    ) }}
{%- endmacro %}

{% macro spark__customer_incremental_config(bases, loads_of=none) -%}
    {{ config(materialized='table') }}
{%- endmacro %}


{#- A state table of the model (or of the model `of`): in the intermediate schema, which is never published (a fact's
    state holds golden ids). -#}
{% macro customer_state_relation(kind, of=none) -%}
    {{ return(api.Relation.create(database=this.database, schema=generate_schema_name('intermediate', model),
                                  identifier=(of or this.identifier) ~ '__' ~ kind)) }}
{%- endmacro %}


{#- On an incremental build, when the model runs (before its transaction): the customers it recomputes, written to
    `<model>__changed` for the pre-hook and the model's SQL. `bases` lists the base models the model's records come
    from, each as (name, the column of the record key in it); `records` is the relation of the model's input
    records, with the `key` and `customer_id` columns and `date_column`, the date compared with the as-of date.
    `loads_of` names the table model the records come from when they are not a view of the base models: the loads it
    recorded when it was built (int_orders_combined: dbt/macros/order_incremental.sql) are those its records reflect,
    so that a per-customer model built after the base models but not after it (as a subset run may) does not take the
    new loads as read. -#}
{% macro write_changed_customers(bases, records, key, date_column, loads_of=none) -%}
    {#- (Only a build writes: `dbt compile` or `docs generate` render the model too.) #}
    {%- if not (execute and is_incremental() and flags.WHICH in ('run', 'build')) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set identities_state = crm.customer_state_relation('identities') -%}
    {%- set loads_state = crm.customer_state_relation('loads') -%}
    {%- set recorded = crm.relation_exists(identities_state) and crm.relation_exists(loads_state) -%}
    {%- set identities = ref('int_customer_identities_resolved') -%}
    {%- set changes = crm.loads_since_recorded(bases | map(attribute=0) | list, loads_of) if recorded
                      else {'new': {}, 'gone': []} -%}
    {%- set new_loads, gone = changes['new'], changes['gone'] -%}
    {%- set statement -%}
        create or replace table {{ crm.customer_state_relation('changed') }} as
        {%- if not recorded or gone %}
        {#- Every customer: no new load says what the withdrawn rows were. #}
        select customer_key from {{ identities }}
        union
        select customer_key from {{ this }}
        {%- else %}
        with touched_records as (
            {%- for name, key_column in bases %}
            select {{ key_column }} as record_key from {{ ref(name) }} as base_rows
            where {{ crm.in_loads('base_rows', new_loads.get(name, [])) }}
            {{- " union" if not loop.last }}
            {%- endfor %}
        ),
        as_of_window as (
            select
                least(max(as_of_date), {{ crm.as_of_date() }}) as after_date,
                greatest(max(as_of_date), {{ crm.as_of_date() }}) as up_to_date
            from {{ identities_state }}
        ),
        touched_customer_ids as {{ crm.kept_cte() }} (
            select distinct customer_id
            from {{ records }} as records
            where records.{{ key }} in (select record_key from touched_records)
                or (cast(records.{{ date_column }} as date) > (select after_date from as_of_window)
                    and cast(records.{{ date_column }} as date) <= (select up_to_date from as_of_window))
        ),
        identity_changes as (
            select now.customer_key as now_key, before.customer_key as before_key
            from {{ identities }} as now
            full outer join {{ identities_state }} as before on now.source_customer_id = before.source_customer_id
            where now.customer_key is distinct from before.customer_key
        ),
        final as (
            {#- Both sides of every identity change, ... #}
            select now_key as customer_key from identity_changes where now_key is not null
            union
            select before_key from identity_changes where before_key is not null
            union
            {#- ... the customers of the touched records and of the records dated between the two as-of dates, now,
                ... #}
            select identities.customer_key
            from touched_customer_ids
            inner join {{ identities }} as identities
                on touched_customer_ids.customer_id = identities.source_customer_id
            union
            {#- ... and as the model has them. #}
            select built.customer_key
            from {{ this }} as built
            where built.{{ key }} in (select record_key from touched_records)
        )
        select * from final
        {%- endif %}
    {%- endset -%}
    {%- do run_query(statement) -%}
    {%- do crm.log_recomputed('customer', gone, recorded) -%}
    {{ return('') }}
{%- endmacro %}


{#- After write_changed_customers or write_changed_orders: how many `noun`s ('customer', 'order') the build
    recomputes (the rows of `<model>__changed`), and why every one when it is every one. For the refresh's log, and
    for tests/test_incremental.py to see that a drop recomputes few. -#}
{% macro log_recomputed(noun, gone, recorded) -%}
    {%- set counted = run_query('select count(*) from ' ~ crm.customer_state_relation('changed')) -%}
    {%- do log('crm ' ~ noun ~ 's recomputed: ' ~ model.unique_id ~ ' ' ~ counted.columns[0].values()[0]
               ~ (' (every ' ~ noun ~ ': a load it read is gone)' if gone else '')
               ~ (' (every ' ~ noun ~ ': nothing recorded)' if not recorded else ''), info=true) -%}
{%- endmacro %}

{#- Whether the table exists, asked of the database: dbt's relation cache does not know the state tables that hooks
    created during this invocation. -#}
{% macro relation_exists(relation) -%}
    {%- set query -%}
        select count(*) from information_schema.tables
        where table_catalog = '{{ relation.database }}' and table_schema = '{{ relation.schema }}'
            and table_name = '{{ relation.identifier }}'
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] > 0) }}
{%- endmacro %}


{#- The model's condition on the golden customer (`customer_key`, an expression) of the rows it selects: the changed
    customers on an incremental build, every customer on a full one. -#}
{% macro only_changed_customers(customer_key) -%}
    {%- if is_incremental() -%}
    {{ customer_key }} in (select customer_key from {{ crm.customer_state_relation('changed') }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}


{#- How a model's CTE of the changed customers' rows (or identities) is computed: on an incremental build, first and
    kept (inlined, the engine joined every record to every identity before keeping the changed customers': three times
    as long at a million customers). -#}
{% macro changed_customers_cte() -%}
    {{ crm.kept_cte() if is_incremental() }}
{%- endmacro %}


{#- Pre-hook (in the model's transaction): the changed customers' rows go; the model's SQL selects them anew. -#}
{% macro forget_changed_customers() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where customer_key in (select customer_key from {{ crm.customer_state_relation('changed') }})
    {%- endif -%}
{%- endmacro %}


{#- Post-hooks (in the model's transaction): what this build read, for the next one to compare with: the identities
    and the as-of date, and the loads of `bases` (as in default__customer_incremental_config). -#}
{% macro record_identities_built_from() -%}
    create or replace table {{ crm.customer_state_relation('identities') }} as
    select source_customer_id, customer_key, {{ crm.as_of_date() }} as as_of_date
    from {{ ref('int_customer_identities_resolved') }}
{%- endmacro %}

{% macro record_loads_built_from(bases, loads_of=none) -%}
    create or replace table {{ crm.customer_state_relation('loads') }} as
    {{ crm.loads_read(bases, loads_of) }}
{%- endmacro %}

{#- The loads of the base models `bases` (as loads_read gives them) since those the model recorded when it was last
    built (`<model>__loads`, which must exist): `new`, the loads per base model that it did not read then; `gone`, the
    base models of loads it read that are gone (a file delivered again with other content). -#}
{% macro loads_since_recorded(bases, loads_of=none) -%}
    {%- set loads_state = crm.customer_state_relation('loads') -%}
    {%- set changes = {'new': {}, 'gone': []} -%}
    {%- set query -%}
        with current_loads as (
            {{ crm.loads_read(bases, loads_of) }}
        )
        select 'new', base, _source_file, cast(_loaded_at as {{ dbt.type_string() }}) from (
            select * from current_loads except select base, _source_file, _loaded_at from {{ loads_state }}
        )
        union all
        select 'gone', base, _source_file, cast(_loaded_at as {{ dbt.type_string() }}) from (
            select base, _source_file, _loaded_at from {{ loads_state }} except select * from current_loads
        )
        order by 1, 2, 3, 4
    {%- endset -%}
    {%- for change, base, source_file, loaded_at in run_query(query).rows -%}
        {%- if change == 'new' -%}
            {%- do changes['new'].setdefault(base, []).append((source_file, loaded_at)) -%}
        {%- else -%}
            {%- do changes['gone'].append(base) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(changes) }}
{%- endmacro %}

{#- The loads (base, _source_file, _loaded_at) of the base models `bases` a model's records reflect: the base models'
    own, or those the table model `loads_of` recorded when it was built. -#}
{% macro loads_read(bases, loads_of=none) -%}
    {%- if loads_of %}
    select base, _source_file, _loaded_at from {{ crm.customer_state_relation('loads', loads_of) }}
    {%- else %}
    {%- for name in bases %}
    select distinct '{{ name }}' as base, _source_file, _loaded_at from {{ ref(name) }}
    {{- " union all" if not loop.last }}
    {%- endfor %}
    {%- endif %}
{%- endmacro %}

{#- The facts built on a deduplication model (fct_orders, fct_order_items, fct_interactions) are kept per golden
    customer too: they recompute the customers their deduplication model recomputed since they last applied its
    changes (each build of it appends its changed customers to `<model>__changes`, every customer on a full build),
    and the customers whose pseudonym changed (a new CRM_PSEUDONYM_KEY changes every one). Their rows carry the
    pseudonym only, and the pseudonym of a customer merged away is no longer in int_customer_keys_pseudonymised: a
    fact keeps the pseudonyms it was built with (`<fact>__keys`) to delete that customer's rows. A fact that missed
    builds of its deduplication model (a failed run) applies all of them; one that missed more than are kept
    recomputes every customer. The state tables are in the intermediate schema, which is never published. -#}

{% macro changes_kept() -%}
    {{ return(30) }}
{%- endmacro %}

{#- Post-hooks of a deduplication model: the customers this build recomputed, under the next build number; the
    changes of builds older than the last changes_kept() forgotten. -#}
{% macro create_changes() -%}
    create table if not exists {{ crm.customer_state_relation('changes') }} (
        build_number integer, customer_key {{ dbt.type_string() }}
    )
{%- endmacro %}

{% macro record_changes() -%}
    {%- set changes = crm.customer_state_relation('changes') -%}
    insert into {{ changes }}
    {%- if is_incremental() %}
    select next_build.build_number, changed.customer_key
    from (select coalesce(max(build_number), 0) + 1 as build_number from {{ changes }}) as next_build
    cross join {{ crm.customer_state_relation('changed') }} as changed
    {%- else %}
    {#- A null customer: every customer. #}
    select coalesce(max(build_number), 0) + 1, null from {{ changes }}
    {%- endif %}
{%- endmacro %}

{#- After a full build only its marker is kept: the facts recompute every customer anyway, and the customers of
    earlier builds must not outlive an erasure (which rebuilds in full). -#}
{% macro forget_old_changes() -%}
    {%- set changes = crm.customer_state_relation('changes') -%}
    delete from {{ changes }}
    where build_number
        <= (select max(build_number) from {{ changes }}) - {{ crm.changes_kept() if is_incremental() else 1 }}
{%- endmacro %}


{#- `deduplicated`: the deduplication model whose changes the fact applies; `after`: the fact it reads them through
    (fct_order_items reads fct_orders), whose last applied build this one never passes. -#}
{% macro fact_incremental_config(deduplicated, after=none) -%}
    {{ return(adapter.dispatch('fact_incremental_config', 'crm')(deduplicated, after)) }}
{%- endmacro %}

{% macro default__fact_incremental_config(deduplicated, after=none) -%}
    {{ crm.per_customer_config([
        "{{ crm.record_fact_keys() }}",
        "{{ crm.record_applied_changes('" ~ deduplicated ~ "', '" ~ (after or '') ~ "') }}"]) }}
{%- endmacro %}

{% macro spark__fact_incremental_config(deduplicated, after=none) -%}
    {{ config(materialized='table') }}
{%- endmacro %}


{#- On an incremental build of a fact, when it runs: `<fact>__changed`, the golden customers it recomputes
    (golden_customer_id) with each pseudonym their rows may carry (customer_key: the one it was built with and the
    current one). `deduplicated` and `after` as in fact_incremental_config. -#}
{% macro write_changed_fact_customers(deduplicated, after=none) -%}
    {%- if not (execute and is_incremental() and flags.WHICH in ('run', 'build')) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set changes = crm.customer_state_relation('changes', deduplicated) -%}
    {%- set applied = crm.customer_state_relation('applied') -%}
    {%- set built_keys = crm.customer_state_relation('keys') -%}
    {%- set keys = ref('int_customer_keys_pseudonymised') -%}
    {%- set last_build = crm.last_build_to_apply(deduplicated, after) -%}
    {%- set every_customer = true -%}
    {%- if crm.relation_exists(changes) and crm.relation_exists(applied) and crm.relation_exists(built_keys)
           and last_build is not none -%}
        {%- set query -%}
            select
                count(*) filter (where changes.customer_key is null) as full_builds,
                (select max(build_number) from {{ applied }}) as applied,
                min(changes.build_number) as first_kept
            from {{ changes }} as changes
            where changes.build_number > (select max(build_number) from {{ applied }})
                and changes.build_number <= {{ last_build }}
        {%- endset -%}
        {%- set full_builds, applied_number, first_kept = run_query(query).rows[0] -%}
        {#- Every customer unless every change since the fact's last build is still kept and none is a full build. #}
        {%- set every_customer = applied_number is none or full_builds > 0
                                 or (first_kept is not none and first_kept > applied_number + 1) -%}
    {%- endif -%}
    {%- set statement -%}
        create or replace table {{ crm.customer_state_relation('changed') }} as
        with changed_customers as (
            {%- if every_customer %}
            select golden_customer_id from {{ keys }}
            {%- if crm.relation_exists(built_keys) %}
            union
            select golden_customer_id from {{ built_keys }}
            {%- endif %}
            {%- else %}
            select customer_key as golden_customer_id from {{ changes }}
            where build_number > (select max(build_number) from {{ applied }}) and build_number <= {{ last_build }}
            union
            {#- A pseudonym that changed, on both sides. #}
            select coalesce(now.golden_customer_id, before.golden_customer_id)
            from {{ keys }} as now
            full outer join {{ built_keys }} as before on now.golden_customer_id = before.golden_customer_id
            where now.customer_key is distinct from before.customer_key
            {%- endif %}
        ),
        final as (
            select changed_customers.golden_customer_id, now.customer_key
            from changed_customers
            inner join {{ keys }} as now on changed_customers.golden_customer_id = now.golden_customer_id
            {%- if crm.relation_exists(built_keys) %}
            union
            select changed_customers.golden_customer_id, before.customer_key
            from changed_customers
            inner join {{ built_keys }} as before on changed_customers.golden_customer_id = before.golden_customer_id
            {%- endif %}
            {%- if every_customer %}
            union
            {#- (Every row goes, whatever pseudonym it has.) #}
            select distinct null, customer_key from {{ this }}
            {%- endif %}
        )
        select * from final
    {%- endset -%}
    {%- do run_query(statement) -%}
    {%- set counted = run_query('select count(distinct golden_customer_id) from '
                                ~ crm.customer_state_relation('changed')) -%}
    {%- do log('crm customers recomputed: ' ~ model.unique_id ~ ' ' ~ counted.columns[0].values()[0]
               ~ (' (every customer)' if every_customer else ''), info=true) -%}
    {{ return('') }}
{%- endmacro %}


{#- The fact's condition on the rows it selects: their golden customer (`column` an expression; or their pseudonym,
    with `pseudonym=true`) is a changed customer's on an incremental build; every row on a full one. -#}
{% macro only_changed_fact_customers(column, pseudonym=false) -%}
    {%- if is_incremental() -%}
    {{ column }} in (select {{ 'customer_key' if pseudonym else 'golden_customer_id' }}
                     from {{ crm.customer_state_relation('changed') }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}


{#- Post-hooks of a fact: the pseudonyms it was built with, and the last build of its deduplication model it
    applied. -#}
{% macro record_fact_keys() -%}
    create or replace table {{ crm.customer_state_relation('keys') }} as
    select golden_customer_id, customer_key from {{ ref('int_customer_keys_pseudonymised') }}
{%- endmacro %}

{% macro record_applied_changes(deduplicated, after=none) -%}
    create or replace table {{ crm.customer_state_relation('applied') }} as
    select cast({{ crm.last_build_to_apply(deduplicated, after) or 0 }} as integer) as build_number
{%- endmacro %}

{#- The last build of the deduplication model whose changes the fact applies: its latest, or the one the fact `after`
    last applied (none when that was never recorded: the fact then recomputes every customer). -#}
{% macro last_build_to_apply(deduplicated, after=none) -%}
    {%- set source = crm.customer_state_relation('applied', after) if after
                     else crm.customer_state_relation('changes', deduplicated) -%}
    {%- if not (execute and crm.relation_exists(source)) -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(run_query('select max(build_number) from ' ~ source).columns[0].values()[0]) }}
{%- endmacro %}
