{{ crm.incremental_base_config('orders') }}
{%- set changes = crm.load_changes(source('crm', 'orders')) %}

with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'orders') }} as raw_rows
    {{- crm.new_loads_only('raw_rows', changes) }}

),

numbered as {{ crm.inlined_cte() }} (

    {{ crm.with_occurrences('source', crm.clean_text('order_id'), ['customer_id', 'order_date', 'amount', 'currency']) }}

),

renamed as {{ crm.inlined_cte() }} (

    select
        coalesce(
            {{ crm.clean_text('order_id') }},
            {{ crm.derived_id('o', ['customer_id', 'order_date', 'amount', 'currency']) }}
        ) as order_id,
        order_id is null as has_derived_id,
        {{ crm.clean_id('customer_id') }} as customer_id,
        {{ crm.parse_timestamp('order_date') }} as order_at,
        {{ crm.order_status('status') }} as status,
        {{ crm.parse_amount('amount') }} as amount_original,
        {{ crm.parse_amount('refunded_amount') }} as refunded_amount_original,
        {{ crm.resolve_currency('currency', 'amount') }} as currency,
        {{ crm.clean_code('channel') }} as channel,
        {{ crm.clean_text('rep_id') }} as rep_id,
        {{ crm.parse_timestamp('updated_at') }} as updated_at,
        order_date as order_date_text,
        amount as amount_text,
        refunded_amount as refunded_amount_text,
        status as status_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from numbered

),

validated as {{ crm.inlined_cte() }} (

    select
        renamed.*,
        case
            when customer_id is null then 'missing customer_id'
            when customer_id = {{ crm.guest_customer_id() }} then 'guest customer_id'
            when order_date_text is null then 'missing order_date'
            when order_at is null then 'unparseable order_date'
            when cast(order_at as date) > _drop_date then 'order_date after its export drop'
            when year(order_at) < 1900 then 'order_date before 1900'
            {#- An order without an amount takes the sum of its lines (int_orders_combined). #}
            when amount_text is not null and amount_original is null then 'unparseable amount'
            {#- A negative refunded order is a credit note (mapping.yml's credit_note): it nets out of revenue. #}
            when amount_original < 0 and status <> 'refunded' then 'negative amount'
            when amount_original > {{ var('max_order_amount') }} then 'amount above max_order_amount'
            when refunded_amount_text is not null and refunded_amount_original is null
                then 'unparseable refunded_amount'
            when refunded_amount_original < 0 then 'negative refunded_amount'
            when refunded_amount_original > {{ var('max_order_amount') }} then 'refunded_amount above max_order_amount'
            when status is null then 'unknown status'
            when rates.currency is null then 'unknown currency'
        end as _quarantine_reason
    from renamed
    left join {{ ref('currency_rates') }} as rates on renamed.currency = rates.currency

),

{{ crm.versions_to_rank('validated', ['order_id'], changes) }}

{{ crm.contested_versions('versions', ['order_id']) }}

select versions.*, {{ crm.version_columns('versions') }}
from versions
left join contested_versions using (_source_file, _row_number)
