-- The date every downstream model treats as "today": the as_of var when given, else the latest valid order date.
with orders as (

    select * from {{ ref('int_orders_combined') }}

)

select
    cast(coalesce(
        {% if var('as_of') %}cast('{{ var("as_of") }}' as date){% else %}null{% endif %},
        max(cast(order_at as date)),
        current_date
    ) as date) as as_of_date
from orders
