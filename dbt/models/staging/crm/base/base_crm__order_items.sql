{#-
  Order lines. A line of a line-level sales file (one row per order line, as exported by most shop and ERP systems)
  also carries its order's customer, date and status: its order is derived from its lines (int_orders_from_lines).
  Such a line may be a return (negative quantity) and may state its own amount (the file's Sales column), next to
  which a discount between 0 and 1 is a rate already deducted.
-#}
{{ crm.incremental_base_config('order_items') }}
{%- set changes = crm.load_changes(source('crm', 'order_items')) %}

with source as {{ crm.inlined_cte() }} (

    select * from {{ source('crm', 'order_items') }} as raw_rows
    {{- crm.new_loads_only('raw_rows', changes) }}

),

numbered as {{ crm.inlined_cte() }} (

    {{ crm.with_occurrences('source', crm.parse_integer('line_number'), ['order_id']) }}

),

parsed as {{ crm.inlined_cte() }} (

    select
        *,
        {{ crm.parse_number('quantity') }} as _quantity,
        {{ crm.parse_amount('unit_price') }} as _unit_price,
        {{ crm.parse_amount('discount') }} as _discount,
        {{ crm.parse_amount('line_amount') }} as _line_amount,
        {{ crm.parse_amount('refunded_amount') }} as _refunded_amount
    from numbered

),

discounted as {{ crm.inlined_cte() }} (

    select
        *,
        case
            when _line_amount is not null and _discount >= 0 and _discount < 1 then _line_amount * _discount / (1 - _discount)
            else coalesce(_discount, 0)
        end as _discount_amount
    from parsed

),

renamed as {{ crm.inlined_cte() }} (

    select
        {{ crm.clean_text('order_id') }} as order_id,
        coalesce({{ crm.parse_integer('line_number') }}, _occurrence) as line_number,
        {{ crm.clean_text('product_id') }} as product_id,
        _quantity as quantity,
        {#- A line that states only its amount: the price before discount, so that quantity x unit_price - discount
            is the amount, as for every line. #}
        coalesce(_unit_price, case when _quantity <> 0 then (_line_amount + _discount_amount) / _quantity end)
            as unit_price_original,
        _discount_amount as discount_original,
        _line_amount as line_amount_original,
        {#- A guest's line (a walk-in sale too) has no customer: it is unattributed. #}
        nullif({{ crm.clean_id('customer_id') }}, {{ crm.guest_customer_id() }}) as customer_id,
        {{ crm.parse_timestamp('order_date') }} as order_at,
        {{ crm.order_status('status') }} as status,
        _refunded_amount as refunded_amount_original,
        {{ crm.resolve_currency('currency', 'coalesce(line_amount, unit_price)') }} as currency,
        {{ crm.clean_code('channel') }} as channel,
        {{ crm.clean_text('rep_id') }} as rep_id,
        {#- A line that names its customer or date belongs to a line-level file: its order comes from its lines. #}
        customer_id is not null or order_date is not null as carries_order,
        {{ crm.parse_timestamp('updated_at') }} as updated_at,
        quantity as quantity_text,
        unit_price as unit_price_text,
        discount as discount_text,
        line_amount as line_amount_text,
        refunded_amount as refunded_amount_text,
        order_date as order_date_text,
        status as status_text,
        currency as currency_text,
        _source_file,
        _drop_date,
        _row_number,
        _loaded_at

    from discounted

),

validated as {{ crm.inlined_cte() }} (

    select
        renamed.*,
        case
            when order_id is null then 'missing order_id'
            when product_id is null then 'missing product_id'
            when quantity_text is null then 'missing quantity'
            when quantity is null then 'non-numeric quantity'
            {#- A negative quantity is a return line in a line-level file, an error anywhere else. #}
            when quantity = 0 or (quantity < 0 and not carries_order) then 'non-positive quantity'
            when unit_price_text is not null and unit_price_original is null then 'unparseable unit_price'
            when unit_price_original < 0 then 'negative unit_price'
            when discount_text is not null and {{ crm.parse_amount('discount_text') }} is null then 'unparseable discount'
            when line_amount_text is not null and line_amount_original is null then 'unparseable line_amount'
            {#- Beyond these a line's amount is not a sale but a typo, and would overflow the money columns. #}
            when unit_price_original > {{ var('max_order_amount') }} then 'unit_price above max_order_amount'
            when abs(quantity * coalesce(unit_price_original, 0)) > {{ var('max_order_amount') }}
                then 'line amount (quantity * unit_price) above max_order_amount'
            when abs(line_amount_original) > {{ var('max_order_amount') }} then 'line_amount above max_order_amount'
            when abs(discount_original) > {{ var('max_order_amount') }} then 'discount above max_order_amount'
            when refunded_amount_text is not null and refunded_amount_original is null
                then 'unparseable refunded_amount'
            when refunded_amount_original < 0 then 'negative refunded_amount'
            when refunded_amount_original > {{ var('max_order_amount') }} then 'refunded_amount above max_order_amount'
            {#- A line of a line-level file may leave its order's date to the order's other lines
                (int_order_lines_checked); one it states must read. #}
            when carries_order and order_date_text is not null and order_at is null then 'unparseable order_date'
            when carries_order and cast(order_at as date) > _drop_date then 'order_date after its export drop'
            when carries_order and year(order_at) < 1900 then 'order_date before 1900'
            when carries_order and status is null then 'unknown status'
            when carries_order and rates.currency is null then 'unknown currency'
        end as _quarantine_reason
    from renamed
    left join {{ ref('currency_rates') }} as rates on renamed.currency = rates.currency

),

{{ crm.versions_to_rank('validated', ['order_id', 'line_number'], changes) }}

{{ crm.contested_versions('versions', ['order_id', 'line_number']) }}

select versions.*, {{ crm.version_columns('versions') }}
from versions
left join contested_versions using (_source_file, _row_number)
