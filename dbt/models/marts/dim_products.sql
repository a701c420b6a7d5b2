with products as (

    select * from {{ ref('stg_crm__products') }}

),

rates as (

    select * from {{ ref('currency_rates') }}

)

select
    cast(products.product_id as {{ crm.text() }}) as product_id,
    cast(products.product_name as {{ crm.text() }}) as product_name,
    cast(coalesce(products.category, 'unknown') as {{ crm.text() }}) as category,
    cast({{ crm.to_reporting_currency('products.list_price_original', 'rates') }} as double) as list_price
from products
inner join rates on products.currency = rates.currency
