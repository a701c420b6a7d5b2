{#-
  The fate of every raw row loaded, so nothing is lost without a trace. Each row has exactly one outcome:
    quarantined  invalid (reason says why), an orphan its parent cannot be found for, or a conflicting duplicate (a
                 version that lost to one with the same key, updated_at and drop but other values)
    superseded   an older version of a record whose newer version won, or a line of a line-level order a later drop
                 delivered again without it
    merged       a duplicate folded into another record (same person under another id, double-submitted order,
                 an event recorded twice)
    deferred     dated after the as-of date: kept in raw, used by a later as-of
    unattributed a line of a line-level file without a customer id (a walk-in or guest sale): in no customer's order
    landed       in a mart
  `reason` is a stable category (counted by the quality page and the publication gate); `detail` says more (which
  row was kept, which attribute differs) and never carries a personal value.
-#}
with as_of as (

    select as_of_date from {{ ref('int_as_of') }}

),

identities as (

    select * from {{ ref('int_customer_identities_resolved') }}

),

quarantined_orders as (

    select distinct order_id from {{ ref('base_crm__orders') }} where _quarantine_reason is not null

),

line_level_lines as (

    select * from {{ ref('int_order_lines_checked') }} where carries_order

),

{%- set simple_entities = ['products', 'campaigns', 'sales_reps'] %}

classified as (

    {% for entity in simple_entities %}
    select
        '{{ entity }}' as entity, _source_file, _drop_date, _row_number,
        case
            when _quarantine_reason is not null or _conflict_reason is not null then 'quarantined'
            when _version_rank > 1 then 'superseded'
            {% if entity == 'campaigns' %}when start_date > (select as_of_date from as_of) then 'deferred'{% endif %}
            else 'landed'
        end as outcome,
        coalesce(_quarantine_reason, _conflict_reason) as reason,
        _conflict_detail as detail
    from {{ ref('base_crm__' ~ entity) }}
    union all
    {% endfor %}

    select
        'customers', base._source_file, base._drop_date, base._row_number,
        case
            when base._quarantine_reason is not null or base._conflict_reason is not null then 'quarantined'
            when base._version_rank > 1 then 'superseded'
            when identities.is_merged then 'merged'
            when dim.customer_key is null then 'deferred'
            else 'landed'
        end,
        coalesce(base._quarantine_reason, base._conflict_reason),
        base._conflict_detail
    from {{ ref('base_crm__customers') }} as base
    left join identities on base.customer_id = identities.source_customer_id
    left join {{ ref('int_customer_keys_pseudonymised') }} as keys on base.customer_id = keys.golden_customer_id
    left join {{ ref('dim_customers') }} as dim on keys.customer_key = dim.customer_key

    union all

    select
        'orders', base._source_file, base._drop_date, base._row_number,
        case
            when base._quarantine_reason is not null or base._conflict_reason is not null then 'quarantined'
            when base._version_rank > 1 then 'superseded'
            when priced.order_id is null then 'quarantined'
            when deduplicated.order_id is null then 'deferred'
            when deduplicated.is_duplicate then 'merged'
            else 'landed'
        end,
        case
            when base._quarantine_reason is not null or base._conflict_reason is not null
                then coalesce(base._quarantine_reason, base._conflict_reason)
            when base._version_rank = 1 and priced.order_id is null then 'missing amount'
        end,
        case
            when base._conflict_detail is not null then base._conflict_detail
            when base._quarantine_reason is null and base._version_rank = 1 and priced.order_id is null
                then 'no amount in the order file and no lines for the order'
        end
    from {{ ref('base_crm__orders') }} as base
    left join {{ ref('int_orders_combined') }} as priced on base.order_id = priced.order_id
    left join {{ ref('int_orders_deduplicated') }} as deduplicated on base.order_id = deduplicated.order_id

    union all

    select
        'order_items', base._source_file, base._drop_date, base._row_number,
        case
            when base._quarantine_reason is not null or base._conflict_reason is not null then 'quarantined'
            when base._version_rank > 1 or checked.is_earlier_delivery then 'superseded'
            when checked._order_conflict_reason is not null then 'quarantined'
            when checked.is_unattributed then 'unattributed'
            when deduplicated.is_duplicate then 'merged'
            when deduplicated.order_id is not null then 'landed'
            when valid_orders.order_id is not null then 'deferred'
            else 'quarantined'
        end,
        case
            when base._quarantine_reason is not null or base._conflict_reason is not null
                then coalesce(base._quarantine_reason, base._conflict_reason)
            when base._version_rank > 1 or checked.is_earlier_delivery then null
            when checked._order_conflict_reason is not null then checked._order_conflict_reason
            when checked.is_unattributed then null
            when deduplicated.order_id is not null or valid_orders.order_id is not null then null
            when quarantined_orders.order_id is not null then 'its order is quarantined'
            else 'orphan: order_id not found in orders'
        end,
        coalesce(base._conflict_detail, checked._order_conflict_detail)
    from {{ ref('base_crm__order_items') }} as base
    {#- Only a line of a line-level file can be unattributed or conflict with its order: joining the others (most
        lines of most exports, by file name and row) would only add nulls, at the cost of the query's largest join. #}
    left join line_level_lines as checked
        on base._source_file = checked._source_file and base._row_number = checked._row_number
    left join {{ ref('int_orders_deduplicated') }} as deduplicated on base.order_id = deduplicated.order_id
    left join {{ ref('int_orders_combined') }} as valid_orders on base.order_id = valid_orders.order_id
    left join quarantined_orders on base.order_id = quarantined_orders.order_id

    union all

    select
        'opportunities', base._source_file, base._drop_date, base._row_number,
        case
            when base._quarantine_reason is not null or base._conflict_reason is not null then 'quarantined'
            when base._version_rank > 1 then 'superseded'
            when fct.opportunity_id is null then 'deferred'
            else 'landed'
        end,
        coalesce(base._quarantine_reason, base._conflict_reason),
        base._conflict_detail
    from {{ ref('base_crm__opportunities') }} as base
    left join {{ ref('fct_opportunities') }} as fct on base.opportunity_id = fct.opportunity_id

    {#- Facts on a customer: an unknown customer makes the row an orphan; interactions can also be merged
        duplicates of one event. -#}
    {% for entity, key, fact in [('interactions', 'interaction_id', 'int_interactions_deduplicated'),
                                 ('tickets', 'ticket_id', 'fct_tickets'), ('surveys', 'survey_id', 'fct_surveys')] %}
    union all

    select
        '{{ entity }}', base._source_file, base._drop_date, base._row_number,
        case
            when base._quarantine_reason is not null or base._conflict_reason is not null then 'quarantined'
            when base._version_rank > 1 then 'superseded'
            when identities.source_customer_id is null then 'quarantined'
            when fct.{{ key }} is null then 'deferred'
            {% if entity == 'interactions' %}when fct.is_duplicate then 'merged'{% endif %}
            else 'landed'
        end,
        case
            when base._quarantine_reason is not null or base._conflict_reason is not null
                then coalesce(base._quarantine_reason, base._conflict_reason)
            when base._version_rank = 1 and identities.source_customer_id is null then 'orphan: customer_id not found in customers or orders'
        end,
        base._conflict_detail
    from {{ ref('base_crm__' ~ entity) }} as base
    left join identities on base.customer_id = identities.source_customer_id
    left join {{ ref(fact) }} as fct on base.{{ key }} = fct.{{ key }}
    {% endfor %}

)

select * from classified
